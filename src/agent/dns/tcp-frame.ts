/**
 * DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): each message is preceded by
 * its length as a 16-bit big-endian integer. Pure: no I/O.
 */
import { RunwallError } from '../../protocol/index.js';
import { MAX_MESSAGE_BYTES } from './dns-wire.js';

/**
 * Reassembles messages from a byte stream chunked arbitrarily. The buffer is
 * bounded: complete frames are taken out as soon as they arrive, so at most one
 * partial frame (< 2 + 65,535 bytes) is ever held, and a frame longer than
 * `maxFrameBytes` is refused before it is buffered.
 */
export class TcpFrameDecoder {
  private pending: Uint8Array = new Uint8Array(0);
  private readonly maxFrameBytes: number;

  constructor(maxFrameBytes: number = MAX_MESSAGE_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_MESSAGE_BYTES) {
      throw new RangeError(`dns: maxFrameBytes ${maxFrameBytes} is not 0-${MAX_MESSAGE_BYTES}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /**
   * Feeds a chunk; returns the frames it completed, each a fresh copy the
   * caller owns. Throws RW_DNS_MALFORMED when a frame announces more than
   * `maxFrameBytes` (the stream cannot be resynchronised: close it).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    let data = chunk;
    if (this.pending.length > 0) {
      data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending);
      data.set(chunk, this.pending.length);
    }
    const frames: Uint8Array[] = [];
    let cursor = 0;
    while (data.length - cursor >= 2) {
      const length = (data[cursor]! << 8) | data[cursor + 1]!;
      if (length > this.maxFrameBytes) {
        this.pending = new Uint8Array(0);
        throw new RunwallError('RW_DNS_MALFORMED', `malformed DNS message: TCP frame of ${length} bytes exceeds ${this.maxFrameBytes}`);
      }
      if (data.length - cursor - 2 < length) break;
      frames.push(copyOf(data, cursor + 2, cursor + 2 + length));
      cursor += 2 + length;
    }
    // Copy the remainder so a caller reusing its chunk cannot change what is held.
    this.pending = cursor === data.length ? new Uint8Array(0) : copyOf(data, cursor, data.length);
    return frames;
  }
}

/** A copy (a Buffer's own `slice` would be a view sharing its memory). */
function copyOf(data: Uint8Array, from: number, to: number): Uint8Array {
  const copy = new Uint8Array(to - from);
  copy.set(data.subarray(from, to));
  return copy;
}

/** The message with its 2-byte length prefix. */
export function encodeTcpFrame(message: Uint8Array): Uint8Array {
  if (message.length > MAX_MESSAGE_BYTES) {
    throw new RunwallError('RW_DNS_MALFORMED', `malformed DNS message: ${message.length} bytes do not fit a TCP frame`);
  }
  const frame = new Uint8Array(message.length + 2);
  frame[0] = message.length >> 8;
  frame[1] = message.length & 0xff;
  frame.set(message, 2);
  return frame;
}
