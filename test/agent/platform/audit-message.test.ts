// The audit record decoder: what the kernel writes for an exec and a connect, read back exactly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_ARCH,
  AUDIT_FIELD,
  AUDIT_RECORD,
  AuditAssembler,
  assembleArgv,
  decodeAuditRuleKey,
  decodeAuditStatus,
  decodeAuditString,
  decodeSockaddr,
  encodeAuditRule,
  encodeAuditSet,
  interpretAuditEvent,
  parseAuditRecord,
  runwallAuditRules,
  type AuditRecord,
} from '../../../src/agent/platform/audit-message.js';
import { splitNetlinkFrames } from '../../../src/agent/platform/netlink-frames.js';
import { auditString, execveRecords, header, sockaddrHex, syscallRecord } from '../../helpers/audit-encoder.js';

const T = 1_795_722_463_404;

function record(type: number, body: string, serial = 58, timeMs = T): AuditRecord {
  const parsed = parseAuditRecord(type, header(timeMs, serial) + body);
  if (!parsed) throw new Error(`unparsable: ${body}`);
  return parsed;
}

function execEvent(argv: readonly string[], fields: Partial<Parameters<typeof syscallRecord>[0]> = {}): AuditRecord[] {
  return [
    record(AUDIT_RECORD.SYSCALL, syscallRecord({ syscall: 59, success: true, pid: 31370, ppid: 31369, comm: 'true', exe: '/usr/bin/true', key: 'runwall-1', ...fields })),
    ...execveRecords(argv).map((body) => record(AUDIT_RECORD.EXECVE, body)),
    record(AUDIT_RECORD.CWD, `cwd=${auditString('/tmp/work dir')}`),
    record(AUDIT_RECORD.PATH, 'item=0 name="/bin/true" inode=1 nametype=NORMAL'),
  ];
}

