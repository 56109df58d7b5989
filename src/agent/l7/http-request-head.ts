/**
 * The names a plain-HTTP/1.x request asks for: its Host header and, when the
 * request target is in absolute form (`GET http://name/ HTTP/1.1`, which a
 * server must prefer over Host) or authority form (`CONNECT name:443`), the
 * target's host. Pure. Fed the bytes received so far; "incomplete" until the
 * head (up to the empty line) is there.
 *
 * Strict where a lenient parser would differ from the server behind it (RFC
 * 9112): two Host headers, a space before a header's colon, folded header
 * lines are RW_HTTP_MALFORMED.
 */
import { RunwallError } from '../../protocol/index.js';

/** A head longer than this is not read: RW_HTTP_MALFORMED. */
export const MAX_REQUEST_HEAD_BYTES = 16 * 1024;
const MAX_REQUEST_LINE = 8 * 1024;

/** Methods that start a request; a first line starting otherwise is not HTTP (`SET k v` is Redis, not HTTP). */
export const HTTP_METHODS: readonly string[] = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'REPORT',
  'SEARCH',
  // HTTP/2 with prior knowledge: its names are in HPACK frames runwall does not read, so it is judged as HTTP without a name.
  'PRI',
];
const METHOD_PREFIXES = HTTP_METHODS.map((method) => `${method} `);

export type RequestHeadResult =
  | { readonly complete: false }
  | {
      readonly complete: true;
      readonly method: string;
      /** The request path without its query (a query may carry secrets), or the target for other forms. */
      readonly path: string;
      /** The Host header's host (no port, no brackets), or null when absent or empty. */
      readonly host: string | null;
      /** The host of an absolute- or authority-form target, or null. */
      readonly targetHost: string | null;
    };

function malformed(message: string): RunwallError {
  return new RunwallError('RW_HTTP_MALFORMED', `HTTP request head: ${message}`);
}

/** 'yes': starts with a method and a space; 'maybe': could still become one; 'no': cannot. */
export function looksLikeHttp(bytes: Uint8Array): 'yes' | 'maybe' | 'no' {
  const head = latin1(bytes.subarray(0, 12));
  for (const prefix of METHOD_PREFIXES) {
    if (head.startsWith(prefix)) return 'yes';
    if (prefix.startsWith(head)) return 'maybe';
  }
  return 'no';
}

function latin1(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

/** Index just past the empty line ending the head (CRLF CRLF, or bare LF LF as lenient servers accept), or -1. */
function headEnd(bytes: Uint8Array, limit: number): number {
  for (let i = 0; i < limit; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i + 2;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VERSION = /^HTTP\/1\.[01]$/;

/**
 * Reads the request head at the start of `stream`. Returns `complete: false`
 * while more bytes are needed; throws RunwallError RW_HTTP_MALFORMED (and
 * nothing else) when the head cannot be read.
 */
export function readRequestHead(stream: Uint8Array): RequestHeadResult {
  const end = headEnd(stream, Math.min(stream.length, MAX_REQUEST_HEAD_BYTES));
  if (end < 0) {
    if (stream.length >= MAX_REQUEST_HEAD_BYTES) throw malformed(`no end of the head within ${MAX_REQUEST_HEAD_BYTES} bytes`);
    return { complete: false };
  }
  const lines = latin1(stream.subarray(0, end)).split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const requestLine = lines[0] ?? '';
  if (requestLine.length > MAX_REQUEST_LINE) throw malformed('request line too long');
  const parts = requestLine.split(' ');
  if (parts.length !== 3) throw malformed(`request line has ${parts.length} parts, expected method, target and version`);
  const [method = '', target = '', version = ''] = parts;
  if (!TOKEN.test(method)) throw malformed('bad method');
  if (!VERSION.test(version)) throw malformed(`version ${JSON.stringify(version.slice(0, 16))} is not HTTP/1.0 or 1.1`);
  if (target === '' || /[\x00-\x20\x7f-\xff]/.test(target)) throw malformed('bad request target');

  let host: string | null = null;
  let hostSeen = false;
  for (const line of lines.slice(1)) {
    if (line === '') break;
    if (line.startsWith(' ') || line.startsWith('\t')) throw malformed('folded header line');
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('header line without a name');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw malformed(`bad header name ${JSON.stringify(name.slice(0, 32))}`);
    if (name.toLowerCase() !== 'host') continue;
    if (hostSeen) throw malformed('two Host headers');
    hostSeen = true;
    const value = line.slice(colon + 1).trim();
    host = value === '' ? null : authorityHost(value, 'Host');
  }
  return { complete: true, method, ...targetParts(method, target), host };
}

function targetParts(method: string, target: string): { path: string; targetHost: string | null } {
  if (target.startsWith('/') || target === '*') return { path: withoutQuery(target), targetHost: null };
  if (method === 'CONNECT') return { path: target, targetHost: authorityHost(target, 'CONNECT target') };
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(target);
  if (!absolute) throw malformed('request target is neither a path nor an absolute URI');
  const authority = (absolute[1] ?? '').replace(/^.*@/, ''); // user info is not the host
  const rest = absolute[2] ?? '';
  return { path: withoutQuery(rest === '' ? '/' : rest), targetHost: authority === '' ? null : authorityHost(authority, 'request target') };
}

function withoutQuery(path: string): string {
  const cut = path.search(/[?#]/);
  return (cut < 0 ? path : path.slice(0, cut)).slice(0, 256);
}

/** `name`, `name:port`, `[v6]` or `[v6]:port` -> the host, without brackets or port. */
function authorityHost(value: string, what: string): string {
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    const rest = close < 0 ? '' : value.slice(close + 1);
    if (close < 0 || (rest !== '' && !/^:\d{0,5}$/.test(rest))) throw malformed(`${what} ${JSON.stringify(value.slice(0, 64))} is not host[:port]`);
    return value.slice(1, close);
  }
  const match = /^([^:\s/]+)(?::\d{0,5})?$/.exec(value);
  if (!match?.[1]) throw malformed(`${what} ${JSON.stringify(value.slice(0, 64))} is not host[:port]`);
  return match[1];
}
