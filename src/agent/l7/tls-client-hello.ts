/**
 * The server name (SNI) of a TLS ClientHello, from the first bytes a client
 * sends. Pure. The hello may arrive split over several TLS records and TCP
 * segments; the caller feeds the bytes received so far and gets "incomplete"
 * until the whole hello is there.
 *
 * Strict where a lenient parser would differ from the server behind it: two
 * extensions of one type, two host names, trailing bytes or a record of
 * another type inside the hello are RW_TLS_MALFORMED (RFC 8446 4.2, RFC 6066 3),
 * so the name runwall judges is the only one a server could act on.
 *
 * `read-tls-client-hello` reads from a stream and resolves once; it has no
 * "incomplete" answer for a byte buffer, so it does not fit a packet filter.
 */
import { RunwallError } from '../../protocol/index.js';

/** A hello longer than this is not inspected: RW_TLS_MALFORMED (real ones are 200 bytes to 2 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 32 * 1024;
const RECORD_HEADER = 5;
const MAX_RECORD_LENGTH = 16384 + 256; // 2^14 plaintext; a little slack for old clients
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const EXTENSION_ENCRYPTED_CLIENT_HELLO = 0xfe0d;
const NAME_TYPE_HOST = 0;
const MAX_HOST_NAME = 255;

export type ClientHelloResult =
  | { readonly complete: false }
  | {
      readonly complete: true;
      /** The host_name of the server_name extension, or null when the client sent none. */
      readonly serverName: string | null;
      /** The client offered Encrypted Client Hello: the name above is the outer, public one. */
      readonly encryptedClientHello: boolean;
      /** Bytes of the stream the hello took (its records). */
      readonly consumed: number;
    };

function malformed(message: string): RunwallError {
  return new RunwallError('RW_TLS_MALFORMED', `TLS ClientHello: ${message}`);
}

/** True when the first bytes can start a TLS handshake record (content type 22, version 3.x). */
export function looksLikeTls(bytes: Uint8Array): boolean {
  if (bytes.length === 0 || bytes[0] !== CONTENT_HANDSHAKE) return false;
  if (bytes.length >= 2 && bytes[1] !== 3) return false;
  if (bytes.length >= 3 && (bytes[2] ?? 0) > 4) return false;
  return true;
}

/**
 * Reads the ClientHello at the start of `stream`. Returns `complete: false`
 * while more bytes are needed; throws RunwallError RW_TLS_MALFORMED (and
 * nothing else) when the bytes cannot be a valid ClientHello.
 */
export function readClientHello(stream: Uint8Array): ClientHelloResult {
  // Gather the handshake bytes from consecutive records until the hello's declared length is there.
  const handshake: Uint8Array[] = [];
  let gathered = 0;
  let needed: number | null = null;
  let offset = 0;
  // Every record is at least 6 bytes (a header and one byte), so this ends.
  while (needed === null || gathered < needed) {
    if (stream.length - offset < RECORD_HEADER) return { complete: false };
    const type = stream[offset] ?? 0;
    const major = stream[offset + 1] ?? 0;
    const minor = stream[offset + 2] ?? 0;
    const length = ((stream[offset + 3] ?? 0) << 8) | (stream[offset + 4] ?? 0);
    if (type !== CONTENT_HANDSHAKE) throw malformed(`record of content type ${type} before the hello ended`);
    if (major !== 3 || minor > 4) throw malformed(`record version ${major}.${minor} is not TLS`);
    if (length === 0 || length > MAX_RECORD_LENGTH) throw malformed(`record length ${length} is out of range`);
    if (stream.length - offset - RECORD_HEADER < length) return { complete: false };
    handshake.push(stream.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length));
    gathered += length;
    offset += RECORD_HEADER + length;
    if (needed === null && gathered >= 4) {
      const head = concat(handshake, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) throw malformed(`first handshake message has type ${head[0] ?? 0}, not ClientHello`);
      const helloLength = ((head[1] ?? 0) << 16) | ((head[2] ?? 0) << 8) | (head[3] ?? 0);
      if (helloLength > MAX_CLIENT_HELLO_BYTES) throw malformed(`declared length ${helloLength} is over the ${MAX_CLIENT_HELLO_BYTES} bytes runwall inspects`);
      needed = 4 + helloLength;
    }
    if (offset > MAX_CLIENT_HELLO_BYTES + 64 * RECORD_HEADER + RECORD_HEADER) throw malformed('spread over too many records');
  }
  // Another handshake message may follow the hello in its last record only in broken clients; it is not ours to judge.
  if (gathered > needed) throw malformed(`${gathered - needed} bytes follow the hello in its records`);
  const body = concat(handshake, needed).subarray(4);
  return { complete: true, consumed: offset, ...readBody(body) };
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && (parts[0]?.length ?? 0) >= length) return (parts[0] ?? new Uint8Array(0)).subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    if (at >= length) break;
    const take = part.subarray(0, length - at);
    out.set(take, at);
    at += take.length;
  }
  return out;
}

