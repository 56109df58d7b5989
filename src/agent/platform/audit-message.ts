/**
 * Pure decoding of Linux audit records (as the kernel multicasts them on
 * NETLINK_AUDIT group 1) into the activity the process sensor needs, and
 * encoding of the few control requests it sends (status, syscall rules).
 * No I/O: the sockets live in audit.ts.
 *
 * A record is one netlink message whose type is the record type and whose
 * payload is text: `audit(1700000000.123:42): key=value key="quoted" ...`.
 * Records of one event share the serial (42) and end with an EOE record.
 * Strings the kernel considers unsafe (spaces, quotes, control bytes, non-ASCII)
 * are hex-encoded and unquoted; safe ones are in double quotes.
 */
import { formatIpv6 } from './nflog-message.js';
import { HOST_LITTLE_ENDIAN, encodeNetlinkFrame } from './netlink-frames.js';
import { withFields } from '../with-fields.js';

// Message types (include/uapi/linux/audit.h).
export const AUDIT_GET = 1000;
export const AUDIT_SET = 1001;
export const AUDIT_ADD_RULE = 1011;
export const AUDIT_DEL_RULE = 1012;
export const AUDIT_LIST_RULES = 1013;
export const AUDIT_RECORD = {
  SYSCALL: 1300,
  PATH: 1302,
  SOCKADDR: 1306,
  CWD: 1307,
  EXECVE: 1309,
  EOE: 1320,
  PROCTITLE: 1327,
} as const;
/** The multicast group that carries a copy of every record (needs CAP_AUDIT_READ). */
export const AUDIT_NLGRP_READLOG = 1;

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;

// ---- Records ----

export interface AuditRecord {
  readonly type: number;
  /** Milliseconds since the epoch: when the syscall was entered. */
  readonly timeMs: number;
  readonly serial: number;
  /** Raw values as the kernel wrote them: still quoted or hex-encoded (see decodeAuditString). */
  readonly fields: ReadonlyMap<string, string>;
}

const HEADER = /^audit\((\d+)\.(\d{3}):(\d+)\):\s?/;

/** Parses one record's text; null when it has no `audit(time:serial):` header. */
export function parseAuditRecord(type: number, text: string): AuditRecord | null {
  const clean = text.replace(/\0+$/, '');
  const header = HEADER.exec(clean);
  if (!header) return null;
  const timeMs = Number(header[1]) * 1000 + Number(header[2]);
  const serial = Number(header[3]);
  if (!Number.isSafeInteger(timeMs) || !Number.isSafeInteger(serial)) return null;
  return Object.freeze({ type, timeMs, serial, fields: tokenize(clean.slice(header[0].length)) });
}

/** key=value pairs; a value is "double quoted", 'single quoted' (user records) or runs to the next space. */
function tokenize(body: string): Map<string, string> {
  const fields = new Map<string, string>();
  let i = 0;
  // Each iteration consumes at least one character, so the walk ends.
  while (i < body.length) {
    while (body[i] === ' ') i++;
    const equals = body.indexOf('=', i);
    if (equals < 0) break;
    const key = body.slice(i, equals);
    let j = equals + 1;
    let value: string;
    const quote = body[j];
    if (quote === '"' || quote === "'") {
      const close = body.indexOf(quote, j + 1);
      const end = close < 0 ? body.length : close + 1;
      value = body.slice(j, end);
      j = end;
    } else {
      const space = body.indexOf(' ', j);
      const end = space < 0 ? body.length : space;
      value = body.slice(j, end);
      j = end;
    }
    if (key !== '' && !key.includes(' ')) fields.set(key, value);
    i = Math.max(j, i + 1);
  }
  return fields;
}

/**
 * The bytes of a string value: "quoted" as is, hex decoded, `(null)`/`(none)`
 * as null. A hex value with an odd length or a non-hex digit is not a string
 * the kernel wrote; it is returned as its own text.
 */
export function decodeAuditBytes(raw: string | undefined): Uint8Array | null {
  if (raw === undefined || raw === '(null)' || raw === '(none)') return null;
  if (raw.length >= 2 && (raw[0] === '"' || raw[0] === "'") && raw.endsWith(raw[0])) return new TextEncoder().encode(raw.slice(1, -1));
  if (raw.length % 2 === 0 && /^[0-9A-Fa-f]*$/.test(raw)) {
    const bytes = new Uint8Array(raw.length / 2);
    for (let k = 0; k < bytes.length; k++) bytes[k] = parseInt(raw.slice(2 * k, 2 * k + 2), 16);
    return bytes;
  }
  return new TextEncoder().encode(raw);
}

