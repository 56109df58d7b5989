/**
 * Pure decoder of what read(2) returns on a fanotify group in FID mode
 * (FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID): a run of
 * `fanotify_event_metadata` records, each followed by info records that name
 * the directory (a file handle) and entry name, and the object's own handle.
 * No I/O. Layout: linux/fanotify.h (kernel 5.17+ for FAN_RENAME).
 */

export const FAN_MODIFY = 0x2;
export const FAN_CLOSE_WRITE = 0x8;
export const FAN_MOVED_FROM = 0x40;
export const FAN_MOVED_TO = 0x80;
export const FAN_CREATE = 0x100;
export const FAN_DELETE = 0x200;
export const FAN_DELETE_SELF = 0x400;
export const FAN_Q_OVERFLOW = 0x4000;
export const FAN_RENAME = 0x10000000;
export const FAN_ONDIR = 0x40000000;

export const FANOTIFY_METADATA_VERSION = 3;
const METADATA_LEN = 24;
const INFO_HEADER_LEN = 4;
/** fsid (8) + struct file_handle header (handle_bytes u32, handle_type i32). */
const FID_FIXED_LEN = 16;
const MAX_HANDLE_BYTES = 128;

export const FAN_EVENT_INFO_TYPE_FID = 1;
export const FAN_EVENT_INFO_TYPE_DFID_NAME = 2;
export const FAN_EVENT_INFO_TYPE_DFID = 3;
export const FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = 10;
export const FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = 12;

/** A directory (by handle key) and an entry name in it. */
export interface DirEntry {
  readonly dir: string;
  readonly name: string;
}

export interface FanotifyEvent {
  /** FAN_* bits; the kernel merges queued events for one object, so several may be set. */
  readonly mask: number;
  /** The process that caused it (its thread group id, in the reader's PID namespace). */
  readonly pid: number;
  /** Where it happened: the parent directory and the entry name (DFID_NAME). */
  readonly entry: DirEntry | null;
  /** FAN_RENAME: the old and new place. */
  readonly from: DirEntry | null;
  readonly to: DirEntry | null;
  /** The object's own handle key (the file or directory itself). */
  readonly object: string | null;
}

export interface FanotifyDecodeError {
  readonly code: 'RW_FANOTIFY_MALFORMED';
  readonly message: string;
}

export interface FanotifyDecoded {
  readonly events: readonly FanotifyEvent[];
  /** FAN_Q_OVERFLOW records: the kernel dropped events. */
  readonly overflows: number;
  readonly errors: readonly FanotifyDecodeError[];
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex(bytes: Uint8Array, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) out += HEX[bytes[i] ?? 0];
  return out;
}

/**
 * The key that names one file system object in every event and lookup:
 * fsid, handle type and handle bytes, as hex. The same object always has the
 * same key; two objects never share one.
 */
