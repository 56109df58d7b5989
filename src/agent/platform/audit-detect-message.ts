/**
 * Pure part of the detector's audit rules: which syscalls and files it asks
 * audit about (ptrace attach, process_vm_readv/writev, signals to the agent,
 * writes to guarded files, opens of a protected process's /proc/PID/mem), the
 * encoding of file-watch rules, and what one audit event of those rules means.
 * Records are parsed by audit-message.ts; the sockets live in audit-detect.ts.
 */
import { AUDIT_ARCH, AUDIT_FIELD, AUDIT_OP, AUDIT_RECORD, decodeAuditBytes, decodeAuditString, type AuditRecord, type AuditRuleSpec } from './audit-message.js';
import { HOST_LITTLE_ENDIAN } from './netlink-frames.js';

type DetectSyscall = 'ptrace' | 'process_vm_readv' | 'process_vm_writev' | 'kill' | 'tkill' | 'tgkill';
type FileSyscall = 'rename' | 'delete' | 'attribute';

export const DETECT_SYSCALLS: Readonly<Record<number, Readonly<Record<DetectSyscall, number>>>> = {
  [AUDIT_ARCH.X86_64]: { ptrace: 101, process_vm_readv: 310, process_vm_writev: 311, kill: 62, tkill: 200, tgkill: 234 },
  [AUDIT_ARCH.AARCH64]: { ptrace: 117, process_vm_readv: 270, process_vm_writev: 271, kill: 129, tkill: 130, tgkill: 131 },
};

/** Syscalls that change a name or attributes rather than contents, by architecture (everything else on a watched file is a write). */
const FILE_SYSCALLS: Readonly<Record<number, Readonly<Record<number, FileSyscall>>>> = {
  [AUDIT_ARCH.X86_64]: { 82: 'rename', 264: 'rename', 316: 'rename', 87: 'delete', 263: 'delete', 90: 'attribute', 91: 'attribute', 268: 'attribute', 92: 'attribute', 93: 'attribute', 94: 'attribute', 260: 'attribute', 188: 'attribute', 280: 'attribute' },
  [AUDIT_ARCH.AARCH64]: { 38: 'rename', 276: 'rename', 35: 'delete', 52: 'attribute', 53: 'attribute', 54: 'attribute', 55: 'attribute', 5: 'attribute', 88: 'attribute' },
};

export const PTRACE_ATTACH = 16;
export const PTRACE_SEIZE = 0x4206;
const AUDIT_FIELD_ARG0 = 200;
const AUDIT_FIELD_WATCH = 105;
const AUDIT_FIELD_PERM = 106;
export const AUDIT_PERM = { EXEC: 1, WRITE: 2, READ: 4, ATTR: 8 } as const;
/** The OBJ_PID record: the target of ptrace and kill. */
const AUDIT_OBJ_PID = 1318;

/** Keys: `<base>-ptrace`, `<base>-vm`, `<base>-signal`, `<base>-file-<id>` (watchFileId), `<base>-mem-<pid>`. */
export function detectKeyBase(pid: number): string {
  return `runwall-${pid}-detect`;
}

export const DETECT_KEY = /^runwall-(\d+)-detect(?:-|$)/;

/**
 * The id of a watched file in its rule's key: the same path gets the same id
 * in every runwall process, so a write reported under another runwall's
 * watch (audit keeps the first matching rule's key) is still recognised.
 * FNV-1a (32 bits) of the path's UTF-8 bytes, 8 hex digits.
 */
