/**
 * Netlink framing shared by the audit and proc-connector decoders: split a
 * datagram into messages, build one request. Pure. Headers are host byte order
 * (`nlmsghdr`: u32 len, u16 type, u16 flags, u32 seq, u32 portid).
 */

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HEADER_LENGTH = 16;

export interface NetlinkFrame {
  readonly type: number;
  readonly flags: number;
  readonly sequence: number;
  readonly portId: number;
  /** The bytes after the header, as long as the header says (not padded). */
  readonly payload: Uint8Array;
}

export interface NetlinkFrames {
  readonly frames: NetlinkFrame[];
  /** Set when trailing bytes could not be framed; the frames before it are still good. */
  readonly error: string | null;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Splits one datagram into its messages. Total: bad framing ends the walk with an error, never throws. */
export function splitNetlinkFrames(datagram: Uint8Array): NetlinkFrames {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const frames: NetlinkFrame[] = [];
  let offset = 0;
  // Each step advances by at least one header, so the walk ends.
  while (offset < datagram.byteLength) {
    const remaining = datagram.byteLength - offset;
    if (remaining < HEADER_LENGTH) return { frames, error: `${remaining} trailing bytes are shorter than a netlink header` };
    const length = view.getUint32(offset, HOST_LITTLE_ENDIAN);
    if (length < HEADER_LENGTH || length > remaining) {
      return { frames, error: `netlink message at byte ${offset} claims length ${length}, ${remaining} bytes remain` };
    }
    frames.push({
      type: view.getUint16(offset + 4, HOST_LITTLE_ENDIAN),
      flags: view.getUint16(offset + 6, HOST_LITTLE_ENDIAN),
      sequence: view.getUint32(offset + 8, HOST_LITTLE_ENDIAN),
      portId: view.getUint32(offset + 12, HOST_LITTLE_ENDIAN),
      payload: datagram.subarray(offset + HEADER_LENGTH, offset + length),
    });
    offset += align4(length);
  }
  return { frames, error: null };
}

/** One netlink message addressed to the kernel (portid 0 unless given). */
export function encodeNetlinkFrame(type: number, flags: number, sequence: number, payload: Uint8Array, portId = 0): Uint8Array {
  const bytes = new Uint8Array(align4(HEADER_LENGTH + payload.byteLength));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, HEADER_LENGTH + payload.byteLength, HOST_LITTLE_ENDIAN);
  view.setUint16(4, type, HOST_LITTLE_ENDIAN);
  view.setUint16(6, flags, HOST_LITTLE_ENDIAN);
  view.setUint32(8, sequence, HOST_LITTLE_ENDIAN);
  view.setUint32(12, portId, HOST_LITTLE_ENDIAN);
  bytes.set(payload, HEADER_LENGTH);
  return bytes;
}
