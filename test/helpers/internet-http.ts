// What the internet's TCP servers make of the first bytes of a connection: an HTTP request
// head (method, target, Host) or a TLS ClientHello (SNI). Pure; the server feeds it the
// bytes received so far until it stops asking for more.

export type StreamStart =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'http'; readonly method: string; readonly target: string; readonly host: string | undefined }
  | { readonly kind: 'tls'; readonly serverName: string | undefined }
  | { readonly kind: 'invalid'; readonly reason: string };

/** Request heads larger than this are refused, so a client cannot grow the buffer forever. */
export const MAX_HEAD_BYTES = 16 * 1024;
const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;
const MAX_TLS_RECORD = 16384 + 2048;

function invalid(reason: string): StreamStart {
  return { kind: 'invalid', reason };
}

/** Reads a length-prefixed field; returns [start, end) of its content, or undefined when past the end. */
function field(data: Buffer, offset: number, lengthBytes: 1 | 2, limit: number): [number, number] | undefined {
  if (offset + lengthBytes > limit) return undefined;
  const length = lengthBytes === 1 ? data.readUInt8(offset) : data.readUInt16BE(offset);
  const start = offset + lengthBytes;
  if (start + length > limit) return undefined;
  return [start, start + length];
}

/** SNI of a ClientHello handshake body (after the 4-byte handshake header), or undefined if absent. */
function serverNameOf(data: Buffer, start: number, end: number): string | undefined | Error {
  let offset = start + 2 + 32; // legacy_version, random
  const sessionId = field(data, offset, 1, end);
  if (!sessionId) return new Error('short session id');
  const ciphers = field(data, sessionId[1], 2, end);
  if (!ciphers) return new Error('short cipher suites');
  const compression = field(data, ciphers[1], 1, end);
  if (!compression) return new Error('short compression methods');
  offset = compression[1];
  if (offset === end) return undefined; // no extensions at all
  const extensions = field(data, offset, 2, end);
  if (!extensions) return new Error('short extensions');
  for (offset = extensions[0]; offset + 4 <= extensions[1]; ) {
    const type = data.readUInt16BE(offset);
    const body = field(data, offset + 2, 2, extensions[1]);
    if (!body) return new Error('short extension');
    if (type === SERVER_NAME_EXTENSION) {
      const list = field(data, body[0], 2, body[1]);
      if (!list) return new Error('short server name list');
      for (let entry = list[0]; entry + 3 <= list[1]; ) {
        const nameType = data.readUInt8(entry);
        const name = field(data, entry + 1, 2, list[1]);
        if (!name) return new Error('short server name');
        if (nameType === 0) return data.toString('latin1', name[0], name[1]);
        entry = name[1];
      }
      return undefined;
    }
    offset = body[1];
  }
  return undefined;
}

function classifyTls(data: Buffer): StreamStart {
  if (data.length < 5) return { kind: 'need-more' };
  const recordLength = data.readUInt16BE(3);
  if (recordLength > MAX_TLS_RECORD) return invalid('TLS record too long');
  if (data.length < 5 + recordLength) return { kind: 'need-more' };
  const end = 5 + recordLength;
  if (recordLength < 4 || data.readUInt8(5) !== CLIENT_HELLO) return invalid('TLS record is not a ClientHello');
  const helloLength = data.readUIntBE(6, 3);
  // A ClientHello split over several records is legal but rare; what fits is parsed.
  const helloEnd = Math.min(end, 9 + helloLength);
  const serverName = serverNameOf(data, 9, helloEnd);
  if (serverName instanceof Error) return invalid(`bad ClientHello: ${serverName.message}`);
  return { kind: 'tls', serverName };
}

const REQUEST_LINE = /^([A-Z]{1,20}) (\S{1,8192}) HTTP\/\d\.\d$/;

function classifyHttp(data: Buffer): StreamStart {
  const text = data.toString('latin1');
  const headEnd = text.search(/\r?\n\r?\n/);
  if (headEnd < 0) return data.length > MAX_HEAD_BYTES ? invalid('request head too long') : { kind: 'need-more' };
  if (headEnd > MAX_HEAD_BYTES) return invalid('request head too long');
  const [requestLine = '', ...headerLines] = text.slice(0, headEnd).split(/\r?\n/);
  const request = REQUEST_LINE.exec(requestLine);
  if (!request) return invalid('bad request line');
  let host: string | undefined;
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return invalid('bad header line');
    if (line.slice(0, colon).toLowerCase() === 'host') host = line.slice(colon + 1).trim();
  }
  return { kind: 'http', method: request[1] ?? '', target: request[2] ?? '', host };
}

/** Classifies the first bytes of a TCP stream. */
export function classifyStreamStart(data: Buffer): StreamStart {
  if (data.length === 0) return { kind: 'need-more' };
  return data.readUInt8(0) === TLS_HANDSHAKE ? classifyTls(data) : classifyHttp(data);
}

/** The body every HTTP server of the internet answers with. */
export function okBody(local: string, port: number, host: string | undefined): string {
  return `ok ${local} ${port} ${host ?? '-'}`;
}

/** A complete HTTP/1.1 response that closes the connection; HEAD requests get no body. */
export function httpResponse(status: 200 | 400, body: string, method = 'GET'): Buffer {
  const reason = status === 200 ? 'OK' : 'Bad Request';
  const bytes = Buffer.from(body);
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`,
    ),
    method === 'HEAD' ? Buffer.alloc(0) : bytes,
  ]);
}

/** The largest body `/bytes/N` streams: enough for a bulk-download benchmark, bounded all the same. */
export const MAX_BULK_BYTES = 8 * 1024 ** 3;
const BYTES_TARGET = /^\/bytes\/(0|[1-9][0-9]{0,15})$/;

export type BulkTarget =
  | { readonly kind: 'none' }
  | { readonly kind: 'bytes'; readonly size: number }
  | { readonly kind: 'invalid'; readonly reason: string };

/** `/bytes/N` asks the HTTP servers for a body of N bytes (a bulk download); any other target is not one. */
export function bulkTarget(target: string): BulkTarget {
  if (!target.startsWith('/bytes/')) return { kind: 'none' };
  const match = BYTES_TARGET.exec(target);
  if (!match) return { kind: 'invalid', reason: `bad size in ${target.slice(0, 64)}: /bytes/N takes a decimal N` };
  const size = Number(match[1]);
  if (size > MAX_BULK_BYTES) return { kind: 'invalid', reason: `at most ${MAX_BULK_BYTES} bytes` };
  return { kind: 'bytes', size };
}

/** The head of a `/bytes/N` response; the body follows as N bytes the server streams. */
export function bulkResponseHead(size: number): Buffer {
  return Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
  );
}

/** A fatal TLS alert (handshake_failure): the servers speak no TLS, and say so cleanly. */
export const TLS_HANDSHAKE_FAILURE = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
