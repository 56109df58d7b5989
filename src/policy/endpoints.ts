/**
 * allowed-endpoints: `host[:port]` entries separated by any whitespace
 * (new lines included), `#` comments to the end of a line. Every malformed
 * entry is an RW_ENDPOINT_INVALID error quoting it; none is skipped.
 */
import { RunwallError, type Endpoint } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';
import { parseHostTarget, targetTextForPort, type Checked } from './host.js';

export const DEFAULT_ENDPOINT_PORT = 443;

const PORT = /^[0-9]+$/;

/** A decimal port 1-65535. */
export function checkPort(text: string): Checked<number> {
  if (text === '') return { ok: false, problem: "has ':' but no port after it" };
  if (!PORT.test(text)) return { ok: false, problem: `has the port '${text}', which is not a decimal number` };
  if (text.length > 1 && text.startsWith('0')) return { ok: false, problem: `has the port '${text}' with a leading zero; write ${Number(text)}` };
  const port = Number(text);
  if (port < 1 || port > 65535) return { ok: false, problem: `has the port ${text}; a port must be 1-65535` };
  return { ok: true, value: port };
}

const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

function urlProblem(entry: string, scheme: string): string {
  const rest = entry.slice(scheme.length + 3);
  const host = rest.split(/[/?#]/)[0] ?? '';
  const port = scheme.toLowerCase() === 'http' ? 80 : 443;
  const example = host === '' ? 'host:443' : host.includes(':') ? host : `${host}:${port}`;
  return `is a URL; write host:port without the scheme or path, e.g. '${example}'`;
}

function checkEndpoint(entry: string): Checked<Endpoint> {
  const scheme = URL_SCHEME.exec(entry);
  if (scheme !== null) return { ok: false, problem: urlProblem(entry, scheme[1] ?? '') };
  let hostText: string;
  let portText: string | null = null;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) return { ok: false, problem: "has '[' without a closing ']'" };
    hostText = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return { ok: false, problem: `has '${rest}' after ']'; expected ':port' or nothing` };
      portText = rest.slice(1);
    }
    if (!hostText.includes(':')) return { ok: false, problem: 'has brackets, which are only for IPv6 addresses' };
  } else {
    const colons = entry.split(':').length - 1;
    if (colons >= 2) {
      // A bare IPv6 address or network: no port can follow it (write [2001:db8::1]:8443 for one).
      hostText = entry;
      if (entry.includes(']')) return { ok: false, problem: "has ']' without an opening '['" };
    } else if (colons === 1) {
      const colon = entry.indexOf(':');
      hostText = entry.slice(0, colon);
      portText = entry.slice(colon + 1);
    } else {
      hostText = entry;
    }
  }
  let port = DEFAULT_ENDPOINT_PORT;
  if (portText !== null) {
    const checked = checkPort(portText);
    if (!checked.ok) return checked;
    port = checked.value;
  }
  const target = parseHostTarget(hostText);
  if (!target.ok) {
    const bare = !entry.startsWith('[') && hostText === entry && entry.includes(':');
    return bare ? { ok: false, problem: `${target.problem}; write host:port, and IPv6 with a port in brackets: [2001:db8::1]:443` } : target;
  }
  const t = target.value;
  return { ok: true, value: { kind: t.kind, host: t.value, port, text: `${targetTextForPort(t)}:${port}` } };
}

function endpointError(where: string, entry: string, problem: string, line?: number): RunwallError {
  const at = line === undefined ? '' : ` (line ${line})`;
  return new RunwallError('RW_ENDPOINT_INVALID', `${where}: entry '${entry}'${at} ${problem}`, {
    where,
    entry,
    ...(line === undefined ? {} : { line }),
  });
}

/** One entry (already separated from its neighbours); throws RW_ENDPOINT_INVALID naming `where` and the entry. */
export function parseEndpoint(entry: string, where: string): Endpoint {
  const trimmed = entry.trim();
  if (trimmed === '') throw endpointError(where, entry, 'is empty');
  if (/\s/.test(trimmed)) throw endpointError(where, entry, 'contains whitespace; give one entry at a time');
  const checked = checkEndpoint(trimmed);
  if (!checked.ok) throw endpointError(where, trimmed, checked.problem);
  return Object.freeze(checked.value);
}

interface Token {
  readonly text: string;
  readonly line: number;
}

/** Splits allowed-endpoints text into entries: any whitespace separates, `#` starts a comment to the end of the line. */
export function endpointTokens(text: string): Token[] {
  const tokens: Token[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const hash = line.indexOf('#');
    const content = hash === -1 ? line : line.slice(0, hash);
    for (const word of content.split(/\s+/)) if (word !== '') tokens.push({ text: word, line: i + 1 });
  }
  return tokens;
}

/**
 * The allowed-endpoints input (one text, or a list of texts such as a YAML
 * list, each split the same way): frozen, duplicates dropped, input order kept.
 */
export function parseEndpointList(input: string | readonly string[], where: string): readonly Endpoint[] {
  const texts = typeof input === 'string' ? [input] : input;
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  texts.forEach((text, index) => {
    if (typeof text !== 'string') {
      throw new RunwallError('RW_ENDPOINT_INVALID', `${where}: item ${index + 1} is not a string`, { where, index });
    }
    const multiLine = typeof input === 'string' && /[\r\n]/.test(text);
    for (const token of endpointTokens(text)) {
      const checked = checkEndpoint(token.text);
      if (!checked.ok) {
        throw endpointError(where, token.text, checked.problem, multiLine ? token.line : undefined);
      }
      if (seen.has(checked.value.text)) continue;
      seen.add(checked.value.text);
      out.push(checked.value);
    }
  });
  return deepFreeze(out);
}
