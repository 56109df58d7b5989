/**
 * nftables set-element updates as one nfnetlink batch, written directly
 * instead of through libnftables' text parser: this is what the DNS proxy pays
 * per fresh answer before it releases it. Pure.
 *
 * A batch is BATCH_BEGIN (res_id NFNL_SUBSYS_NFTABLES), one NFT_MSG_NEWSETELEM
 * or NFT_MSG_DELSETELEM per operation (more when one would not fit a 16-bit
 * attribute length), BATCH_END. The kernel applies all of it or none, and
 * answers every message that asks for an ACK, and every one it refuses, with
 * NLMSG_ERROR (errno 0: done).
 *
 *   nlmsghdr  u32 len, u16 type, u16 flags, u32 seq, u32 portid   (host order)
 *   nfgenmsg  u8 family, u8 version, be16 res_id
 *   nlattr    u16 len, u16 type (| NLA_F_NESTED for nests), payload padded to 4
 *   NFTA_SET_ELEM_LIST_TABLE "name\0", _SET "name\0", _ELEMENTS {
 *     NFTA_LIST_ELEM { NFTA_SET_ELEM_TIMEOUT be64 ms, NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE key } } ... }
 *
 * Constants from linux/netfilter/nf_tables.h, nfnetlink.h and linux/netlink.h;
 * the layout is the one `nft --debug=mnl add element ...` sends (nft 1.0.6).
 */
import { HOST_LITTLE_ENDIAN, splitNetlinkFrames } from './netlink-frames.js';

export const NFPROTO_INET = 1;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFT_MSG_NEWSETELEM = (NFNL_SUBSYS_NFTABLES << 8) | 12;
export const NFT_MSG_DELSETELEM = (NFNL_SUBSYS_NFTABLES << 8) | 14;
export const NLMSG_ERROR = 2;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_CREATE = 0x400;
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
export const NLA_F_NESTED = 0x8000;
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
export const NFTA_LIST_ELEM = 1;
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_TIMEOUT = 4;
export const NFTA_DATA_VALUE = 1;
const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_OFFS = 2;

const NLMSG_HEADER = 16;
const NFGENMSG = 4;
const ATTR_HEADER = 4;
const TIMEOUT_ATTR = ATTR_HEADER + 8;
/** An nlattr's length is 16 bits: the ELEMENTS nest of one message must stay below it. */
const NEST_MAX = 0xffff;
/** nf_tables names are at most NFT_NAME_MAXLEN (256) bytes with their NUL. */
const NAME_MAX_BYTES = 255;

export interface SetElement {
  /** The key as the set stores it: each field of a concatenation padded to 4 bytes (see concatKey). */
  readonly key: Uint8Array;
  /** Absent: no NFTA_SET_ELEM_TIMEOUT (an element without one never expires unless the set has a default). */
  readonly timeoutMs?: number;
  /** How the element is named in errors, e.g. `203.0.113.5 . 443`. */
  readonly label: string;
}

export interface SetElementOperation {
  readonly kind: 'add' | 'delete';
  readonly set: string;
  readonly elements: readonly SetElement[];
}

export interface SetElementRequest {
  readonly family: number;
  readonly table: string;
  readonly operations: readonly SetElementOperation[];
  /** Sequence number of BATCH_BEGIN; each following message takes the next one (mod 2^32). */
  readonly firstSequence: number;
}

/** One NEWSETELEM/DELSETELEM of a batch, with what is needed to name a refused element. */
export interface SetElementMessage {
  readonly sequence: number;
  readonly kind: 'add' | 'delete';
  readonly set: string;
  readonly elements: readonly SetElement[];
  /** Where each element's NFTA_LIST_ELEM starts and ends, counted from the message's first byte. */
  readonly elementSpans: readonly (readonly [number, number])[];
}

export interface SetElementBatch {
  readonly bytes: Uint8Array;
  readonly beginSequence: number;
  readonly endSequence: number;
  readonly messages: readonly SetElementMessage[];
}

const utf8 = new TextEncoder();

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * The key of a concatenated set element: every field padded with zeros to a
 * multiple of 4 bytes, as the kernel lays out registers. `ipv4_addr . inet_service`
 * is 4 + 2 (big-endian port) + 2 zero bytes; `ipv6_addr . inet_service` is 16 + 4.
 */