describe('audit records', () => {
  it('reads the header and fields of a record as the kernel writes it', () => {
    const r = parseAuditRecord(
      1300,
      'audit(1795722463.408:59): arch=c000003e syscall=59 success=yes exit=0 ppid=31369 pid=31370 comm="true" exe="/usr/bin/true" key="runwall-7049"\0',
    );
    expect(r?.timeMs).toBe(1_795_722_463_408);
    expect(r?.serial).toBe(59);
    expect(r?.fields.get('pid')).toBe('31370');
    expect(decodeAuditString(r?.fields.get('exe'))).toBe('/usr/bin/true');
    expect(decodeAuditString(r?.fields.get('key'))).toBe('runwall-7049');
  });

  it('decodes hex-encoded values, and (null) as null', () => {
    expect(decodeAuditString('612062')).toBe('a b');
    expect(decodeAuditString('"x"')).toBe('x');
    expect(decodeAuditString('(null)')).toBeNull();
    expect(decodeAuditString(undefined)).toBeNull();
  });

  it('a record without an audit header is not a record', () => {
    expect(parseAuditRecord(1300, 'arch=c000003e syscall=59')).toBeNull();
  });

  it('an exec becomes pid, ppid, exe, argv and cwd, with arguments holding spaces and quotes', () => {
    const activity = interpretAuditEvent(execEvent(['/bin/true', 'a b', 'say "hi"', 'x']));
    expect(activity).toEqual({
      kind: 'exec',
      serial: 58,
      timeMs: T,
      pid: 31370,
      ppid: 31369,
      uid: 0,
      exe: '/usr/bin/true',
      comm: 'true',
      key: 'runwall-1',
      argv: ['/bin/true', 'a b', 'say "hi"', 'x'],
      argvTruncated: false,
      cwd: '/tmp/work dir',
    });
  });

  it('a long argument split over several records is joined byte for byte (a multi-byte character across a cut too)', () => {
    const long = 'é'.repeat(5000) + ' tail';
    const records = execEvent(['sh', '-c', long]);
    expect(records.filter((r) => r.type === AUDIT_RECORD.EXECVE).length).toBeGreaterThan(1);
    const activity = interpretAuditEvent(records);
    expect(activity?.kind === 'exec' && activity.argv).toEqual(['sh', '-c', long]);
  });

  it('a missing EXECVE record shows as a truncated argv, not a wrong one', () => {
    const records = execEvent(['a', 'b']).map((r) =>
      r.type === AUDIT_RECORD.EXECVE ? record(AUDIT_RECORD.EXECVE, 'argc=3 a0="a" a1="b"') : r,
    );
    const activity = interpretAuditEvent(records);
    expect(activity?.kind === 'exec' && activity.argvTruncated).toBe(true);
    expect(activity?.kind === 'exec' && activity.argv).toEqual(['a', 'b']);
  });

  it('a failed exec (success=no) is not an exec', () => {
    expect(interpretAuditEvent(execEvent(['x'], { success: false, exit: -2 }))).toBeNull();
  });

  it('a connect becomes the caller and the destination, in progress or refused', () => {
    const activity = interpretAuditEvent([
      record(AUDIT_RECORD.SYSCALL, syscallRecord({ syscall: 42, success: false, exit: -115, pid: 7216, ppid: 7213, comm: 'curl', exe: '/usr/bin/curl' })),
      record(AUDIT_RECORD.SOCKADDR, `saddr=${sockaddrHex(4, '198.51.100.11', 443)}`),
    ]);
    expect(activity).toMatchObject({ kind: 'socket', syscall: 'connect', pid: 7216, ppid: 7213, exe: '/usr/bin/curl', family: 4, address: '198.51.100.11', port: 443, success: false, exit: -115 });
  });

  it('an IPv6 sendto is read; a unix-socket connect is not a network call', () => {
    const v6 = interpretAuditEvent([
      record(AUDIT_RECORD.SYSCALL, syscallRecord({ syscall: 44, success: true, pid: 5, ppid: 1 })),
      record(AUDIT_RECORD.SOCKADDR, `saddr=${sockaddrHex(6, '2001:db8::53', 53)}`),
    ]);
    expect(v6).toMatchObject({ syscall: 'sendto', family: 6, address: '2001:db8::53', port: 53 });
    const unix = interpretAuditEvent([
      record(AUDIT_RECORD.SYSCALL, syscallRecord({ syscall: 42, success: true, pid: 5, ppid: 1 })),
      record(AUDIT_RECORD.SOCKADDR, 'saddr=01002F72756E2F6E73636400'),
    ]);
    expect(unix).toBeNull();
  });

  it('aarch64 syscall numbers are read too', () => {
    const activity = interpretAuditEvent([
      record(AUDIT_RECORD.SYSCALL, syscallRecord({ arch: 'c00000b7', syscall: 203, success: true, pid: 9, ppid: 1 })),
      record(AUDIT_RECORD.SOCKADDR, `saddr=${sockaddrHex(4, '203.0.113.7', 80)}`),
    ]);
    expect(activity).toMatchObject({ syscall: 'connect', address: '203.0.113.7', port: 80 });
  });
});

describe('AuditAssembler', () => {
  it('completes an event at its EOE record, events interleaved by serial', () => {
    const assembler = new AuditAssembler();
    const out: AuditRecord[][] = [];
    const a1 = record(1300, 'x=1', 1);
    const b1 = record(1300, 'x=2', 2);
    const a2 = record(1309, 'argc=0', 1);
    out.push(...assembler.add(a1, 0), ...assembler.add(b1, 0), ...assembler.add(a2, 0));
    expect(out).toEqual([]);
    out.push(...assembler.add(record(AUDIT_RECORD.EOE, '', 1), 0));
    expect(out).toEqual([[a1, a2]]);
    expect(assembler.open).toBe(1);
  });

  it('is bounded: the oldest open event is completed early, and old ones expire', () => {
    const assembler = new AuditAssembler(2);
    assembler.add(record(1300, 'x=1', 1), 0);
    assembler.add(record(1300, 'x=1', 2), 10);
    const early = assembler.add(record(1300, 'x=1', 3), 20);
    expect(early.map((e) => e[0]!.serial)).toEqual([1]);
    expect(assembler.expire(2015, 2000).map((e) => e[0]!.serial)).toEqual([2]);
    expect(assembler.open).toBe(1);
  });

  it('property: any interleaving of whole events gives each event back with its records in order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 1000 }), (sizes, seed) => {
        const events = sizes.map((size, i) => Array.from({ length: size }, (_, k) => record(1300 + k, `n=${k}`, i + 1)));
        const queues = events.map((event) => [...event, record(AUDIT_RECORD.EOE, '', event[0]!.serial)]);
        const assembler = new AuditAssembler();
        const done: AuditRecord[][] = [];
        let state = seed;
        // A deterministic shuffle across events that keeps each event's own order.
        for (let left = queues.reduce((n, q) => n + q.length, 0); left > 0; left--) {
          const open = queues.filter((q) => q.length > 0);
          state = (state * 1103515245 + 12345) % 2147483648;
          done.push(...assembler.add(open[state % open.length]!.shift()!, 0));
        }
        expect(done.length).toBe(events.length);
        for (const event of done) expect(event).toEqual(events[event[0]!.serial - 1]);
      }),
    );
  });
});

