// Routing audit records before parsing them: what reaches each topic is exactly what
// parsing every record and then choosing would give, for records as the kernel writes them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AUDIT_RECORD, decodeAuditString, parseAuditRecord, type AuditRecord } from '../../../src/agent/platform/audit-message.js';
import { AuditRecordRouter, auditTopicOf, peekAuditHeader, syscallRecordKey, topicReads, type AuditTopic } from '../../../src/agent/platform/audit-route.js';
import { auditString, execveRecords, header, sockaddrHex, syscallRecord } from '../../helpers/audit-encoder.js';

const T = 1_795_722_463_404;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const X86 = 0xc000003e;

describe('reading a record before parsing it', () => {
  it('takes time and serial from the header bytes', () => {
    expect(peekAuditHeader(bytes('audit(1795722463.408:59): arch=c000003e'))).toEqual({ timeMs: 1_795_722_463_408, serial: 59 });
    expect(peekAuditHeader(bytes('audit(1795722463.40:59): x'))).toBeNull();
    expect(peekAuditHeader(bytes('audit(1795722463.408:59) x'))).toBeNull();
    expect(peekAuditHeader(bytes('type=SYSCALL msg=audit(1.000:1): x'))).toBeNull();
  });

  it('reads the header exactly as the full parser does, for any text (property)', () => {
    const headerish = fc.tuple(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 2 ** 40 })).map(([s, ms, n]) => `audit(${s}.${String(ms).padStart(3, '0')}:${n}): `);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), headerish.chain((h) => fc.string({ maxLength: 20 }).map((rest) => h + rest))), (text) => {
        const full = parseAuditRecord(AUDIT_RECORD.SYSCALL, text);
        const peeked = peekAuditHeader(bytes(text));
        if (full === null) return; // the peek may accept a header whose body the parser refuses: the parser decides later
        expect(peeked).toEqual({ timeMs: full.timeMs, serial: full.serial });
      }),
    );
  });

  it('takes the key from the end of a SYSCALL record: quoted, hex, or none', () => {
    expect(syscallRecordKey(`${header(T, 1)}${syscallRecord({ syscall: 59, success: true, pid: 2, ppid: 1, key: 'runwall-7-process-1' })}`)).toBe('runwall-7-process-1');
    expect(syscallRecordKey(`${header(T, 1)}${syscallRecord({ syscall: 59, success: true, pid: 2, ppid: 1, key: 'has space' })}`)).toBe('has space');
    expect(syscallRecordKey(`${header(T, 1)}${syscallRecord({ syscall: 59, success: true, pid: 2, ppid: 1 })}\0`)).toBeNull();
  });

  it('routes by key kind, any runwall pid; a foreign key counts only for the syscalls of the process rules', () => {
    expect(auditTopicOf('runwall-12-process-3', null)).toBe('process');
    expect(auditTopicOf('runwall-12', null)).toBe('process');
    expect(auditTopicOf('runwall-99-detect-ptrace', null)).toBe('detect');
    expect(auditTopicOf('runwall-99-detect-file-0a1b2c3d', null)).toBe('detect');
    expect(auditTopicOf('runwall-99-hub', null)).toBeNull();
    expect(auditTopicOf('exec-audit', { arch: X86, number: 59 })).toBe('process');
    expect(auditTopicOf(null, { arch: X86, number: 42 })).toBe('process');
    expect(auditTopicOf(null, { arch: X86, number: 2 })).toBeNull();
    expect(auditTopicOf(`admin\x01runwall-5-process-1`, null)).toBe('process');
  });
});

interface Written {
  readonly type: number;
  readonly text: string;
}

/** One event as the kernel writes it: SYSCALL first, then its other records, then EOE. */
function kernelEvent(serial: number, kind: 'exec' | 'connect' | 'ptrace' | 'open', key: string | null, argv: readonly string[]): Written[] {
  const h = header(T + serial, serial);
  const number = { exec: 59, connect: 42, ptrace: 101, open: 257 }[kind];
  const records: Written[] = [{ type: AUDIT_RECORD.SYSCALL, text: h + syscallRecord({ syscall: number, success: true, pid: 1000 + serial, ppid: 1, ...(key === null ? {} : { key }) }) }];
  if (kind === 'exec') for (const body of execveRecords(argv)) records.push({ type: AUDIT_RECORD.EXECVE, text: h + body });
  if (kind === 'connect') records.push({ type: AUDIT_RECORD.SOCKADDR, text: `${h}saddr=${sockaddrHex(4, '198.51.100.7', 443)}` });
  if (kind === 'ptrace') records.push({ type: 1318, text: `${h}opid=77 oauid=-1 ouid=0 oses=-1 ocomm="sleep"` });
  records.push({ type: AUDIT_RECORD.CWD, text: `${h}cwd=${auditString('/tmp/a b')}` });
  records.push({ type: AUDIT_RECORD.PATH, text: `${h}item=0 name="/bin/true" inode=1 nametype=NORMAL` });
  records.push({ type: AUDIT_RECORD.PROCTITLE, text: `${h}proctitle=${Buffer.from(argv.join('\0')).toString('hex').toUpperCase()}` });
  records.push({ type: AUDIT_RECORD.EOE, text: h });
  return records;
}