const UTF8 = new TextDecoder('utf-8', { fatal: false });

export function decodeAuditString(raw: string | undefined): string | null {
  const bytes = decodeAuditBytes(raw);
  return bytes === null ? null : UTF8.decode(bytes);
}

function integer(raw: string | undefined): number | null {
  if (raw === undefined || !/^-?\d+$/.test(raw)) return null;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : null;
}

// ---- Events: the records of one serial ----

/**
 * Collects records by serial until the event's EOE record arrives. Bounded:
 * at most `maxOpen` events are held; the oldest is completed early (incomplete)
 * when more arrive, and `expire` completes those older than a given age.
 */
export class AuditAssembler {
  readonly #open = new Map<number, { records: AuditRecord[]; firstSeenMs: number }>();
  readonly #maxOpen: number;

  constructor(maxOpen = 4096) {
    this.#maxOpen = maxOpen;
  }

  get open(): number {
    return this.#open.size;
  }

  /** Adds a record; returns the events it completed (in order). */
  add(record: AuditRecord, nowMs: number): AuditRecord[][] {
    const done: AuditRecord[][] = [];
    if (record.type === AUDIT_RECORD.EOE) {
      const entry = this.#open.get(record.serial);
      this.#open.delete(record.serial);
      if (entry) done.push(entry.records);
      return done;
    }
    let entry = this.#open.get(record.serial);
    if (!entry) {
      if (this.#open.size >= this.#maxOpen) {
        const oldest = this.#open.keys().next();
        if (!oldest.done) {
          done.push(this.#open.get(oldest.value)!.records);
          this.#open.delete(oldest.value);
        }
      }
      entry = { records: [], firstSeenMs: nowMs };
      this.#open.set(record.serial, entry);
    }
    entry.records.push(record);
    return done;
  }

  /** Completes events whose first record is older than `maxAgeMs` (records without an EOE, e.g. single-record events). */
  expire(nowMs: number, maxAgeMs: number): AuditRecord[][] {
    const done: AuditRecord[][] = [];
    for (const [serial, entry] of this.#open) {
      if (nowMs - entry.firstSeenMs < maxAgeMs) break; // insertion order is arrival order
      done.push(entry.records);
      this.#open.delete(serial);
    }
    return done;
  }
}

export interface AuditProcessFields {
  readonly serial: number;
  readonly timeMs: number;
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number | null;
  readonly exe: string | null;
  readonly comm: string | null;
  /** The rule key that matched (runwall's own rules say `runwall-<pid>`). */
  readonly key: string | null;
}

export interface AuditExec extends AuditProcessFields {
  readonly kind: 'exec';
  readonly argv: readonly string[];
  /** Arguments were cut at the limits (count, bytes) or records were missing. */
  readonly argvTruncated: boolean;
  readonly cwd: string | null;
}

export type SocketSyscall = 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg';

export interface AuditSocketCall extends AuditProcessFields {
  readonly kind: 'socket';
  readonly syscall: SocketSyscall;
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  /** The call succeeded (a non-blocking connect in progress reports EINPROGRESS: not a success, still an attempt). */
  readonly success: boolean;
  readonly exit: number | null;
}

export type AuditActivity = AuditExec | AuditSocketCall;

export const AUDIT_ARCH = { X86_64: 0xc000003e, AARCH64: 0xc00000b7 } as const;

type SyscallName = 'execve' | 'execveat' | SocketSyscall;

/** The syscalls runwall asks audit for, by architecture (the numbers differ). */
export const SYSCALL_NUMBERS: Readonly<Record<number, Readonly<Record<SyscallName, number>>>> = {
  [AUDIT_ARCH.X86_64]: { execve: 59, execveat: 322, connect: 42, sendto: 44, sendmsg: 46, sendmmsg: 307 },
  [AUDIT_ARCH.AARCH64]: { execve: 221, execveat: 281, connect: 203, sendto: 206, sendmsg: 211, sendmmsg: 269 },
};

function syscallName(arch: number, number: number): SyscallName | null {
  const table = SYSCALL_NUMBERS[arch];
  if (!table) return null;
  for (const [name, value] of Object.entries(table) as [SyscallName, number][]) if (value === number) return name;
  return null;
}

/** Bounds on what one exec keeps: the arguments of a build command are rarely longer. */
export const ARGV_MAX_COUNT = 1024;
export const ARGV_MAX_BYTES = 64 * 1024;

/**
 * What one audit event says, or null when it is not an exec or a socket call
 * to an IPv4/IPv6 address. Exec events that failed (`success=no`) are null:
 * they changed nothing.
 */
export function interpretAuditEvent(records: readonly AuditRecord[]): AuditActivity | null {
  const syscall = records.find((r) => r.type === AUDIT_RECORD.SYSCALL);
  if (!syscall) return null;
  const f = syscall.fields;
  const arch = f.get('arch') !== undefined ? parseInt(f.get('arch')!, 16) : NaN;
  const number = integer(f.get('syscall'));
  const pid = integer(f.get('pid'));
  const ppid = integer(f.get('ppid'));
  if (number === null || pid === null || ppid === null || Number.isNaN(arch)) return null;
  const name = syscallName(arch, number);
  if (name === null) return null;
  const base: AuditProcessFields = {
    serial: syscall.serial,
    timeMs: syscall.timeMs,
    pid,
    ppid,
    uid: integer(f.get('uid')),
    exe: decodeAuditString(f.get('exe')),
    comm: decodeAuditString(f.get('comm')),
    key: decodeAuditString(f.get('key')),
  };
  const success = f.get('success') === 'yes';
  if (name === 'execve' || name === 'execveat') {
    if (!success) return null;
    const cwdRecord = records.find((r) => r.type === AUDIT_RECORD.CWD);
    const { argv, truncated } = assembleArgv(records.filter((r) => r.type === AUDIT_RECORD.EXECVE));
    return Object.freeze(
      withFields(base, {
        kind: 'exec' as const,
        argv: Object.freeze(argv),
        argvTruncated: truncated,
        cwd: cwdRecord ? decodeAuditString(cwdRecord.fields.get('cwd')) : null,
      }),
    );
  }
  const sockaddr = records.find((r) => r.type === AUDIT_RECORD.SOCKADDR);
  const address = sockaddr ? decodeSockaddr(decodeAuditBytes(sockaddr.fields.get('saddr'))) : null;
  if (!address) return null;
  return Object.freeze(withFields(base, { kind: 'socket' as const, syscall: name, ...address, success, exit: integer(f.get('exit')) }));
}

/**
 * The argument vector from an event's EXECVE records: `argc=N`, then `aI=V`
 * or, for long arguments, `aI_len=L aI[0]=V aI[1]=V ...` (possibly over several
 * records). Chunks are joined as bytes, then read as UTF-8.
 */
export function assembleArgv(execveRecords: readonly AuditRecord[]): { argv: string[]; truncated: boolean } {
  const fields = new Map<string, string>();
  for (const record of execveRecords) for (const [key, value] of record.fields) fields.set(key, value);
  const argc = integer(fields.get('argc'));
  if (argc === null || argc < 0) return { argv: [], truncated: execveRecords.length > 0 };
  const argv: string[] = [];
  let bytes = 0;
  let truncated = argc > ARGV_MAX_COUNT;
  for (let i = 0; i < Math.min(argc, ARGV_MAX_COUNT); i++) {
    let value: Uint8Array | null = decodeAuditBytes(fields.get(`a${i}`));
    if (value === null && fields.has(`a${i}_len`)) {
      const chunks: Uint8Array[] = [];
      // Chunk indexes are consecutive from 0; a gap means a record was lost.
      for (let k = 0; fields.has(`a${i}[${k}]`) && k < 100_000; k++) chunks.push(decodeAuditBytes(fields.get(`a${i}[${k}]`)) ?? new Uint8Array());
      const joined = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      let at = 0;
      for (const chunk of chunks) {
        joined.set(chunk, at);
        at += chunk.byteLength;
      }
      if (joined.byteLength !== integer(fields.get(`a${i}_len`))) truncated = true;
      value = joined;
    }
    if (value === null) {
      truncated = true;
      break;
    }
    if (bytes + value.byteLength > ARGV_MAX_BYTES) {
      argv.push(UTF8.decode(value.subarray(0, Math.max(0, ARGV_MAX_BYTES - bytes))));
      truncated = true;
      break;
    }
    bytes += value.byteLength;
    argv.push(UTF8.decode(value));
  }
  return { argv, truncated };
}

const AF_INET = 2;
const AF_INET6 = 10;

/** An IPv4/IPv6 `struct sockaddr` (family in host order, port and address in network order), else null. */
export function decodeSockaddr(bytes: Uint8Array | null): { family: 4 | 6; address: string; port: number } | null {
  if (bytes === null || bytes.byteLength < 2) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = view.getUint16(0, HOST_LITTLE_ENDIAN);
  if (family === AF_INET && bytes.byteLength >= 8) {
    return { family: 4, port: view.getUint16(2, false), address: Array.from(bytes.subarray(4, 8)).join('.') };
  }
  if (family === AF_INET6 && bytes.byteLength >= 24) {
    return { family: 6, port: view.getUint16(2, false), address: formatIpv6(view, 8) };
  }
  return null;
}

// ---- Control requests ----

export interface AuditStatus {
  readonly enabled: number;
  readonly failure: number;
  /** The registered audit daemon (auditd), 0 when none. */
  readonly pid: number;
  readonly rateLimit: number;
  readonly backlogLimit: number;
  readonly lost: number;
  readonly backlog: number;
}

const STATUS_FIELDS = 11; // struct audit_status, u32 each, as of Linux 5.x
const STATUS_ENABLED = 0x1;
const STATUS_BACKLOG_LIMIT = 0x10;

export function decodeAuditStatus(payload: Uint8Array): AuditStatus | null {
  if (payload.byteLength < 32) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const u32 = (i: number): number => view.getUint32(i * 4, HOST_LITTLE_ENDIAN);
  return Object.freeze({ enabled: u32(1), failure: u32(2), pid: u32(3), rateLimit: u32(4), backlogLimit: u32(5), lost: u32(6), backlog: u32(7) });
}

export function encodeAuditGet(sequence: number): Uint8Array {
  return encodeNetlinkFrame(AUDIT_GET, NLM_F_REQUEST | NLM_F_ACK, sequence, new Uint8Array());
}

/** AUDIT_SET for the values given (others untouched). */
export function encodeAuditSet(change: { enabled?: 0 | 1; backlogLimit?: number }, sequence: number): Uint8Array {
  const payload = new Uint8Array(STATUS_FIELDS * 4);
  const view = new DataView(payload.buffer);
  let mask = 0;
  if (change.enabled !== undefined) {
    mask |= STATUS_ENABLED;
    view.setUint32(4, change.enabled, HOST_LITTLE_ENDIAN);
  }
  if (change.backlogLimit !== undefined) {
    mask |= STATUS_BACKLOG_LIMIT;
    view.setUint32(20, change.backlogLimit, HOST_LITTLE_ENDIAN);
  }
  view.setUint32(0, mask, HOST_LITTLE_ENDIAN);
  return encodeNetlinkFrame(AUDIT_SET, NLM_F_REQUEST | NLM_F_ACK, sequence, payload);
}

export function encodeAuditListRules(sequence: number): Uint8Array {
  return encodeNetlinkFrame(AUDIT_LIST_RULES, NLM_F_REQUEST | NLM_F_DUMP, sequence, new Uint8Array());
}

// struct audit_rule_data: flags, action, field_count, mask[64], fields[64], values[64], fieldflags[64], buflen, buf[]
const BITMASK_WORDS = 64;
const MAX_FIELDS = 64;
const MASK_AT = 12;
const FIELDS_AT = MASK_AT + BITMASK_WORDS * 4;
const VALUES_AT = FIELDS_AT + MAX_FIELDS * 4;
const FLAGS_AT = VALUES_AT + MAX_FIELDS * 4;
const BUFLEN_AT = FLAGS_AT + MAX_FIELDS * 4;
const RULE_HEADER = BUFLEN_AT + 4;

export const AUDIT_FILTER_EXIT = 0x04;
export const AUDIT_ALWAYS = 2;
export const AUDIT_FIELD = { PID: 0, ARCH: 11, SUCCESS: 104, SADDR_FAM: 113, FILTERKEY: 210 } as const;
export const AUDIT_OP = { EQUAL: 0x40000000, NOT_EQUAL: 0x30000000 } as const;
export const AUDIT_MAX_KEY_LEN = 256;

export interface AuditRuleSpec {
  readonly syscalls: readonly number[];
  readonly fields: readonly { readonly field: number; readonly op: number; readonly value: number }[];
  /** The rule's key (`-k`), how runwall finds its own rules again. */
  readonly key: string;
}

/** An exit-filter `always` rule as the kernel's `struct audit_rule_data`. */
export function encodeAuditRule(spec: AuditRuleSpec): Uint8Array {
  const key = new TextEncoder().encode(spec.key);
  if (key.byteLength === 0 || key.byteLength > AUDIT_MAX_KEY_LEN) throw new RangeError(`audit rule key must be 1-${AUDIT_MAX_KEY_LEN} bytes`);
  if (spec.fields.length + 1 > MAX_FIELDS) throw new RangeError('too many audit rule fields');
  const bytes = new Uint8Array(RULE_HEADER + key.byteLength);
  const view = new DataView(bytes.buffer);
  const u32 = (at: number, value: number): void => view.setUint32(at, value >>> 0, HOST_LITTLE_ENDIAN);
  u32(0, AUDIT_FILTER_EXIT);
  u32(4, AUDIT_ALWAYS);
  for (const syscall of spec.syscalls) {
    if (!Number.isInteger(syscall) || syscall < 0 || syscall >= BITMASK_WORDS * 32) throw new RangeError(`syscall ${syscall} out of range`);
    const at = MASK_AT + Math.floor(syscall / 32) * 4;
    u32(at, view.getUint32(at, HOST_LITTLE_ENDIAN) | (1 << syscall % 32));
  }
  const fields = [...spec.fields, { field: AUDIT_FIELD.FILTERKEY, op: AUDIT_OP.EQUAL, value: key.byteLength }];
  fields.forEach((field, i) => {
    u32(FIELDS_AT + i * 4, field.field);
    u32(VALUES_AT + i * 4, field.value);
    u32(FLAGS_AT + i * 4, field.op);
  });
  u32(8, fields.length);
  u32(BUFLEN_AT, key.byteLength);
  bytes.set(key, RULE_HEADER);
  return bytes;
}

export function encodeAuditRuleRequest(type: typeof AUDIT_ADD_RULE | typeof AUDIT_DEL_RULE, rule: Uint8Array, sequence: number): Uint8Array {
  return encodeNetlinkFrame(type, NLM_F_REQUEST | NLM_F_ACK, sequence, rule);
}

/**
 * The key of a rule the kernel listed (AUDIT_LIST_RULES reply payload), or null.
 * String fields are stored one after another in `buf`, in field order.
 */
export function decodeAuditRuleKey(payload: Uint8Array): string | null {
  if (payload.byteLength < RULE_HEADER) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = Math.min(view.getUint32(8, HOST_LITTLE_ENDIAN), MAX_FIELDS);
  const buflen = view.getUint32(BUFLEN_AT, HOST_LITTLE_ENDIAN);
  if (RULE_HEADER + buflen > payload.byteLength) return null;
  let at = RULE_HEADER;
  for (let i = 0; i < count; i++) {
    const field = view.getUint32(FIELDS_AT + i * 4, HOST_LITTLE_ENDIAN);
    if (!STRING_FIELDS.has(field)) continue;
    const length = view.getUint32(VALUES_AT + i * 4, HOST_LITTLE_ENDIAN);
    if (at + length > RULE_HEADER + buflen) return null;
    if (field === AUDIT_FIELD.FILTERKEY) return UTF8.decode(payload.subarray(at, at + length));
    at += length;
  }
  return null;
}

/** Rule fields whose value lives in `buf`: LSM subject/object labels, watch, dir, exe, filterkey. */
const STRING_FIELDS = new Set([13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210]);

/**
 * runwall's rules: successful execs (argv, cwd, exe), and connect() to IPv4/IPv6
 * addresses (destination, pid) for attributing connections and DNS queries.
 * Only connect, not sendto/sendmsg: those are per packet, and auditing every
 * packet made a UDP sender 5-9 times slower (measured); a flow is connected
 * once (TCP always; UDP by glibc's and c-ares's resolvers, Go, QUIC clients).
 * `exceptPid` (runwall itself) is left out: its own upstream traffic is not the job's.
 */
export function runwallAuditRules(arch: number, key: string, exceptPid: number): AuditRuleSpec[] {
  const numbers = SYSCALL_NUMBERS[arch];
  if (!numbers) throw new RangeError(`no syscall table for audit arch 0x${arch.toString(16)}`);
  const archField = { field: AUDIT_FIELD.ARCH, op: AUDIT_OP.EQUAL, value: arch };
  const notUs = { field: AUDIT_FIELD.PID, op: AUDIT_OP.NOT_EQUAL, value: exceptPid };
  const sockets = [numbers.connect];
  return [
    { syscalls: [numbers.execve, numbers.execveat], fields: [archField, { field: AUDIT_FIELD.SUCCESS, op: AUDIT_OP.EQUAL, value: 1 }], key },
    { syscalls: sockets, fields: [archField, notUs, { field: AUDIT_FIELD.SADDR_FAM, op: AUDIT_OP.EQUAL, value: AF_INET }], key },
    { syscalls: sockets, fields: [archField, notUs, { field: AUDIT_FIELD.SADDR_FAM, op: AUDIT_OP.EQUAL, value: AF_INET6 }], key },
  ];
}
