// Audit and the proc connector against the real kernel: what the process sensor is built on.
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AuditControl, AuditStream, auditArch } from '../../../src/agent/platform/audit.js';
import { encodeAuditRule, runwallAuditRules, type AuditActivity } from '../../../src/agent/platform/audit-message.js';
import { ProcConnector } from '../../../src/agent/platform/proc-connector.js';
import type { ProcEvent } from '../../../src/agent/platform/proc-connector-message.js';

const MARK = `audit-test-${process.pid}`;

function run(script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid ?? 0));
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

describe('AuditStream', () => {
  it('reports execs with argv and cwd, and connects with the destination, from the syscall itself', async () => {
    const seen: AuditActivity[] = [];
    const stream = await AuditStream.open((a) => seen.push(a), () => undefined);
    try {
      const shell = await run(`cd /tmp && /bin/true ${MARK} "a b"; bash -c 'echo > /dev/tcp/127.0.0.1/9' 2>/dev/null; true`);
      await until(() => seen.some((a) => a.kind === 'socket' && a.ppid === shell), 'the connect record');
      const trueExec = seen.find((a) => a.kind === 'exec' && a.argv[1] === MARK);
      expect(trueExec).toMatchObject({ exe: '/usr/bin/true', argv: ['/bin/true', MARK, 'a b'], cwd: '/tmp', ppid: shell });
      const connect = seen.find((a) => a.kind === 'socket' && a.ppid === shell);
      expect(connect).toMatchObject({ syscall: 'connect', family: 4, address: '127.0.0.1', port: 9, exe: '/usr/bin/bash' });
    } finally {
      await stream.close();
    }
  });

  it('its rules are keyed and gone after close; a dead runwall’s rules are removed by the next one', async () => {
    const control = AuditControl.open();
    try {
      const dead = spawnSync('true').pid!;
      const stale = encodeAuditRule(runwallAuditRules(auditArch(), `runwall-${dead}`, dead)[0]!);
      await control.addRule(stale);
      expect((await control.listRules()).map((r) => r.key)).toContain(`runwall-${dead}`);
      const stream = await AuditStream.open(() => undefined, () => undefined);
      const during = (await control.listRules()).map((r) => r.key);
      expect(during).not.toContain(`runwall-${dead}`);
      expect(during.filter((k) => k === stream.key)).toHaveLength(3);
      await stream.close();
      expect((await control.listRules()).map((r) => r.key)).not.toContain(stream.key);
    } finally {
      await control.close();
    }
  });

  it('two streams side by side each keep their rules until they close', async () => {
    const first = await AuditStream.open(() => undefined, () => undefined);
    const seen: AuditActivity[] = [];
    const second = await AuditStream.open((a) => seen.push(a), () => undefined);
    await first.close();
    try {
      await run(`/bin/true ${MARK}-second`);
      await until(() => seen.some((a) => a.kind === 'exec' && a.argv[1] === `${MARK}-second`), 'the exec after the first stream closed');
    } finally {
      await second.close();
    }
  });
});

describe('ProcConnector', () => {
  it('reports fork, exec and exit with the status, for processes that live a millisecond', async () => {
    const events: ProcEvent[] = [];
    const connector = ProcConnector.open((e) => events.push(e), () => undefined);
    try {
      const shell = await run('/bin/true; (exit 3); kill -9 $$');
      await until(() => events.some((e) => e.kind === 'exit' && e.pid === shell), 'the shell’s exit');
      const children = events.filter((e) => e.kind === 'fork' && e.parentTgid === shell && e.childPid === e.childTgid).map((e) => (e.kind === 'fork' ? e.childTgid : 0));
      expect(children.length).toBeGreaterThanOrEqual(2);
      const statuses = events.filter((e) => e.kind === 'exit' && children.includes(e.pid)).map((e) => (e.kind === 'exit' ? e.status : -1));
      expect(statuses).toEqual(expect.arrayContaining([0, 3 << 8]));
      expect(events.some((e) => e.kind === 'exec' && children.includes(e.pid))).toBe(true);
      expect(events.find((e) => e.kind === 'exit' && e.pid === shell)).toMatchObject({ status: 9 });
    } finally {
      await connector.close();
    }
  });
});
