// One audit reader per runwall process, and the machine's audit status as runwall found it:
// after a run, after two overlapping runs, after a killed run followed by a normal one.
// Other runwall processes (other test files) may use audit at the same time: the status is
// read under runwall's machine lock, and compared once no runwall rule is left.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditControl, AuditStream, RUNWALL_RULE_KEY } from '../../../src/agent/platform/audit.js';
import { DetectAuditStream } from '../../../src/agent/platform/audit-detect.js';
import type { DetectAuditActivity } from '../../../src/agent/platform/audit-detect-message.js';
import { AUDIT_MARKER, withMachineLock } from '../../../src/agent/platform/audit-hub.js';
import { changesOnEnter, decodeAuditOriginal, isEmptyChange, type AuditOriginalState } from '../../../src/agent/platform/audit-machine-state.js';
import type { AuditActivity } from '../../../src/agent/platform/audit-message.js';

const REPO = resolve(import.meta.dirname, '../../..');
const MARK = `audit-hub-test-${process.pid}`;
const VM_READ = [
  'import ctypes,sys',
  'l=ctypes.CDLL(None,use_errno=True)',
  'class V(ctypes.Structure): _fields_=[("b",ctypes.c_void_p),("n",ctypes.c_size_t)]',
  'buf=ctypes.create_string_buffer(8);loc=V(ctypes.cast(buf,ctypes.c_void_p),8);rem=V(4096,8)',
  'print(l.process_vm_readv(int(sys.argv[1]),ctypes.byref(loc),1,ctypes.byref(rem),1,0))',
].join('\n');

/** Audit netlink sockets bound to a multicast group that this process holds. */
function auditReadersHeld(): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  return readFileSync('/proc/self/net/netlink', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1] === '9' && f[3] !== undefined && parseInt(f[3], 16) !== 0 && inodes.has(f[9] ?? '')).length;
}

