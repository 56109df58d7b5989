/**
 * Which runwall consumer an audit record is for, decided before the record is
 * parsed. Pure. One multicast reader per runwall process receives every record
 * the kernel emits (runwall's, an auditd's, other runwall processes'); most of
 * them are nobody's business here, and EXECVE/PATH/PROCTITLE records are the
 * long ones. So: the header (serial, time) is read from the bytes; a SYSCALL
 * record's key (its last field) says whose event it is; the event's later
 * records follow their SYSCALL record by serial; only the record types the
 * topic uses are parsed.
 *
 * Audit tags an event with the key of the FIRST rule that matched, so a key
 * of another runwall process (or of an administrator's rule) does not mean the
 * event is someone else's: a topic takes any runwall key of its kind, and
 * consumers filter by their own job. Events under a foreign key are taken
 * for the process topic when their syscall is one runwall's process rules ask
 * for (execve, execveat, connect).
 */
import { AUDIT_RECORD, SYSCALL_NUMBERS, decodeAuditString, parseAuditRecord, type AuditRecord } from './audit-message.js';

export type AuditTopic = 'process' | 'detect';
export const AUDIT_TOPICS: readonly AuditTopic[] = ['process', 'detect'];

/** The OBJ_PID record: the target of ptrace and kill (detect). */
export const AUDIT_RECORD_OBJ_PID = 1318;

/** The records each topic reads (see interpretAuditEvent, interpretDetectAuditEvent); EOE ends an event. */
const TOPIC_RECORDS: Readonly<Record<AuditTopic, ReadonlySet<number>>> = {
  process: new Set([AUDIT_RECORD.SYSCALL, AUDIT_RECORD.EXECVE, AUDIT_RECORD.CWD, AUDIT_RECORD.SOCKADDR, AUDIT_RECORD.EOE]),
  detect: new Set([AUDIT_RECORD.SYSCALL, AUDIT_RECORD_OBJ_PID, AUDIT_RECORD.PROCTITLE, AUDIT_RECORD.EOE]),
};

export function topicReads(topic: AuditTopic, type: number): boolean {
  return TOPIC_RECORDS[topic].has(type);
}

/** The process sensor's keys (`runwall-<pid>-process-<n>`; older runwall: `runwall-<pid>`). */
export const PROCESS_KEY = /^runwall-\d+(?:-process(?:-\d+)?)?$/;
/** The detector's keys (`runwall-<pid>-detect-<what>`). */
export const DETECT_KEY_ANY = /^runwall-\d+-detect-/;
const ANY_RUNWALL_KEY = /^runwall-\d+(?:-|$)/;

/**
 * The topic of an event from its SYSCALL record's key, and (for keys that are
 * not runwall's) its architecture and syscall number; null: nobody's.
 */
export function auditTopicOf(key: string | null, syscall: { readonly arch: number; readonly number: number } | null): AuditTopic | null {
  // A rule with several keys (auditctl -k a -k b) joins them with \x01.
  const keys = key === null ? [] : key.split('\x01');
  if (keys.some((k) => PROCESS_KEY.test(k))) return 'process';
  if (keys.some((k) => DETECT_KEY_ANY.test(k))) return 'detect';
  if (keys.some((k) => ANY_RUNWALL_KEY.test(k))) return null; // runwall's, of no reading kind (the hub's presence rule)
  if (syscall === null) return null;
  const numbers = SYSCALL_NUMBERS[syscall.arch];
  if (!numbers) return null;
  return syscall.number === numbers.execve || syscall.number === numbers.execveat || syscall.number === numbers.connect ? 'process' : null;
}

