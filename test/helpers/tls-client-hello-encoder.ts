// Builds TLS ClientHello bytes from structured values, written independently of src so
// that a round trip checks the parser: records, handshake header, body, extensions.

export interface HelloSpec {
  /** host_name of the server_name extension; null: no SNI extension. */
  readonly serverName: string | null;
  /** Other extensions (type, data) placed before and after SNI. */
  readonly extensionsBefore?: readonly { readonly type: number; readonly data: Uint8Array }[];
  readonly extensionsAfter?: readonly { readonly type: number; readonly data: Uint8Array }[];
  readonly sessionId?: Uint8Array;
  readonly cipherSuites?: readonly number[];
  /** Handshake bytes per TLS record (the hello split over records); default: one record. */
  readonly recordSizes?: readonly number[];
  /** Omit the extensions block entirely (SSL 3.0-era clients). */
  readonly noExtensions?: boolean;
}

function u16(value: number): Uint8Array {
  return Uint8Array.of((value >> 8) & 0xff, value & 0xff);
}

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function vector16(body: Uint8Array): Uint8Array {
  return concat(u16(body.length), body);
}

export function sniExtensionData(name: string): Uint8Array {
  const host = new TextEncoder().encode(name);
  return vector16(concat(Uint8Array.of(0), vector16(host)));
}

export function extension(type: number, data: Uint8Array): Uint8Array {
  return concat(u16(type), vector16(data));
}

/** The handshake message (type 1, 24-bit length, body). */
export function clientHelloHandshake(spec: HelloSpec): Uint8Array {
  const random = new Uint8Array(32).fill(7);
  const sessionId = spec.sessionId ?? new Uint8Array(32).fill(9);
  const suites = spec.cipherSuites ?? [0x1301, 0x1302, 0xc02f];
  const extensions = [
    ...(spec.extensionsBefore ?? []).map((e) => extension(e.type, e.data)),
    ...(spec.serverName === null ? [] : [extension(0, sniExtensionData(spec.serverName))]),
    ...(spec.extensionsAfter ?? []).map((e) => extension(e.type, e.data)),
  ];
  const body = concat(
    u16(0x0303),
    random,
    Uint8Array.of(sessionId.length),
    sessionId,
    vector16(concat(...suites.map(u16))),
    Uint8Array.of(1, 0),
    ...(spec.noExtensions ? [] : [vector16(concat(...extensions))]),
  );
  return concat(Uint8Array.of(1, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff), body);
}

/** The hello as a client sends it: TLS records of content type 22. */
export function clientHelloRecords(spec: HelloSpec): Uint8Array {
  const handshake = clientHelloHandshake(spec);
  const sizes = spec.recordSizes ?? [handshake.length];
  const records: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= handshake.length) break;
    const part = handshake.subarray(at, at + size);
    records.push(concat(Uint8Array.of(22, 3, 1), u16(part.length), part));
    at += part.length;
  }
  if (at < handshake.length) {
    const part = handshake.subarray(at);
    records.push(concat(Uint8Array.of(22, 3, 1), u16(part.length), part));
  }
  return concat(...records);
}