export function watchFileId(path: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(path)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

/** The syscall rules: always ptrace attach/seize and process_vm_*; signals only when there is an agent to protect. */
export function detectSyscallRules(arch: number, base: string, agentPid: number | null): AuditRuleSpec[] {
  const n = DETECT_SYSCALLS[arch];
  if (!n) throw new RangeError(`no syscall table for audit arch 0x${arch.toString(16)}`);
  const archField = { field: AUDIT_FIELD.ARCH, op: AUDIT_OP.EQUAL, value: arch };
  const arg0 = (value: number) => ({ field: AUDIT_FIELD_ARG0, op: AUDIT_OP.EQUAL, value });
  const rules: AuditRuleSpec[] = [
    { syscalls: [n.ptrace], fields: [archField, arg0(PTRACE_ATTACH)], key: `${base}-ptrace` },
    { syscalls: [n.ptrace], fields: [archField, arg0(PTRACE_SEIZE)], key: `${base}-ptrace` },
    { syscalls: [n.process_vm_readv, n.process_vm_writev], fields: [archField], key: `${base}-vm` },
  ];
  if (agentPid !== null) rules.push({ syscalls: [n.kill, n.tkill, n.tgkill], fields: [archField, arg0(agentPid)], key: `${base}-signal` });
  return rules;
}

// struct audit_rule_data layout (see audit-message.ts).
const MASK_AT = 12;
const FIELDS_AT = MASK_AT + 64 * 4;
const VALUES_AT = FIELDS_AT + 64 * 4;
const FLAGS_AT = VALUES_AT + 64 * 4;
const BUFLEN_AT = FLAGS_AT + 64 * 4;
const RULE_HEADER = BUFLEN_AT + 4;

/**
 * A file watch (`auditctl -w PATH -p PERM -k KEY`): an exit rule on every
 * syscall with the path and the key as string fields. The kernel resolves the
 * parent directory when the rule is added and follows the name afterwards.
 */
export function encodeWatchRule(path: string, perm: number, key: string): Uint8Array {
  if (!path.startsWith('/') || path.length < 2 || path.endsWith('/')) throw new RangeError(`a watch path must be absolute without a trailing slash: ${path}`);
  const pathBytes = new TextEncoder().encode(path);
  const keyBytes = new TextEncoder().encode(key);
  if (keyBytes.byteLength === 0 || keyBytes.byteLength > 256) throw new RangeError('audit rule key must be 1-256 bytes');
  const bytes = new Uint8Array(RULE_HEADER + pathBytes.byteLength + keyBytes.byteLength);
  const view = new DataView(bytes.buffer);
  const u32 = (at: number, value: number): void => view.setUint32(at, value >>> 0, HOST_LITTLE_ENDIAN);
  u32(0, 0x04); // AUDIT_FILTER_EXIT
  u32(4, 2); // AUDIT_ALWAYS
  for (let word = 0; word < 64; word++) u32(MASK_AT + word * 4, 0xffffffff);
  const fields = [
    { field: AUDIT_FIELD_WATCH, value: pathBytes.byteLength },
    { field: AUDIT_FIELD_PERM, value: perm },
    { field: AUDIT_FIELD.FILTERKEY, value: keyBytes.byteLength },
  ];
  fields.forEach((field, i) => {
    u32(FIELDS_AT + i * 4, field.field);
    u32(VALUES_AT + i * 4, field.value);
    u32(FLAGS_AT + i * 4, AUDIT_OP.EQUAL);
  });
  u32(8, fields.length);
  u32(BUFLEN_AT, pathBytes.byteLength + keyBytes.byteLength);
  bytes.set(pathBytes, RULE_HEADER);
  bytes.set(keyBytes, RULE_HEADER + pathBytes.byteLength);
  return bytes;
}

export interface DetectAuditActor {
  readonly timeMs: number;
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string | null;
  readonly comm: string | null;
  /** From the PROCTITLE record (the kernel keeps its first 128 bytes). */
  readonly argv: readonly string[];
  readonly succeeded: boolean;
}

export type DetectAuditActivity =
  | (DetectAuditActor & { readonly kind: 'memory'; readonly method: 'proc-mem' | 'ptrace-attach' | 'ptrace-seize' | 'process_vm_readv' | 'process_vm_writev'; readonly targetPid: number; readonly targetComm: string | null })
  | (DetectAuditActor & { readonly kind: 'watch'; readonly fileId: string; readonly operation: 'write' | FileSyscall })
  | (DetectAuditActor & { readonly kind: 'agent-signal'; readonly targetPid: number; readonly signal: number });

function integer(raw: string | undefined, radix = 10): number | null {
  if (raw === undefined) return null;
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/.test(raw) : /^-?\d+$/.test(raw);
  if (!valid) return null;
  const value = parseInt(raw, radix);
  return Number.isSafeInteger(value) ? value : null;
}

/** What one event of the detector's rules says, or null for any other event (or one it cannot read). */
export function interpretDetectAuditEvent(records: readonly AuditRecord[], base: string): DetectAuditActivity | null {
  const syscall = records.find((r) => r.type === AUDIT_RECORD.SYSCALL);
  if (!syscall) return null;
  const f = syscall.fields;
  const key = decodeAuditString(f.get('key'));
  if (key === null) return null;
  // Audit tags an event with the first matching rule's key only: with two runwall processes on the
  // machine, a ptrace may carry the other's key. Rules that mean the same for every instance
  // (ptrace, process_vm_*, a given pid's memory, a given file) are accepted under any detector key.
  const shared = /^runwall-\d+-detect-(ptrace|vm|mem-\d+|file-[0-9a-f]{8})$/.exec(key);
  if (!shared && !key.startsWith(`${base}-`)) return null;
  const pid = integer(f.get('pid'));
  const ppid = integer(f.get('ppid'));
  const arch = integer(f.get('arch'), 16);
  const number = integer(f.get('syscall'));
  if (pid === null || ppid === null || arch === null || number === null) return null;
  const title = records.find((r) => r.type === AUDIT_RECORD.PROCTITLE);
  const titleBytes = title ? decodeAuditBytes(title.fields.get('proctitle')) : null;
  const argv = titleBytes ? new TextDecoder().decode(titleBytes).split('\0').filter((a, i, all) => a !== '' || i < all.length - 1) : [];
  const actor: DetectAuditActor = {
    timeMs: syscall.timeMs,
    pid,
    ppid,
    exe: decodeAuditString(f.get('exe')),
    comm: decodeAuditString(f.get('comm')),
    argv,
    succeeded: f.get('success') === 'yes',
  };
  const a0 = integer(f.get('a0'), 16);
  const a1 = integer(f.get('a1'), 16);
  const object = records.find((r) => r.type === AUDIT_OBJ_PID);
  const objectPid = object ? integer(object.fields.get('opid')) : null;
  const objectComm = object ? decodeAuditString(object.fields.get('ocomm')) : null;
  const suffix = shared ? (shared[1] ?? '') : key.slice(base.length + 1);
  const numbers = DETECT_SYSCALLS[arch];
  if (suffix === 'ptrace' && numbers && number === numbers.ptrace) {
    const targetPid = objectPid ?? a1;
    if (targetPid === null) return null;
    return { ...actor, kind: 'memory', method: a0 === PTRACE_SEIZE ? 'ptrace-seize' : 'ptrace-attach', targetPid, targetComm: objectComm };
  }
  if (suffix === 'vm' && numbers && (number === numbers.process_vm_readv || number === numbers.process_vm_writev) && a0 !== null) {
    return { ...actor, kind: 'memory', method: number === numbers.process_vm_readv ? 'process_vm_readv' : 'process_vm_writev', targetPid: a0, targetComm: objectComm };
  }
  if (suffix === 'signal' && a0 !== null) {
    // tgkill(tgid, tid, sig) carries the signal third; kill and tkill second.
    const signal = numbers && number === numbers.tgkill ? integer(f.get('a2'), 16) : a1;
    return { ...actor, kind: 'agent-signal', targetPid: objectPid ?? a0, signal: signal ?? -1 };
  }
  const mem = /^mem-(\d+)$/.exec(suffix);
  if (mem) return { ...actor, kind: 'memory', method: 'proc-mem', targetPid: Number(mem[1]), targetComm: objectComm };
  const file = /^file-([0-9a-f]{8})$/.exec(suffix);
  if (file) return { ...actor, kind: 'watch', fileId: file[1]!, operation: FILE_SYSCALLS[arch]?.[number] ?? 'write' };
  return null;
}
