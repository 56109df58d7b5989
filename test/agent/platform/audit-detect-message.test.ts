import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AUDIT_ARCH, parseAuditRecord, type AuditRecord } from '../../../src/agent/platform/audit-message.js';
import { AUDIT_PERM, detectSyscallRules, encodeWatchRule, interpretDetectAuditEvent, watchFileId } from '../../../src/agent/platform/audit-detect-message.js';

const BASE = 'runwall-42-detect';
const hex = (text: string) => Buffer.from(text).toString('hex').toUpperCase();

function event(lines: readonly [number, string][]): AuditRecord[] {
  return lines.map(([type, text]) => parseAuditRecord(type, `audit(1795722420.132:15): ${text}`)).filter((r): r is AuditRecord => r !== null);
}

describe('detector audit rules', () => {
  it('encodes a watch as the kernel expects: all syscalls, path and key in the buffer', () => {
    const rule = encodeWatchRule('/proc/77/mem', AUDIT_PERM.READ, `${BASE}-mem-77`);
    const view = new DataView(rule.buffer);
    expect(view.getUint32(0, true)).toBe(0x04);
    expect(view.getUint32(8, true)).toBe(3);
    expect(view.getUint32(12, true)).toBe(0xffffffff);
    const buflen = view.getUint32(1036, true);
    expect(Buffer.from(rule.subarray(1040)).toString()).toBe(`/proc/77/mem${BASE}-mem-77`);
    expect(buflen).toBe(rule.byteLength - 1040);
    expect(() => encodeWatchRule('etc/hosts', 2, 'k')).toThrow(RangeError);
  });

  it('watch rules always carry exactly their path and key (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\/[a-z0-9._-]{1,20}(\/[a-z0-9._-]{1,20}){0,3}$/), fc.integer({ min: 1, max: 15 }), (path, perm) => {
        const rule = encodeWatchRule(path, perm, `${BASE}-guard-1`);
        expect(Buffer.from(rule.subarray(1040)).toString()).toBe(`${path}${BASE}-guard-1`);
        expect(new DataView(rule.buffer).getUint32(12 + 256 + 256 + 4, true)).toBe(perm);
      }),
    );
  });

  it('a watched file has the same 8-hex-digit id in every runwall process, and different paths differ (property)', () => {
    expect(watchFileId('/etc/hosts')).toMatch(/^[0-9a-f]{8}$/);
    expect(watchFileId('/etc/hosts')).toBe(watchFileId('/etc/hosts'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^\/[a-z0-9._-]{1,12}(\/[a-z0-9._-]{1,12}){0,2}$/), { minLength: 2, maxLength: 2 }), ([a, b]) => {
        expect(watchFileId(a!)).toMatch(/^[0-9a-f]{8}$/);
        // 32 bits: two distinct short paths colliding would be a 1-in-4-billion event, not a flaky test.
        expect(watchFileId(a!)).not.toBe(watchFileId(b!));
      }),
    );
  });

  it('asks for signals only when there is an agent to protect', () => {
    expect(detectSyscallRules(AUDIT_ARCH.X86_64, BASE, null).map((r) => r.key)).toEqual([`${BASE}-ptrace`, `${BASE}-ptrace`, `${BASE}-vm`]);
    expect(detectSyscallRules(AUDIT_ARCH.AARCH64, BASE, 500).map((r) => r.key)).toContain(`${BASE}-signal`);
  });
});

