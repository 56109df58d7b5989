/** dns-upstream: the resolver the DNS proxy forwards allowed names to, as canonical `ip:port`. */
import { RunwallError } from '../protocol/index.js';
import { checkPort } from './endpoints.js';
import { formatIp, parseIp, wireAddress } from './ip.js';

export const DEFAULT_DNS_PORT = 53;

function upstreamError(where: string, value: string, problem: string): RunwallError {
  return new RunwallError('RW_UPSTREAM_INVALID', `${where}: DNS upstream '${value}' ${problem}`, { where, value });
}

/**
 * `198.51.100.53`, `198.51.100.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`
 * → `ip:port` (port 53 by default, IPv6 as `[addr]:port`). Host names are refused:
 * resolving the resolver would need a resolver.
 */
export function parseDnsUpstream(value: string, where: string): string {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === '') throw upstreamError(where, String(value), 'is empty; give an IP address with an optional port');
  let hostText = text;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) throw upstreamError(where, text, "has '[' without a closing ']'");
    hostText = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw upstreamError(where, text, `has '${rest}' after ']'; expected ':port'`);
      portText = rest.slice(1);
    }
  } else if (text.split(':').length === 2) {
    [hostText, portText] = text.split(':') as [string, string];
  }
  const address = parseIp(hostText);
  if (address === null) throw upstreamError(where, text, `is not an IP address with an optional port (a host name cannot be used)`);
  if (text.startsWith('[') && address.family === 4) throw upstreamError(where, text, 'has brackets, which are only for IPv6 addresses');
  let port = DEFAULT_DNS_PORT;
  if (portText !== null) {
    const checked = checkPort(portText);
    if (!checked.ok) throw upstreamError(where, text, checked.problem);
    port = checked.value;
  }
  const wire = wireAddress(address);
  return wire.family === 6 ? `[${formatIp(wire)}]:${port}` : `${formatIp(wire)}:${port}`;
}