export function concatKey(address: readonly number[], port: number): Uint8Array {
  if (address.length !== 4 && address.length !== 16) throw new RangeError(`an address has 4 or 16 bytes, not ${address.length}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`port ${port} is not an integer in 0-65535`);
  const key = new Uint8Array(address.length + 4);
  key.set(address);
  key[address.length] = port >> 8;
  key[address.length + 1] = port & 0xff;
  return key;
}

/** Encoded, checked names: a run uses a handful, and TextEncoder was most of an admission's encoding time. */
const nameCache = new Map<string, Uint8Array>();
const NAME_CACHE_MAX = 64;

function nameBytes(what: string, name: string): Uint8Array {
  const cached = nameCache.get(name);
  if (cached !== undefined) return cached;
  const bytes = utf8.encode(name);
  if (bytes.byteLength === 0 || bytes.byteLength > NAME_MAX_BYTES || bytes.includes(0)) {
    throw new RangeError(`${what} name ${JSON.stringify(name)} is not 1-${NAME_MAX_BYTES} bytes without NUL`);
  }
  if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
  nameCache.set(name, bytes);
  return bytes;
}

/** Copies a few bytes; a loop is cheaper than TypedArray.set at these sizes. */
function copyInto(target: Uint8Array, source: Uint8Array, at: number): void {
  for (let i = 0; i < source.byteLength; i++) target[at + i] = source[i] as number;
}

function elementLength(element: SetElement): number {
  const key = ATTR_HEADER + ATTR_HEADER + align4(element.key.byteLength);
  return ATTR_HEADER + (element.timeoutMs === undefined ? 0 : TIMEOUT_ATTR) + key;
}

function checkElement(element: SetElement): void {
  if (element.key.byteLength === 0 || element.key.byteLength > 64) throw new RangeError(`element ${element.label}: a key has 1-64 bytes, not ${element.key.byteLength}`);
  const timeout = element.timeoutMs;
  if (timeout !== undefined && (!Number.isSafeInteger(timeout) || timeout < 0)) throw new RangeError(`element ${element.label}: timeout ${timeout} ms is not a non-negative integer`);
}

interface PlannedMessage {
  readonly kind: 'add' | 'delete';
  readonly set: string;
  readonly setBytes: Uint8Array;
  readonly elements: readonly SetElement[];
  readonly elementsLength: number;
}

/** Splits operations into messages whose ELEMENTS nest fits 16 bits. Empty operations send nothing. */
function planMessages(operations: readonly SetElementOperation[]): PlannedMessage[] {
  const planned: PlannedMessage[] = [];
  for (const operation of operations) {
    const setBytes = nameBytes('set', operation.set);
    let chunk: SetElement[] = [];
    let length = 0;
    for (const element of operation.elements) {
      checkElement(element);
      const size = elementLength(element);
      if (chunk.length > 0 && ATTR_HEADER + length + size > NEST_MAX) {
        planned.push({ kind: operation.kind, set: operation.set, setBytes, elements: chunk, elementsLength: length });
        chunk = [];
        length = 0;
      }
      chunk.push(element);
      length += size;
    }
    if (chunk.length > 0) planned.push({ kind: operation.kind, set: operation.set, setBytes, elements: chunk, elementsLength: length });
  }
  return planned;
}

/** Writes nlmsghdr + nfgenmsg; returns the offset after them. */
function writeHeader(view: DataView, at: number, length: number, type: number, flags: number, sequence: number, family: number, resourceId: number): number {
  view.setUint32(at, length, HOST_LITTLE_ENDIAN);
  view.setUint16(at + 4, type, HOST_LITTLE_ENDIAN);
  view.setUint16(at + 6, flags, HOST_LITTLE_ENDIAN);
  view.setUint32(at + 8, sequence, HOST_LITTLE_ENDIAN);
  view.setUint32(at + 12, 0, HOST_LITTLE_ENDIAN); // portid 0: to the kernel
  view.setUint8(at + 16, family);
  view.setUint8(at + 17, 0); // NFNETLINK_V0
  view.setUint16(at + 18, resourceId, false);
  return at + NLMSG_HEADER + NFGENMSG;
}

function writeAttributeHeader(view: DataView, at: number, length: number, type: number): number {
  view.setUint16(at, length, HOST_LITTLE_ENDIAN);
  view.setUint16(at + 2, type, HOST_LITTLE_ENDIAN);
  return at + ATTR_HEADER;
}

/** A string attribute with its NUL; returns the offset after its padding (the buffer is zero-filled). */
function writeString(bytes: Uint8Array, view: DataView, at: number, type: number, text: Uint8Array): number {
  const length = ATTR_HEADER + text.byteLength + 1;
  writeAttributeHeader(view, at, length, type);
  copyInto(bytes, text, at + ATTR_HEADER);
  return at + align4(length);
}

/** The bytes of one batch and, per message, what it carries. RangeError on names, keys or timeouts that cannot be encoded. */
export function encodeSetElementBatch(request: SetElementRequest): SetElementBatch {
  const table = nameBytes('table', request.table);
  const planned = planMessages(request.operations);
  const tableLength = align4(ATTR_HEADER + table.byteLength + 1);
  const frame = NLMSG_HEADER + NFGENMSG;
  const lengths: number[] = [];
  let total = frame + frame;
  for (const m of planned) {
    const length = frame + tableLength + align4(ATTR_HEADER + m.setBytes.byteLength + 1) + ATTR_HEADER + m.elementsLength;
    lengths.push(length);
    total += length;
  }
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const first = request.firstSequence;

  let at = writeHeader(view, 0, frame, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first >>> 0, 0, NFNL_SUBSYS_NFTABLES);
  const messages: SetElementMessage[] = [];
  for (let i = 0; i < planned.length; i++) {
    const m = planned[i] as PlannedMessage;
    const start = at;
    const sequence = (first + i + 1) >>> 0;
    const type = m.kind === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
    // No NLM_F_EXCL: adding an element that exists is not an error (see Firewall's refresh for its timeout).
    const flags = NLM_F_REQUEST | NLM_F_ACK | (m.kind === 'add' ? NLM_F_CREATE : 0);
    at = writeHeader(view, at, lengths[i] as number, type, flags, sequence, request.family, 0);
    at = writeString(bytes, view, at, NFTA_SET_ELEM_LIST_TABLE, table);
    at = writeString(bytes, view, at, NFTA_SET_ELEM_LIST_SET, m.setBytes);
    at = writeAttributeHeader(view, at, ATTR_HEADER + m.elementsLength, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
    const spans: (readonly [number, number])[] = [];
    for (const element of m.elements) {
      const elementStart = at;
      at = writeAttributeHeader(view, at, elementLength(element), NFTA_LIST_ELEM | NLA_F_NESTED);
      if (element.timeoutMs !== undefined) {
        at = writeAttributeHeader(view, at, TIMEOUT_ATTR, NFTA_SET_ELEM_TIMEOUT);
        // be64 milliseconds, written as two halves (timeouts are safe integers).
        view.setUint32(at, Math.floor(element.timeoutMs / 0x1_0000_0000), false);
        view.setUint32(at + 4, element.timeoutMs >>> 0, false);
        at += 8;
      }
      at = writeAttributeHeader(view, at, ATTR_HEADER + ATTR_HEADER + align4(element.key.byteLength), NFTA_SET_ELEM_KEY | NLA_F_NESTED);
      at = writeAttributeHeader(view, at, ATTR_HEADER + element.key.byteLength, NFTA_DATA_VALUE);
      copyInto(bytes, element.key, at);
      at += align4(element.key.byteLength);
      spans.push([elementStart - start, at - start]);
    }
    messages.push({ sequence, kind: m.kind, set: m.set, elements: m.elements, elementSpans: spans });
  }
  const endSequence = (first + planned.length + 1) >>> 0;
  writeHeader(view, at, frame, NFNL_MSG_BATCH_END, NLM_F_REQUEST, endSequence, 0, NFNL_SUBSYS_NFTABLES);
  return { bytes, beginSequence: first >>> 0, endSequence, messages };
}

// ---- The kernel's answers ----

export interface NetlinkAck {
  /** The sequence number of the message answered. */
  readonly sequence: number;
  /** 0: done; otherwise the (positive) errno of the refusal. */
  readonly errno: number;
  /** The kernel's extended-ACK text, when it gave one. */
  readonly text: string | null;
  /** Where the attribute the kernel refused starts, counted from the refused message's first byte. */
  readonly attributeOffset: number | null;
}

export interface NetlinkAcks {
  readonly acks: NetlinkAck[];
  /** Set when part of the datagram could not be read; the acks before it are still good. */
  readonly error: string | null;
}

const utf8Decoder = new TextDecoder();

/** The NLMSG_ERROR answers in one datagram (other messages are skipped). Total: never throws. */
export function decodeNetlinkAcks(datagram: Uint8Array): NetlinkAcks {
  const { frames, error } = splitNetlinkFrames(datagram);
  const acks: NetlinkAck[] = [];
  for (const frame of frames) {
    if (frame.type !== NLMSG_ERROR) continue;
    const payload = frame.payload;
    // struct nlmsgerr { int error; struct nlmsghdr msg; } then, unless capped, the rest of the message.
    if (payload.byteLength < 4 + NLMSG_HEADER) return { acks, error: `an NLMSG_ERROR of ${payload.byteLength} bytes is shorter than struct nlmsgerr` };
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const status = view.getInt32(0, HOST_LITTLE_ENDIAN);
    const originalLength = view.getUint32(4, HOST_LITTLE_ENDIAN);
    const sequence = view.getUint32(4 + 8, HOST_LITTLE_ENDIAN);
    let text: string | null = null;
    let attributeOffset: number | null = null;
    if (frame.flags & NLM_F_ACK_TLVS) {
      // A success or a capped refusal carries only the header of the message it answers.
      const echoed = status === 0 || frame.flags & NLM_F_CAPPED ? NLMSG_HEADER : align4(originalLength);
      let at = 4 + echoed;
      // Each step advances by at least one attribute header, so the walk ends.
      while (at + ATTR_HEADER <= payload.byteLength) {
        const length = view.getUint16(at, HOST_LITTLE_ENDIAN);
        const type = view.getUint16(at + 2, HOST_LITTLE_ENDIAN) & 0x3fff;
        if (length < ATTR_HEADER || at + length > payload.byteLength) break;
        if (type === NLMSGERR_ATTR_MSG) text = utf8Decoder.decode(payload.subarray(at + ATTR_HEADER, at + length)).replace(/\0+$/, '');
        if (type === NLMSGERR_ATTR_OFFS && length >= ATTR_HEADER + 4) attributeOffset = view.getUint32(at + ATTR_HEADER, HOST_LITTLE_ENDIAN);
        at += align4(length);
      }
    }
    acks.push({ sequence, errno: status < 0 ? -status : status, text, attributeOffset });
  }
  return { acks, error };
}

/** One message (or the whole batch) the kernel refused, with the element it named when it named one. */
export interface SetElementRefusal {
  readonly errno: number;
  readonly text: string | null;
  /** null: the batch itself (its commit, or the batch framing) was refused. */
  readonly message: SetElementMessage | null;
  /** The refused element, when the kernel pointed at one (not at the table or set, say). */
  readonly element: SetElement | null;
}

/**
 * What the kernel said about one batch so far. Answers to other batches (an
 * earlier one that was given up on) are ignored by their sequence numbers.
 */
export class SetElementReplies {
  readonly #bySequence = new Map<number, SetElementMessage>();
  readonly #answered = new Set<number>();
  readonly #refusals: SetElementRefusal[] = [];
  #batchRefused = false;

  constructor(private readonly batch: SetElementBatch) {
    for (const message of batch.messages) this.#bySequence.set(message.sequence, message);
  }

  /** Every message has been answered. */
  get complete(): boolean {
    return this.#answered.size === this.#bySequence.size;
  }

  /** The kernel refused the batch as a whole: the messages' own answers may still follow, or never come. */
  get batchRefused(): boolean {
    return this.#batchRefused;
  }

  get refusals(): readonly SetElementRefusal[] {
    return this.#refusals;
  }

  /** Messages still without an answer. */
  get unanswered(): readonly SetElementMessage[] {
    return this.batch.messages.filter((m) => !this.#answered.has(m.sequence));
  }

  take(acks: Iterable<NetlinkAck>): void {
    for (const ack of acks) {
      if (ack.sequence === this.batch.beginSequence || ack.sequence === this.batch.endSequence) {
        if (ack.errno !== 0) {
          this.#batchRefused = true;
          this.#refusals.push({ errno: ack.errno, text: ack.text, message: null, element: null });
        }
        continue;
      }
      const message = this.#bySequence.get(ack.sequence);
      if (!message || this.#answered.has(ack.sequence)) continue;
      this.#answered.add(ack.sequence);
      if (ack.errno === 0) continue;
      this.#refusals.push({ errno: ack.errno, text: ack.text, message, element: elementAt(message, ack.attributeOffset) });
    }
  }
}

function elementAt(message: SetElementMessage, offset: number | null): SetElement | null {
  if (offset === null) return null;
  const index = message.elementSpans.findIndex(([start, end]) => offset >= start && offset < end);
  return index === -1 ? null : (message.elements[index] ?? null);
}