async function until<T>(look: () => T | undefined, what: string, ms = 3000): Promise<T> {
  for (let waited = 0; waited <= ms; waited += 20) {
    const found = look();
    if (found !== undefined) return found;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('one audit reader per runwall process', () => {
  it('the process sensor and the detector read through one multicast socket, each getting its own events', async () => {
    const before = auditReadersHeld();
    const activities: AuditActivity[] = [];
    const detected: DetectAuditActivity[] = [];
    const process_ = await AuditStream.open((a) => activities.push(a), () => undefined);
    const detect = await DetectAuditStream.open({ agentPid: null }, (a) => detected.push(a), () => undefined);
    const target = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      expect(auditReadersHeld()).toBe(before + 1);
      spawnSync('/bin/true', [MARK]);
      spawnSync('python3', ['-c', VM_READ, String(target.pid)], { timeout: 10_000 });
      await until(() => activities.find((a) => a.kind === 'exec' && a.argv[1] === MARK), 'the exec');
      await until(() => detected.find((a) => a.kind === 'memory' && a.method === 'process_vm_readv' && a.targetPid === target.pid), 'the process_vm_readv');
    } finally {
      target.kill('SIGKILL');
      await detect.close();
      await process_.close();
    }
    expect(auditReadersHeld()).toBe(before);
  });
});

interface MachineAudit {
  /** No runwall rule in the kernel: no runwall process is using audit. */
  readonly quiet: boolean;
  readonly enabled: number;
  readonly backlogLimit: number;
  readonly daemon: boolean;
  readonly marker: AuditOriginalState | null;
  readonly keys: readonly string[];
}

describe('the machine’s audit status, as runwall found it', () => {
  let control: AuditControl;
  let original: AuditOriginalState;
  const users: ChildProcess[] = [];

  /** Read under runwall's lock, so no runwall process is between its check and its change. */
  const look = (): Promise<MachineAudit> =>
    withMachineLock(async () => {
      const keys = (await control.listRules()).map((r) => r.key ?? '').filter((k) => RUNWALL_RULE_KEY.test(k));
      const status = await control.status();
      const marker = existsSync(AUDIT_MARKER) ? decodeAuditOriginal(readFileSync(AUDIT_MARKER, 'utf8')) : null;
      return { quiet: keys.length === 0, enabled: status.enabled, backlogLimit: status.backlogLimit, daemon: status.pid !== 0, marker, keys };
    });

  /** The status once no runwall is left (bounded wait while other test files' runs hold audit). */
  async function settled(): Promise<MachineAudit> {
    let state = await look();
    for (let waited = 0; !state.quiet && waited < 60_000; waited += 250) {
      await sleep(250);
      state = await look();
    }
    return state;
  }

  function expectAsFound(state: MachineAudit): void {
    if (state.quiet) {
      expect({ enabled: state.enabled, backlogLimit: state.backlogLimit, marker: state.marker }).toEqual({ ...original, marker: null });
    } else {
      // Still in use by another runwall process: the last one out restores what the marker holds.
      const changed = !isEmptyChange(changesOnEnter({ ...original, failure: 1, pid: 0, rateLimit: 0, lost: 0, backlog: 0 }));
      expect(state.marker).toEqual(changed ? original : null);
    }
  }

  async function startUser(): Promise<ChildProcess> {
    const child = spawn('node', ['--import', 'tsx', join(REPO, 'test/helpers/audit-user.ts')], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
    users.push(child);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await until(() => (out.includes('ready') ? true : child.exitCode !== null ? false : undefined), 'the audit user to start', 20_000).then((ok) => {
      if (!ok) throw new Error(`the audit user exited (${child.exitCode})`);
    });
    return child;
  }

  async function closeUser(child: ChildProcess): Promise<void> {
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.stdin!.write('close\n');
    expect(await Promise.race([exited, sleep(20_000).then(() => 'timeout')])).toBe(0);
  }

  beforeAll(async () => {
    control = AuditControl.open();
    // As after boot when nothing uses audit: off with the kernel's default backlog, so that a run has something to put back.
    const found = await withMachineLock(async () => {
      const keys = (await control.listRules()).filter((r) => r.key !== null && RUNWALL_RULE_KEY.test(r.key));
      const status = await control.status();
      const marker = existsSync(AUDIT_MARKER) ? decodeAuditOriginal(readFileSync(AUDIT_MARKER, 'utf8')) : null;
      if (marker) return marker;
      if (keys.length === 0 && status.pid === 0 && status.enabled === 1) {
        await control.set({ enabled: 0, backlogLimit: 64 });
        return { enabled: 0, backlogLimit: 64 } as const;
      }
      return { enabled: status.enabled === 1 ? 1 : 0, backlogLimit: status.backlogLimit } as const;
    });
    original = found;
  });

  afterAll(async () => {
    for (const child of users) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await control?.close();
  });

  it('is the same after a run; during it, audit is on with a deep backlog', async () => {
    const user = await startUser();
    const during = await look();
    expect(during.enabled).toBe(1);
    expect(during.backlogLimit === 0 || during.backlogLimit >= 8192).toBe(true);
    expect(during.keys.filter((k) => k.startsWith(`runwall-${user.pid}-`)).sort()).toEqual(expect.arrayContaining([`runwall-${user.pid}-hub`, `runwall-${user.pid}-process-1`, `runwall-${user.pid}-detect-vm`]));
    await closeUser(user);
    expectAsFound(await settled());
  }, 120_000);

  it('is the same after two overlapping runs; audit stays on while the second still runs', async () => {
    const first = await startUser();
    const second = await startUser();
    await closeUser(first);
    const between = await look();
    expect(between.enabled).toBe(1);
    expect(between.keys.some((k) => k.startsWith(`runwall-${second.pid}-process`))).toBe(true);
    expect(between.keys.some((k) => k.startsWith(`runwall-${first.pid}-`))).toBe(false);
    await closeUser(second);
    expectAsFound(await settled());
  }, 120_000);

  it('is the same after a killed run followed by a normal one, whose start removes the killed one’s rules', async () => {
    const killed = await startUser();
    killed.kill('SIGKILL');
    await until(() => (killed.signalCode !== null ? true : undefined), 'the kill');
    const next = await startUser();
    expect((await look()).keys.some((k) => k.startsWith(`runwall-${killed.pid}-`))).toBe(false);
    await closeUser(next);
    expectAsFound(await settled());
  }, 120_000);
});