/** The slow way: parse every record, take the topic from the SYSCALL record's parsed fields. */
function reference(written: readonly Written[]): { topic: AuditTopic; record: AuditRecord }[] {
  const topics = new Map<number, AuditTopic>();
  const out: { topic: AuditTopic; record: AuditRecord }[] = [];
  for (const { type, text } of written) {
    const record = parseAuditRecord(type, text);
    if (record === null) continue;
    if (type === AUDIT_RECORD.SYSCALL) {
      const key = decodeAuditString(record.fields.get('key'));
      const runwall = key !== null && /^runwall-\d+(?:-|$)/.test(key);
      const syscall = runwall ? null : { arch: parseInt(record.fields.get('arch') ?? '', 16), number: Number(record.fields.get('syscall')) };
      const topic = auditTopicOf(key, syscall);
      topics.delete(record.serial);
      if (topic !== null) {
        topics.set(record.serial, topic);
        out.push({ topic, record });
      }
      continue;
    }
    const topic = topics.get(record.serial);
    if (topic === undefined) continue;
    if (type === AUDIT_RECORD.EOE) topics.delete(record.serial);
    if (topicReads(topic, type)) out.push({ topic, record });
  }
  return out;
}

const KEYS = ['runwall-10-process-1', 'runwall-11-process-2', 'runwall-10', 'runwall-10-detect-ptrace', 'runwall-11-detect-vm', 'runwall-10-hub', 'admin-exec', null] as const;

describe('AuditRecordRouter', () => {
  it('gives an exec under another runwall’s key to the process topic, with only the records it reads', () => {
    const router = new AuditRecordRouter();
    const routed = kernelEvent(5, 'exec', 'runwall-999-process-1', ['/bin/true', 'x'])
      .map(({ type, text }) => router.route(type, bytes(text)))
      .filter((r) => r !== null);
    expect(routed.map((r) => [r.topic, r.record.type])).toEqual([
      ['process', AUDIT_RECORD.SYSCALL],
      ['process', AUDIT_RECORD.EXECVE],
      ['process', AUDIT_RECORD.CWD],
      ['process', AUDIT_RECORD.EOE],
    ]);
    expect(router.open).toBe(0);
    expect(router.latestRecordMs).toBe(T + 5);
  });

  it('drops events nobody reads, and their records, without holding on to them', () => {
    const router = new AuditRecordRouter();
    for (const { type, text } of kernelEvent(6, 'open', 'admin-files', ['cat'])) expect(router.route(type, bytes(text))).toBeNull();
    expect(router.open).toBe(0);
  });

  it('routes exactly what parsing every record would, for interleaved events under any keys (property)', () => {
    const event = fc.record({
      kind: fc.constantFrom('exec', 'connect', 'ptrace', 'open') as fc.Arbitrary<'exec' | 'connect' | 'ptrace' | 'open'>,
      key: fc.constantFrom(...KEYS),
      argv: fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.string({ minLength: 3000, maxLength: 4000 })), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 60 }), (events, picks) => {
        // Interleave whole events as the kernel's queue may: each event's own records stay in order.
        const queues = events.map((e, i) => kernelEvent(i + 1, e.kind, e.key, e.argv));
        const written: Written[] = [];
        let p = 0;
        while (queues.some((q) => q.length > 0)) {
          const open = queues.filter((q) => q.length > 0);
          written.push(open[(picks[p++] ?? 0) % open.length]!.shift()!);
        }
        const router = new AuditRecordRouter();
        const fast = written.map(({ type, text }) => router.route(type, bytes(text))).filter((r) => r !== null);
        const slow = reference(written);
        expect(fast.map((r) => [r.topic, r.record.type, r.record.serial])).toEqual(slow.map((r) => [r.topic, r.record.type, r.record.serial]));
        // Parsed records carry the same fields (EOE carries none: it only ends the event).
        fast.forEach((r, i) => r.record.type !== AUDIT_RECORD.EOE && expect(r.record).toEqual(slow[i]!.record));
        expect(router.open).toBe(0);
      }),
    );
  });

  it('is bounded: with more open events than it holds, the oldest are forgotten', () => {
    const router = new AuditRecordRouter(2);
    for (const serial of [1, 2, 3]) router.route(AUDIT_RECORD.SYSCALL, bytes(header(T, serial) + syscallRecord({ syscall: 59, success: true, pid: 2, ppid: 1, key: 'runwall-1-process-1' })));
    expect(router.open).toBe(2);
    expect(router.route(AUDIT_RECORD.CWD, bytes(`${header(T, 1)}cwd="/"`))).toBeNull();
    expect(router.route(AUDIT_RECORD.CWD, bytes(`${header(T, 3)}cwd="/"`))).not.toBeNull();
  });
});
