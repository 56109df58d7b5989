// Builds fanotify FID-mode read buffers from structured values: the inverse of
// decodeFanotifyEvents, written independently of src so that a round trip checks both.

export interface EncodedHandle {
  readonly fsid: Uint8Array; // 8 bytes
  readonly type: number;
  readonly bytes: Uint8Array;
}

export interface EncodedPlace {
  readonly dir: EncodedHandle;
  readonly name: string;
}

export interface EncodedEvent {
  readonly mask: number;
  readonly pid: number;
  readonly entry?: EncodedPlace;
  readonly from?: EncodedPlace;
  readonly to?: EncodedPlace;
  readonly object?: EncodedHandle;
  /** Metadata version to write (default 3). */
  readonly version?: number;
}

const TYPE = { FID: 1, DFID_NAME: 2, OLD_DFID_NAME: 10, NEW_DFID_NAME: 12 } as const;

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The key decodeFanotifyEvents gives this handle: hex fsid, hex little-endian type, hex bytes. */
export function expectedKey(handle: EncodedHandle): string {
  const type = new Uint8Array(4);
  new DataView(type.buffer).setInt32(0, handle.type, true);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return `${hex(handle.fsid)}.${hex(type)}.${hex(handle.bytes)}`;
}

function infoRecord(type: number, handle: EncodedHandle, name?: string): Uint8Array {
  const nameBytes = name === undefined ? new Uint8Array(0) : concat(new TextEncoder().encode(name), new Uint8Array([0]));
  const unpadded = 4 + 8 + 8 + handle.bytes.length + nameBytes.length;
  const length = Math.ceil(unpadded / 4) * 4; // the kernel pads info records to 4 bytes
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint8(0, type);
  view.setUint16(2, length, true);
  out.set(handle.fsid, 4);
  view.setUint32(12, handle.bytes.length, true);
  view.setInt32(16, handle.type, true);
  out.set(handle.bytes, 20);
  out.set(nameBytes, 20 + handle.bytes.length);
  return out;
}

export function encodeFanotifyEvent(event: EncodedEvent): Uint8Array {
  const records: Uint8Array[] = [];
  if (event.entry) records.push(infoRecord(TYPE.DFID_NAME, event.entry.dir, event.entry.name));
  if (event.from) records.push(infoRecord(TYPE.OLD_DFID_NAME, event.from.dir, event.from.name));
  if (event.to) records.push(infoRecord(TYPE.NEW_DFID_NAME, event.to.dir, event.to.name));
  if (event.object) records.push(infoRecord(TYPE.FID, event.object));
  const body = concat(...records);
  const header = new Uint8Array(24);
  const view = new DataView(header.buffer);
  view.setUint32(0, 24 + body.length, true);
  view.setUint8(4, event.version ?? 3);
  view.setUint16(6, 24, true);
  view.setBigUint64(8, BigInt(event.mask), true);
  view.setInt32(16, -1, true); // FAN_NOFD: FID mode never opens the file
  view.setInt32(20, event.pid, true);
  return concat(header, body);
}

export function encodeOverflow(): Uint8Array {
  return encodeFanotifyEvent({ mask: 0x4000, pid: -1 });
}