describe('interpreting detector audit events', () => {
  it('a ptrace attach names the tracer and, from OBJ_PID, the target', () => {
    const activity = interpretDetectAuditEvent(
      event([
        [1300, `arch=c000003e syscall=101 success=yes exit=0 a0=10 a1=7647 a2=0 a3=0 items=0 ppid=30238 pid=30281 uid=0 comm="python3" exe="/usr/bin/python3.11" key="${BASE}-ptrace"`],
        [1318, 'opid=30279 oauid=-1 ouid=0 oses=-1 ocomm="sleep"'],
        [1327, `proctitle=${hex('python3\0-c\0attach')}`],
      ]),
      BASE,
    );
    expect(activity).toMatchObject({ kind: 'memory', method: 'ptrace-attach', targetPid: 30279, targetComm: 'sleep', pid: 30281, ppid: 30238, exe: '/usr/bin/python3.11', argv: ['python3', '-c', 'attach'], succeeded: true });
  });

  it('process_vm_readv names its target from a0; a seize is a seize', () => {
    const vm = interpretDetectAuditEvent(event([[1300, `arch=c000003e syscall=310 success=no exit=-3 a0=3e8 a1=0 ppid=1 pid=2 comm="x" exe="/x" key="${BASE}-vm"`]]), BASE);
    expect(vm).toMatchObject({ kind: 'memory', method: 'process_vm_readv', targetPid: 1000, succeeded: false });
    const seize = interpretDetectAuditEvent(event([[1300, `arch=c000003e syscall=101 success=yes exit=0 a0=4206 a1=5 ppid=1 pid=2 comm="x" exe="/x" key="${BASE}-ptrace"`]]), BASE);
    expect(seize).toMatchObject({ method: 'ptrace-seize', targetPid: 5 });
  });

  it('a /proc/PID/mem open and a guarded-file rename come back by key', () => {
    const mem = interpretDetectAuditEvent(event([[1300, `arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=80000 ppid=1 pid=9 comm="python3" exe="/usr/bin/python3" key="${BASE}-mem-30279"`], [1302, 'item=0 name="/proc/30279/mem" nametype=NORMAL']]), BASE);
    expect(mem).toMatchObject({ kind: 'memory', method: 'proc-mem', targetPid: 30279, pid: 9 });
    const id = watchFileId('/etc/hosts');
    const rename = interpretDetectAuditEvent(event([[1300, `arch=c000003e syscall=82 success=yes exit=0 ppid=1 pid=9 comm="sed" exe="/usr/bin/sed" key="${BASE}-file-${id}"`]]), BASE);
    expect(rename).toMatchObject({ kind: 'watch', fileId: id, operation: 'rename' });
  });

  it("another runwall's ptrace rule and file watch count (audit keeps only the first key); its signal rule does not", () => {
    expect(interpretDetectAuditEvent(event([[1300, 'arch=c000003e syscall=101 success=yes a0=10 a1=1 ppid=1 pid=2 key="runwall-43-detect-ptrace"']]), BASE)).toMatchObject({ method: 'ptrace-attach', targetPid: 1 });
    const id = watchFileId('/etc/passwd');
    expect(interpretDetectAuditEvent(event([[1300, `arch=c000003e syscall=257 success=yes ppid=1 pid=2 key="runwall-43-detect-file-${id}"`]]), BASE)).toMatchObject({ kind: 'watch', fileId: id, operation: 'write' });
    expect(interpretDetectAuditEvent(event([[1300, 'arch=c000003e syscall=62 success=yes a0=5 a1=9 ppid=1 pid=2 key="runwall-43-detect-signal"']]), BASE)).toBeNull();
    expect(interpretDetectAuditEvent(event([[1300, 'arch=c000003e syscall=59 success=yes ppid=1 pid=2 key=(null)']]), BASE)).toBeNull();
    expect(interpretDetectAuditEvent(event([[1327, 'proctitle=6C73']]), BASE)).toBeNull();
  });

  it('never throws on arbitrary field values (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('arch', 'syscall', 'a0', 'a1', 'a2', 'pid', 'ppid', 'key', 'success', 'opid'), fc.string({ maxLength: 12 })), { maxLength: 10 }), (pairs) => {
        const text = [...pairs.map(([k, v]) => `${k}=${v.replace(/\s/g, '')}`), `key="${BASE}-ptrace"`].join(' ');
        interpretDetectAuditEvent(event([[1300, text], [1318, 'opid=1']]), BASE);
      }),
    );
  });
});
