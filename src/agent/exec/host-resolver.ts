/** The machine's own resolver, the default `--dns-upstream`: the first nameserver of /etc/resolv.conf. */
import { readFileSync } from 'node:fs';
import { RunwallError } from '../../protocol/index.js';

export function hostResolver(path = '/etc/resolv.conf'): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error: unknown) {
    throw new RunwallError('RW_UPSTREAM_INVALID', `cannot read ${path} to find the host's resolver; pass --dns-upstream`, {}, { cause: error });
  }
  for (const line of text.split('\n')) {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    if (match?.[1]) return match[1].replace(/%.*$/, '');
  }
  throw new RunwallError('RW_UPSTREAM_INVALID', `${path} names no nameserver; pass --dns-upstream`);
}
