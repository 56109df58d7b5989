// The detector's audit rules on the real kernel: a ptrace attach, a process_vm_readv and an
// open of a protected process's /proc/PID/mem are each reported with reader and target.
// No network: audit is a netlink socket, and every process here is local.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetectAuditStream } from '../../../src/agent/platform/audit-detect.js';
import type { DetectAuditActivity } from '../../../src/agent/platform/audit-detect-message.js';

const PTRACE = 'import ctypes,sys,os;l=ctypes.CDLL(None,use_errno=True);p=int(sys.argv[1]);r=l.ptrace(16,p,0,0);os.waitpid(p,0);l.ptrace(17,p,0,0);print(r)';
const VM_READ = [
  'import ctypes,sys',
  'l=ctypes.CDLL(None,use_errno=True)',
  'class V(ctypes.Structure): _fields_=[("b",ctypes.c_void_p),("n",ctypes.c_size_t)]',
  'buf=ctypes.create_string_buffer(8);loc=V(ctypes.cast(buf,ctypes.c_void_p),8);rem=V(4096,8)',
  'print(l.process_vm_readv(int(sys.argv[1]),ctypes.byref(loc),1,ctypes.byref(rem),1,0))',
].join('\n');
const MEM_READ = 'import sys;f=open("/proc/%s/mem"%sys.argv[1],"rb");print("opened")';

describe('detector audit stream', () => {
  let stream: DetectAuditStream;
  let worker: ChildProcess;
  const seen: DetectAuditActivity[] = [];

  beforeAll(async () => {
    stream = await DetectAuditStream.open({ agentPid: null }, (a) => seen.push(a), () => undefined);
    // Not named Runner.Worker: agents other tests run at the same time watch every runner worker's memory on the machine.
    worker = spawn('bash', ['-c', 'exec -a rw-detect-target sleep 60'], { stdio: 'ignore' });
    await sleep(100);
  });

  afterAll(async () => {
    worker.kill('SIGKILL');
    await stream.close();
  });

  async function waitFor(predicate: (a: DetectAuditActivity) => boolean): Promise<DetectAuditActivity | undefined> {
    for (let i = 0; i < 100; i++) {
      const found = seen.find(predicate);
      if (found) return found;
      await sleep(20);
    }
    return undefined;
  }

  it('reports a ptrace attach with the tracer and the target', async () => {
    const tracer = spawnSync('python3', ['-c', PTRACE, String(worker.pid)], { encoding: 'utf8', timeout: 10_000 });
    expect(tracer.stdout.trim()).toBe('0');
    const activity = await waitFor((a) => a.kind === 'memory' && a.method === 'ptrace-attach' && a.targetPid === worker.pid);
    expect(activity).toMatchObject({ succeeded: true, exe: expect.stringMatching(/python/), argv: expect.arrayContaining(['-c']) });
  });

  it('reports process_vm_readv of another process', async () => {
    spawnSync('python3', ['-c', VM_READ, String(worker.pid)], { timeout: 10_000 });
    expect(await waitFor((a) => a.kind === 'memory' && a.method === 'process_vm_readv' && a.targetPid === worker.pid)).toBeDefined();
  });

  it("reports an open of a watched process's /proc/PID/mem, and nothing once unwatched", async () => {
    await stream.watchMemory(worker.pid!, null);
    const reader = spawnSync('python3', ['-c', MEM_READ, String(worker.pid)], { encoding: 'utf8', timeout: 10_000 });
    expect(reader.stdout.trim()).toBe('opened');
    const activity = await waitFor((a) => a.kind === 'memory' && a.method === 'proc-mem' && a.targetPid === worker.pid);
    expect(activity).toMatchObject({ succeeded: true, pid: expect.any(Number) });
    await stream.unwatchMemory(worker.pid!);
    // Of this target only: audit's multicast also carries what other runs on the machine watch.
    const opensOfTarget = (): number => seen.filter((a) => a.kind === 'memory' && a.method === 'proc-mem' && a.targetPid === worker.pid).length;
    const before = opensOfTarget();
    spawnSync('python3', ['-c', MEM_READ, String(worker.pid)], { timeout: 10_000 });
    await sleep(300);
    expect(opensOfTarget()).toBe(before);
  });
});