/** A record's time and serial from the first bytes of its payload (`audit(SECONDS.MMM:SERIAL):`), or null. */
export function peekAuditHeader(payload: Uint8Array): { readonly timeMs: number; readonly serial: number } | null {
  const PREFIX = [0x61, 0x75, 0x64, 0x69, 0x74, 0x28]; // "audit("
  if (payload.byteLength < PREFIX.length) return null;
  for (let i = 0; i < PREFIX.length; i++) if (payload[i] !== PREFIX[i]) return null;
  let at = PREFIX.length;
  const digits = (): number | null => {
    const start = at;
    let value = 0;
    // Bounded by the payload's length.
    while (at < payload.byteLength && payload[at]! >= 0x30 && payload[at]! <= 0x39) {
      value = value * 10 + (payload[at]! - 0x30);
      at++;
    }
    return at === start ? null : value;
  };
  const seconds = digits();
  if (seconds === null || payload[at] !== 0x2e) return null; // "."
  at++;
  const msStart = at;
  const ms = digits();
  if (ms === null || at - msStart !== 3 || payload[at] !== 0x3a) return null; // three digits, ":"
  at++;
  const serial = digits();
  if (serial === null || payload[at] !== 0x29 || payload[at + 1] !== 0x3a) return null; // "):"
  const timeMs = seconds * 1000 + ms;
  if (!Number.isSafeInteger(seconds) || !Number.isSafeInteger(timeMs) || !Number.isSafeInteger(serial)) return null;
  return { timeMs, serial };
}

/**
 * The key of a SYSCALL record's text: the kernel writes it last (` key="…"`,
 * hex when unsafe, `(null)` when the rule had none). Kernel-quoted values
 * never hold a space, so the last ` key=` is the field.
 */
export function syscallRecordKey(text: string): string | null {
  const at = text.lastIndexOf(' key=');
  if (at < 0) return null;
  const raw = text.slice(at + 5).replace(/[\0\n]+$/, '');
  const space = raw.indexOf(' ');
  return decodeAuditString(space < 0 ? raw : raw.slice(0, space));
}

const SYSCALL_ID = / arch=([0-9a-fA-F]{1,8}) syscall=(\d{1,6})(?: |$)/;

/** `arch` and `syscall` of a SYSCALL record's text, or null. */
export function syscallRecordNumber(text: string): { arch: number; number: number } | null {
  const match = SYSCALL_ID.exec(text);
  return match ? { arch: parseInt(match[1]!, 16), number: Number(match[2]) } : null;
}

export interface RoutedRecord {
  readonly topic: AuditTopic;
  readonly record: AuditRecord;
}

const LATIN1 = new TextDecoder('latin1');
const NO_FIELDS: ReadonlyMap<string, string> = new Map();

/**
 * Routes records as they arrive. Holds the topic of each event whose SYSCALL
 * record was taken, until its EOE (bounded: the oldest is forgotten first).
 */
export class AuditRecordRouter {
  readonly #open = new Map<number, AuditTopic>();
  readonly #maxOpen: number;
  #latestRecordMs = 0;

  constructor(maxOpen = 4096) {
    this.#maxOpen = maxOpen;
  }

  /** The latest syscall time among every record seen (taken or not): records come in the order their calls returned. */
  get latestRecordMs(): number {
    return this.#latestRecordMs;
  }

  /** Events whose SYSCALL record was taken and whose EOE has not come. */
  get open(): number {
    return this.#open.size;
  }

  /** The record parsed with its topic, or null when no topic reads it. */
  route(type: number, payload: Uint8Array): RoutedRecord | null {
    if (type < AUDIT_RECORD.SYSCALL || type >= 1400) return null; // event records only (1300-1399)
    const header = peekAuditHeader(payload);
    if (header === null) return null;
    if (header.timeMs > this.#latestRecordMs) this.#latestRecordMs = header.timeMs;
    if (type === AUDIT_RECORD.SYSCALL) {
      const text = LATIN1.decode(payload);
      const key = syscallRecordKey(text);
      const topic = auditTopicOf(key, key !== null && ANY_RUNWALL_KEY.test(key) ? null : syscallRecordNumber(text));
      this.#open.delete(header.serial);
      if (topic === null) return null;
      const record = parseAuditRecord(type, text);
      if (record === null) return null;
      if (this.#open.size >= this.#maxOpen) {
        const oldest = this.#open.keys().next();
        if (!oldest.done) this.#open.delete(oldest.value);
      }
      this.#open.set(header.serial, topic);
      return { topic, record };
    }
    const topic = this.#open.get(header.serial);
    if (topic === undefined) return null;
    if (type === AUDIT_RECORD.EOE) {
      this.#open.delete(header.serial);
      return { topic, record: Object.freeze({ type, timeMs: header.timeMs, serial: header.serial, fields: NO_FIELDS }) };
    }
    if (!topicReads(topic, type)) return null;
    const record = parseAuditRecord(type, LATIN1.decode(payload));
    return record === null ? null : { topic, record };
  }
}