/** A cursor over one length-delimited region; every read checks the bound. */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    private at: number,
    private readonly end: number,
    private readonly what: string,
  ) {}

  get done(): boolean {
    return this.at === this.end;
  }

  u8(field: string): number {
    if (this.end - this.at < 1) throw malformed(`${this.what}: ${field} runs past the end`);
    return this.bytes[this.at++] ?? 0;
  }

  u16(field: string): number {
    return (this.u8(field) << 8) | this.u8(field);
  }

  skip(count: number, field: string): void {
    if (this.end - this.at < count) throw malformed(`${this.what}: ${field} runs past the end`);
    this.at += count;
  }

  /** A vector with a 1- or 2-byte length prefix, as a reader of its own. */
  vector(prefix: 1 | 2, field: string): Reader {
    const length = prefix === 1 ? this.u8(field) : this.u16(field);
    if (this.end - this.at < length) throw malformed(`${this.what}: ${field} of ${length} bytes runs past the end`);
    const inner = new Reader(this.bytes, this.at, this.at + length, field);
    this.at += length;
    return inner;
  }

  rest(): Uint8Array {
    const out = this.bytes.subarray(this.at, this.end);
    this.at = this.end;
    return out;
  }

  get remaining(): number {
    return this.end - this.at;
  }
}

function readBody(body: Uint8Array): { serverName: string | null; encryptedClientHello: boolean } {
  const hello = new Reader(body, 0, body.length, 'ClientHello');
  hello.skip(2 + 32, 'version and random');
  const sessionId = hello.vector(1, 'session id');
  if (sessionId.remaining > 32) throw malformed(`session id of ${sessionId.remaining} bytes is over 32`);
  const suites = hello.vector(2, 'cipher suites');
  if (suites.remaining === 0 || suites.remaining % 2 !== 0) throw malformed(`cipher suites of ${suites.remaining} bytes`);
  const compression = hello.vector(1, 'compression methods');
  if (compression.remaining === 0) throw malformed('no compression method');
  if (hello.done) return { serverName: null, encryptedClientHello: false }; // no extensions at all (old clients)
  const extensions = hello.vector(2, 'extensions');
  if (!hello.done) throw malformed(`${hello.remaining} bytes follow the extensions`);
  const seen = new Set<number>();
  let serverName: string | null = null;
  // Each extension takes at least its 4-byte header, so this ends.
  while (!extensions.done) {
    const type = extensions.u16('extension type');
    const data = extensions.vector(2, `extension ${type}`);
    if (seen.has(type)) throw malformed(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXTENSION_SERVER_NAME) serverName = readServerName(data);
  }
  return { serverName, encryptedClientHello: seen.has(EXTENSION_ENCRYPTED_CLIENT_HELLO) };
}

function readServerName(data: Reader): string {
  const list = data.vector(2, 'server name list');
  if (!data.done) throw malformed('bytes follow the server name list');
  if (list.done) throw malformed('empty server name list');
  let name: string | null = null;
  // Each entry takes at least 3 bytes, so this ends.
  while (!list.done) {
    const type = list.u8('name type');
    // Only host_name is defined; another type's encoding is unknown, so the rest cannot be read safely.
    if (type !== NAME_TYPE_HOST) throw malformed(`server name of unknown type ${type}`);
    const bytes = list.vector(2, 'host name').rest();
    if (name !== null) throw malformed('two host names');
    name = hostName(bytes);
  }
  return name ?? '';
}

function hostName(bytes: Uint8Array): string {
  if (bytes.length === 0) throw malformed('empty host name');
  if (bytes.length > MAX_HOST_NAME) throw malformed(`host name of ${bytes.length} bytes is over ${MAX_HOST_NAME}`);
  let text = '';
  for (const byte of bytes) {
    // RFC 6066: ASCII. Controls, spaces and bytes above 0x7e never name a host; refusing them keeps reports printable.
    if (byte < 0x21 || byte > 0x7e) throw malformed(`host name holds byte 0x${byte.toString(16).padStart(2, '0')}`);
    text += String.fromCharCode(byte);
  }
  return text;
}
