/**
 * Pointing the machine's resolver configuration at the agent, and back.
 * The original is kept in the agent's state file, so a crashed agent's
 * successor (or `runwall agent stop`) can restore it.
 */
import { existsSync, lstatSync, readFileSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { RunwallError } from '../../protocol/index.js';

export interface FileBackup {
  readonly path: string;
  /** The file's text, or null when it did not exist. */
  readonly content: string | null;
  /** Where it pointed, when it was a symbolic link (systemd-resolved's stub). */
  readonly symlink: string | null;
}

export function backupFile(path: string): FileBackup {
  if (!existsSync(path) && !isSymlink(path)) return { path, content: null, symlink: null };
  if (isSymlink(path)) {
    const target = readlinkSync(path);
    let content: string | null = null;
    try {
      content = readFileSync(path, 'utf8');
    } catch {
      // A dangling link: nothing to read.
    }
    return { path, content, symlink: target };
  }
  return { path, content: readFileSync(path, 'utf8'), symlink: null };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Writes in place (a bind-mounted file cannot be renamed over); a symlink is replaced by a file. */
export function writeReplacing(path: string, text: string): void {
  if (isSymlink(path)) unlinkSync(path);
  writeFileSync(path, text, { mode: 0o644 });
}

export function restoreFile(backup: FileBackup): void {
  if (backup.symlink !== null) {
    if (existsSync(backup.path) || isSymlink(backup.path)) unlinkSync(backup.path);
    symlinkSync(backup.symlink, backup.path);
    return;
  }
  if (backup.content === null) {
    if (existsSync(backup.path)) unlinkSync(backup.path);
    return;
  }
  writeFileSync(backup.path, backup.content, { mode: 0o644 });
}

export function resolvConfText(nameservers: readonly string[]): string {
  return `# written by runwall agent: every name goes through its policy. The original is restored by 'runwall agent stop'.\n${nameservers
    .map((address) => `nameserver ${address}`)
    .join('\n')}\noptions edns0 trust-ad\n`;
}

/** Docker's daemon.json with `dns` set to the agent's bridge resolvers (applies to containers started after dockerd reloads it). */
export function dockerDaemonJson(original: string | null, resolvers: readonly string[]): string {
  let config: Record<string, unknown> = {};
  if (original !== null && original.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(original);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      config = parsed as Record<string, unknown>;
    } catch (error: unknown) {
      throw new RunwallError('RW_SETUP_FAILED', `Docker's daemon.json is not a JSON object (${error instanceof Error ? error.message : String(error)}); left unchanged`);
    }
  }
  return JSON.stringify({ ...config, dns: [...resolvers] }, null, 2) + '\n';
}

/**
 * The machine's upstream resolver before the agent takes over. systemd-resolved's
 * stub (127.0.0.53) is skipped for the real upstreams it lists, since the agent's
 * rules drop the stub's own queries.
 */
export function upstreamFromResolvConf(text: string, resolvedUpstreams: string | null): string | null {
  const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => (m[1] ?? '').replace(/%.*$/, ''));
  const first = servers[0];
  if (first === undefined) return null;
  if (first.startsWith('127.0.0.53') && resolvedUpstreams !== null) {
    return upstreamFromResolvConf(resolvedUpstreams, null);
  }
  return first;
}
