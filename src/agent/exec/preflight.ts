/** Checks made before anything is set up, so a run that cannot work changes nothing. */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RunwallError } from '../../protocol/index.js';

export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new RunwallError('RW_NOT_ROOT', `${what} needs root (run it with sudo)`);
  }
}

export function findOnPath(tool: string, path = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string | null {
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/sbin']) {
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

export function requireTools(tools: readonly string[]): void {
  const missing = tools.filter((tool) => findOnPath(tool) === null);
  if (missing.length > 0) {
    throw new RunwallError('RW_PLATFORM_MISSING', `missing tools: ${missing.join(', ')} (Debian: apt-get install iproute2 util-linux mount)`);
  }
}
