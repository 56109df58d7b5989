/** Splits a canonical `ip:port` / `[ipv6]:port` upstream (as the policy part produces) into its parts. */
import { RunwallError } from '../../protocol/index.js';

export function splitUpstream(text: string): { address: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const address = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!address || !(port >= 1 && port <= 65535)) throw new RunwallError('RW_UPSTREAM_INVALID', `DNS upstream '${text}' is not ip:port`);
  return { address, port };
}
