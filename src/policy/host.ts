/**
 * The host part shared by allowed-endpoints and block-list entries: a domain,
 * a `*.domain` wildcard, an address or a CIDR, validated and canonical.
 */
import { formatCidr, formatIp, parseCidr, parseIp, wireAddress, wireNetwork, type IpFamily } from './ip.js';

export type HostTarget =
  | { readonly kind: 'domain'; readonly value: string }
  | { readonly kind: 'wildcard'; readonly value: string }
  | { readonly kind: 'ip'; readonly value: string; readonly family: IpFamily }
  | { readonly kind: 'cidr'; readonly value: string; readonly family: IpFamily };

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const MAX_NAME = 253;
const MAX_LABEL = 63;
const LABEL_CHARS = /^[a-z0-9_-]+$/;
const ALL_DIGITS = /^[0-9]+$/;

/**
 * ASCII-only lower case: DNS compares only ASCII case-insensitively, and
 * String#toLowerCase would fold some non-ASCII letters (the Kelvin sign) into ASCII ones.
 */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** A name as the matcher compares it: ASCII lower case, one trailing dot dropped. No validation. */
export function matchableName(name: string): string {
  const lower = asciiLower(name);
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Validates a host name; the value is lower case without a trailing dot. */
export function checkDomain(text: string): Checked<string> {
  if (/[^\x21-\x7e]/.test(text)) {
    return /[^\x00-\x7f]/.test(text)
      ? { ok: false, problem: 'contains non-ASCII characters; write internationalised names in punycode (xn--...)' }
      : { ok: false, problem: 'contains a space or control character' };
  }
  const name = matchableName(text);
  if (name === '') return { ok: false, problem: 'has no host name' };
  if (name.length > MAX_NAME) return { ok: false, problem: `is ${name.length} characters long; a host name has at most ${MAX_NAME}` };
  const labels = name.split('.');
  for (const label of labels) {
    if (label === '') return { ok: false, problem: "has an empty label (two dots in a row, or a leading dot)" };
    if (label.length > MAX_LABEL) return { ok: false, problem: `has a label of ${label.length} characters; a label has at most ${MAX_LABEL}` };
    if (!LABEL_CHARS.test(label)) {
      const bad = [...label].find((c) => !/[a-z0-9_-]/.test(c)) ?? '?';
      const hint = bad === ',' ? '; separate entries with spaces or new lines, not commas' : '';
      return { ok: false, problem: `has the character '${bad}', which is not allowed in a host name (letters, digits, '-', '_')${hint}` };
    }
    if (label.startsWith('-') || label.endsWith('-')) return { ok: false, problem: `has the label '${label}', which starts or ends with '-'` };
  }
  if (ALL_DIGITS.test(labels[labels.length - 1] ?? '')) {
    return { ok: false, problem: 'is neither an IPv4 address nor a host name (its last label is all digits)' };
  }
  return { ok: true, value: name };
}

/**
 * Parses a bare host (no brackets, no port): `example.com`, `*.example.com`,
 * `198.51.100.7`, `2001:db8::1`, `198.51.100.0/24`, `2001:db8::/32`.
 * IPv4-mapped IPv6 addresses and networks become IPv4 (what goes on the wire).
 */
export function parseHostTarget(text: string): Checked<HostTarget> {
  if (text === '') return { ok: false, problem: 'has no host' };
  if (text.includes('/')) {
    const parsed = parseCidr(text);
    if ('problem' in parsed) {
      const looksLikePath = parseIp(text.slice(0, text.indexOf('/'))) === null;
      return { ok: false, problem: looksLikePath ? 'has a path; write the host only (no /path)' : parsed.problem };
    }
    const network = wireNetwork(parsed.network);
    return { ok: true, value: { kind: 'cidr', value: formatCidr(network), family: network.family } };
  }
  if (text.includes(':')) {
    const address = parseIp(text);
    if (address === null) return { ok: false, problem: 'is not an IPv6 address' };
    const wire = wireAddress(address);
    return { ok: true, value: { kind: 'ip', value: formatIp(wire), family: wire.family } };
  }
  if (text.includes('*')) {
    if (text === '*') return { ok: false, problem: "is a bare '*', which is not allowed; write '*.example.com' to match every subdomain of example.com" };
    if (!text.startsWith('*.')) return { ok: false, problem: "has a '*' that is not the whole first label; write it as in '*.example.com'" };
    const rest = text.slice(2);
    if (rest === '' || rest === '.') return { ok: false, problem: "has nothing after '*.'" };
    if (rest.includes('*')) return { ok: false, problem: "has more than one '*'; it may only be the whole first label" };
    const domain = checkDomain(rest);
    if (!domain.ok) return domain;
    return { ok: true, value: { kind: 'wildcard', value: domain.value } };
  }
  const lastLabel = matchableName(text).split('.').pop() ?? '';
  if (ALL_DIGITS.test(lastLabel)) {
    const address = parseIp(text);
    if (address === null) return { ok: false, problem: 'is not an IPv4 address (four decimal numbers 0-255, no leading zeros)' };
    return { ok: true, value: { kind: 'ip', value: formatIp(address), family: 4 } };
  }
  const domain = checkDomain(text);
  if (!domain.ok) return domain;
  return { ok: true, value: { kind: 'domain', value: domain.value } };
}

/** The target as written in a policy, without a port: `*.example.com`, `2001:db8::/32`. */
export function targetText(target: HostTarget): string {
  return target.kind === 'wildcard' ? `*.${target.value}` : target.value;
}

/** The target as written before `:port`: IPv6 in brackets. */
export function targetTextForPort(target: HostTarget): string {
  const text = targetText(target);
  return (target.kind === 'ip' || target.kind === 'cidr') && target.family === 6 ? `[${text}]` : text;
}

/** `host:port` for a destination (name or address) as an allowed-endpoints entry; IPv6 in brackets. */
export function destinationText(host: string, port: number | null): string {
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return port === null ? bracketed : `${bracketed}:${port}`;
}