describe('argv round trip (property)', () => {
  it('any argument vector the kernel writes is read back exactly', () => {
    const argument = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ minLength: 3000, maxLength: 9000 }));
    fc.assert(
      fc.property(fc.array(argument, { minLength: 1, maxLength: 8 }), (argv) => {
        const records = execveRecords(argv).map((body) => record(AUDIT_RECORD.EXECVE, body));
        expect(assembleArgv(records)).toEqual({ argv, truncated: false });
      }),
      { numRuns: 150 },
    );
  });

  it('any text is parsed or refused without throwing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1300, max: 1400 }), (text, type) => {
        const parsed = parseAuditRecord(type, text);
        if (parsed) expect(() => interpretAuditEvent([parsed])).not.toThrow();
      }),
    );
  });

  it('sockaddr: any IPv4/IPv6 address and port comes back', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4().map((a) => [4, a] as const), fc.ipV6().map((a) => [6, a] as const)), fc.integer({ min: 0, max: 65535 }), ([family, address], port) => {
        const decoded = decodeSockaddr(Buffer.from(sockaddrHex(family, address, port), 'hex'));
        expect(decoded?.family).toBe(family);
        expect(decoded?.port).toBe(port);
        if (family === 4) expect(decoded?.address).toBe(address);
        else expect(Buffer.from(sockaddrHex(6, decoded!.address, port), 'hex')).toEqual(Buffer.from(sockaddrHex(6, address, port), 'hex'));
      }),
    );
  });
});

describe('control requests', () => {
  it('a rule carries its key where the kernel lists it', () => {
    const rules = runwallAuditRules(AUDIT_ARCH.X86_64, 'runwall-4242', 4242).map(encodeAuditRule);
    expect(rules).toHaveLength(3);
    for (const rule of rules) expect(decodeAuditRuleKey(rule)).toBe('runwall-4242');
  });

  it('the exec rule asks for execve and execveat only, successful ones; the socket rules leave runwall out', () => {
    const [exec, v4] = runwallAuditRules(AUDIT_ARCH.X86_64, 'k', 77);
    expect(exec!.syscalls).toEqual([59, 322]);
    expect(exec!.fields).toContainEqual({ field: AUDIT_FIELD.SUCCESS, op: 0x40000000, value: 1 });
    expect(v4!.fields).toContainEqual({ field: AUDIT_FIELD.PID, op: 0x30000000, value: 77 });
    const bytes = encodeAuditRule(exec!);
    const mask0 = new DataView(bytes.buffer).getUint32(12 + 4 * 1, true); // syscall 59 is bit 27 of word 1
    expect(mask0 & (1 << 27)).not.toBe(0);
  });

  it('a key longer than the kernel accepts is refused before it is sent', () => {
    expect(() => encodeAuditRule({ syscalls: [59], fields: [], key: 'k'.repeat(257) })).toThrow(RangeError);
  });

  it('AUDIT_SET sets only what is asked (mask), status replies decode', () => {
    const [frame] = splitNetlinkFrames(encodeAuditSet({ backlogLimit: 8192 }, 5)).frames;
    const view = new DataView(frame!.payload.buffer, frame!.payload.byteOffset);
    expect(frame!.type).toBe(1001);
    expect(view.getUint32(0, true)).toBe(0x10);
    expect(view.getUint32(20, true)).toBe(8192);
    const status = new Uint8Array(44);
    const s = new DataView(status.buffer);
    [0, 1, 1, 0, 0, 64, 3, 0].forEach((v, i) => s.setUint32(i * 4, v, true));
    expect(decodeAuditStatus(status)).toEqual({ enabled: 1, failure: 1, pid: 0, rateLimit: 0, backlogLimit: 64, lost: 3, backlog: 0 });
    expect(decodeAuditStatus(new Uint8Array(8))).toBeNull();
  });
});