export function handleKey(fsid: Uint8Array, handleType: number, handle: Uint8Array): string {
  const type = new Uint8Array(4);
  new DataView(type.buffer).setInt32(0, handleType, true);
  return `${hex(fsid, 0, fsid.length)}.${hex(type, 0, 4)}.${hex(handle, 0, handle.length)}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

interface FidRecord {
  readonly key: string;
  readonly name: string | null;
}

/** One fid info record (after its 4-byte header): fsid, file_handle, and for *_NAME types a NUL-terminated name. */
function decodeFid(bytes: Uint8Array, view: DataView, start: number, end: number, withName: boolean): FidRecord | string {
  if (end - start < FID_FIXED_LEN) return `a fid record of ${end - start + INFO_HEADER_LEN} bytes is shorter than its fixed part`;
  const handleBytes = view.getUint32(start + 8, true);
  if (handleBytes > MAX_HANDLE_BYTES) return `a file handle claims ${handleBytes} bytes (at most ${MAX_HANDLE_BYTES})`;
  const handleStart = start + FID_FIXED_LEN;
  const handleEnd = handleStart + handleBytes;
  if (handleEnd > end) return `a file handle of ${handleBytes} bytes overruns its record`;
  const key = handleKey(bytes.subarray(start, start + 8), view.getInt32(start + 12, true), bytes.subarray(handleStart, handleEnd));
  if (!withName) return { key, name: null };
  let nul = handleEnd;
  while (nul < end && bytes[nul] !== 0) nul++;
  if (nul >= end) return 'an entry name is not NUL-terminated inside its record';
  const name = utf8.decode(bytes.subarray(handleEnd, nul));
  if (name === '' || name === '.' || name === '..' || name.includes('/')) return `an entry name ${JSON.stringify(name)} is not a single path segment`;
  return { key, name };
}

/**
 * Decodes one read(2) buffer. A malformed event is skipped and reported; a
 * malformed length stops decoding (nothing after it can be trusted).
 */
export function decodeFanotifyEvents(bytes: Uint8Array): FanotifyDecoded {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: FanotifyEvent[] = [];
  const errors: FanotifyDecodeError[] = [];
  let overflows = 0;
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < METADATA_LEN) {
      errors.push({ code: 'RW_FANOTIFY_MALFORMED', message: `${bytes.length - offset} trailing bytes are shorter than an event header` });
      break;
    }
    const eventLen = view.getUint32(offset, true);
    const version = view.getUint8(offset + 4);
    const metadataLen = view.getUint16(offset + 6, true);
    if (eventLen < METADATA_LEN || eventLen > bytes.length - offset || metadataLen < METADATA_LEN || metadataLen > eventLen) {
      errors.push({ code: 'RW_FANOTIFY_MALFORMED', message: `an event at byte ${offset} has length ${eventLen} and header ${metadataLen}; the rest of the buffer was dropped` });
      break;
    }
    const end = offset + eventLen;
    if (version !== FANOTIFY_METADATA_VERSION) {
      errors.push({ code: 'RW_FANOTIFY_MALFORMED', message: `an event has metadata version ${version}, expected ${FANOTIFY_METADATA_VERSION}; dropped` });
      offset = end;
      continue;
    }
    // The mask is 64 bits; every bit fanotify defines fits in the low 32.
    const mask = view.getUint32(offset + 8, true);
    const pid = view.getInt32(offset + 20, true);
    if (mask & FAN_Q_OVERFLOW) {
      overflows += 1;
      offset = end;
      continue;
    }
    let entry: DirEntry | null = null;
    let from: DirEntry | null = null;
    let to: DirEntry | null = null;
    let object: string | null = null;
    let problem: string | null = null;
    let record = offset + metadataLen;
    while (record < end && problem === null) {
      if (end - record < INFO_HEADER_LEN) {
        problem = 'an info record header overruns its event';
        break;
      }
      const type = view.getUint8(record);
      const length = view.getUint16(record + 2, true);
      if (length < INFO_HEADER_LEN || record + length > end) {
        problem = `an info record of length ${length} does not fit its event`;
        break;
      }
      const body = record + INFO_HEADER_LEN;
      const recordEnd = record + length;
      if (type === FAN_EVENT_INFO_TYPE_FID || type === FAN_EVENT_INFO_TYPE_DFID) {
        const fid = decodeFid(bytes, view, body, recordEnd, false);
        if (typeof fid === 'string') problem = fid;
        else if (type === FAN_EVENT_INFO_TYPE_FID) object = fid.key;
      } else if (type === FAN_EVENT_INFO_TYPE_DFID_NAME || type === FAN_EVENT_INFO_TYPE_OLD_DFID_NAME || type === FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
        const fid = decodeFid(bytes, view, body, recordEnd, true);
        if (typeof fid === 'string') problem = fid;
        else {
          const place = { dir: fid.key, name: fid.name ?? '' };
          if (type === FAN_EVENT_INFO_TYPE_DFID_NAME) entry = place;
          else if (type === FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) from = place;
          else to = place;
        }
      }
      // Other record types (pidfd, error) carry nothing this reader asks for.
      record = recordEnd;
    }
    if (problem === null && (mask & FAN_RENAME) !== 0 && (from === null || to === null)) problem = 'a rename event lacks its old or new place';
    if (problem !== null) errors.push({ code: 'RW_FANOTIFY_MALFORMED', message: `${problem} (event mask 0x${mask.toString(16)}, pid ${pid}); dropped` });
    else events.push({ mask, pid, entry, from, to, object });
    offset = end;
  }
  return { events, overflows, errors };
}
