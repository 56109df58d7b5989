// The process table fed with the kernel's events in the orders they really arrive in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentMembership, execMembership } from '../../../../src/agent/sensors/process/membership.js';
import { ProcessRegistry, type ExecDetails, type ProcessInfo, type SeedEntry } from '../../../../src/agent/sensors/process/process-table.js';

const RUNWALL = 100;

function details(pid: number, exe: string, argv: string[], timeMs = 1000, ppid: number | null = null): ExecDetails {
  return { pid, ppid, exe, argv, cwd: '/work', uid: 0, comm: exe.slice(exe.lastIndexOf('/') + 1).slice(0, 15), timeMs };
}

/** An exec as the kernel reports it: the connector's announcement, then audit's details. */
function exec(table: ProcessRegistry, pid: number, exe: string, argv: string[], timeMs = 1000): void {
  table.execAnnounced(pid, timeMs, null);
  table.execDetails(details(pid, exe, argv, timeMs), true);
}

function execScope(cgroups: Map<number, string>) {
  const table = new ProcessRegistry({ membership: execMembership({ jobCgroup: 'runwall/1a2b3c4d', launcherParent: RUNWALL, cgroupOf: (pid) => cgroups.get(pid) ?? null }) });
  const execs: ProcessInfo[] = [];
  const exits: ProcessInfo[] = [];
  table.onExec((info) => execs.push(info));
  table.onExit((info) => exits.push(info));
  return { table, execs, exits };
}

/** `runwall exec -- sh -c 'curl …'` as ExecSandbox.spawnJob starts it. */
function startSandbox(table: ProcessRegistry, cgroups: Map<number, string>): void {
  table.fork(RUNWALL, 200, 1000); // setpriv --pdeathsig
  exec(table, 200, '/usr/bin/setpriv', ['setpriv', '--pdeathsig', 'KILL']);
  exec(table, 200, '/usr/bin/dash', ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"']);
  cgroups.set(200, '/runwall/1a2b3c4d');
  exec(table, 200, '/usr/bin/nsenter', ['nsenter', '--net=/run/netns/runwall-1a2b3c4d']);
  exec(table, 200, '/usr/bin/unshare', ['unshare', '--pid', '--fork']);
  table.fork(200, 201, 1001); // PID 1 of the job's namespace
  exec(table, 201, '/usr/bin/dash', ['sh', '-c', '…', 'runwall-init']);
  table.fork(201, 202, 1002);
  exec(table, 202, '/usr/bin/mount', ['mount', '--bind', '/run/runwall/jobs/x/resolv.conf', '/etc/resolv.conf']);
  table.exit(202, 1003, 0);
  table.fork(201, 203, 1004);
  exec(table, 203, '/usr/bin/setpriv', ['setpriv', '--bounding-set', '-sys_admin', '--', 'sh', '-c', 'curl x']);
  exec(table, 203, '/usr/bin/dash', ['sh', '-c', 'curl x']);
}

describe('process table, exec scope', () => {
  it('the job starts at the command: sandbox plumbing is not the job, and the ancestry stops at the command', () => {
    const cgroups = new Map<number, string>();
    const { table, execs } = execScope(cgroups);
    startSandbox(table, cgroups);
    table.fork(203, 204, 1010);
    exec(table, 204, '/usr/bin/curl', ['curl', 'x']);
    expect(execs.filter((e) => e.inJob).map((e) => [e.pid, e.exe])).toEqual([
      [203, '/usr/bin/dash'],
      [204, '/usr/bin/curl'],
    ]);
    expect(table.get(202)?.inJob).toBe(false); // the resolver mount
    expect(table.ancestry(204).map((p) => p.exe)).toEqual(['/usr/bin/dash']);
    expect(table.get(204)).toMatchObject({ pid: 204, ppid: 203, argv: ['curl', 'x'], cwd: '/work', uid: 0, inJob: true, endTime: null });
  });

  it('a process that lives a millisecond: its exit waits for its argv, then both are told, in order, with the exit code', () => {
    const cgroups = new Map<number, string>();
    const { table, execs, exits } = execScope(cgroups);
    startSandbox(table, cgroups);
    table.fork(203, 210, 2000);
    table.execAnnounced(210, 2000, null);
    table.exit(210, 2001, 3);
    expect(exits.map((e) => e.pid)).not.toContain(210);
    table.execDetails(details(210, '/usr/bin/false', ['/bin/false', '--flag'], 2000), true);
    const order = [...execs.map((e) => `exec ${e.pid}`), ...exits.map((e) => `exit ${e.pid}`)];
    expect(order).toContain('exec 210');
    expect(exits.find((e) => e.pid === 210)).toMatchObject({ argv: ['/bin/false', '--flag'], exitCode: 3, inJob: true });
    expect(table.get(210)?.endTime).toBe(new Date(2001).toISOString());
  });

  it('a child forked before its parent’s exec details arrived joins the job when they do', () => {
    const cgroups = new Map<number, string>();
    const { table, execs } = execScope(cgroups);
    table.fork(RUNWALL, 200, 1000);
    table.execAnnounced(200, 1000, null);
    cgroups.set(200, '/runwall/1a2b3c4d');
    table.execAnnounced(200, 1000, null); // nsenter: now in the cgroup
    table.fork(200, 201, 1001);
    table.execAnnounced(201, 1001, null);
    table.fork(201, 203, 1002);
    table.execAnnounced(203, 1003, null); // setpriv
    table.execAnnounced(203, 1004, null); // the command
    table.fork(203, 204, 1005); // forked before any audit record came
    // Audit's records now arrive, in syscall order.
    table.execDetails(details(200, '/usr/bin/setpriv', ['setpriv']), true);
    table.execDetails(details(200, '/usr/bin/nsenter', ['nsenter']), true);
    table.execDetails(details(201, '/usr/bin/dash', ['sh', '-c', '…', 'runwall-init']), true);
    table.execDetails(details(203, '/usr/bin/setpriv', ['setpriv', '--', 'sh']), true);
    expect(table.get(204)?.inJob).toBe(false);
    table.execDetails(details(203, '/usr/bin/dash', ['sh', '-c', 'curl x']), true);
    expect(table.get(204)?.inJob).toBe(true);
    table.execAnnounced(204, 1006, null);
    table.execDetails(details(204, '/usr/bin/curl', ['curl', 'x']), true);
    expect(execs.filter((e) => e.inJob).map((e) => e.exe)).toEqual(['/usr/bin/dash', '/usr/bin/curl']);
  });

  it('exec details that never come are told after the wait with what is known', () => {
    const cgroups = new Map<number, string>();
    const { table, exits } = execScope(cgroups);
    startSandbox(table, cgroups);
    table.fork(203, 220, 3000);
    table.execAnnounced(220, 3000, null);
    table.exit(220, 3001, 0);
    expect(table.expirePending((since) => 3500 - since > 1000, () => null)).toBe(0);
    expect(table.expirePending((since) => 4001 - since > 1000, () => null)).toBe(1);
    expect(exits.find((e) => e.pid === 220)).toMatchObject({ exitCode: 0, inJob: true });
  });

  it('details that come after the exec was given up on correct the table without telling the exec twice', () => {
    const cgroups = new Map<number, string>();
    const { table, execs } = execScope(cgroups);
    startSandbox(table, cgroups);
    table.fork(203, 221, 3000);
    table.execAnnounced(221, 3000, null);
    table.expirePending(() => true, () => null);
    table.execDetails(details(221, '/usr/bin/make', ['make', 'all'], 3000), true);
    expect(execs.filter((e) => e.pid === 221)).toHaveLength(1);
    expect(table.get(221)?.argv).toEqual(['make', 'all']);
    table.execAnnounced(221, 3100, null); // the next exec waits for its own details again
    table.execDetails(details(221, '/usr/bin/cc', ['cc'], 3100), true);
    expect(execs.filter((e) => e.pid === 221).map((e) => e.exe)).toEqual(['/usr/bin/dash', '/usr/bin/cc']);
  });

  it('ancestry follows the real creator when a pid is reused after it exited', () => {
    const cgroups = new Map<number, string>();
    const { table } = execScope(cgroups);
    startSandbox(table, cgroups);
    table.fork(203, 230, 4000);
    exec(table, 230, '/usr/bin/make', ['make']);
    table.fork(230, 231, 4001);
    table.exit(230, 4002, 0);
    table.fork(203, 230, 4003); // the pid comes back for another process
    exec(table, 230, '/usr/bin/ls', ['ls'], 4003);
    exec(table, 231, '/usr/bin/cc', ['cc'], 4004);
    expect(table.ancestry(231).map((p) => p.exe)).toEqual(['/usr/bin/make', '/usr/bin/dash']);
  });

  it('keeps a bounded number of exited processes', () => {
    const table = new ProcessRegistry({ retainExited: 10, membership: execMembership({ jobCgroup: 'j', launcherParent: RUNWALL, cgroupOf: () => null }) });
    for (let pid = 1000; pid < 1100; pid++) {
      table.fork(RUNWALL, pid, pid);
      table.exit(pid, pid + 1, 0);
    }
    expect(table.size).toBe(10);
    expect(table.get(1099)).toBeDefined();
    expect(table.get(1000)).toBeUndefined();
  });

  it('a listener that throws does not stop the table or the other listeners', () => {
    const errors: unknown[] = [];
    const table = new ProcessRegistry({ onListenerError: (e) => errors.push(e), membership: execMembership({ jobCgroup: 'j', launcherParent: RUNWALL, cgroupOf: () => null }) });
    const seen: number[] = [];
    table.onExec(() => {
      throw new Error('boom');
    });
    table.onExec((info) => seen.push(info.pid));
    table.fork(RUNWALL, 5, 1);
    exec(table, 5, '/bin/true', ['true']);
    expect(seen).toEqual([5]);
    expect(errors).toHaveLength(1);
  });
});

describe('process table, agent scope', () => {
  const AGENT = 50;
  function seed(pid: number, ppid: number, exe: string, argv: string[] = [exe]): SeedEntry {
    return { pid, ppid, exe, argv, cwd: '/', uid: 0, comm: exe.slice(exe.lastIndexOf('/') + 1).slice(0, 15), startMs: 0, cgroup: '/' };
  }
  function agentTable(): ProcessRegistry {
    let table: ProcessRegistry;
    table = new ProcessRegistry({ membership: agentMembership({ agentPid: AGENT, runnerPresent: () => table.runnerPresent }), cgroupOf: () => null });
    return table;
  }

  it('with a runner, the job is what Runner.Worker starts; the worker, the listener and the agent are not', () => {
    const table = agentTable();
    table.seed([
      seed(1, 0, '/sbin/init'),
      seed(10, 1, '/home/runner/bin/Runner.Listener'),
      seed(11, 10, '/home/runner/bin/Runner.Worker'),
      seed(12, 11, '/usr/bin/bash', ['bash', '-e', '/home/runner/work/_temp/step.sh']),
      seed(AGENT, 12, '/usr/bin/node', ['node', 'runwall', 'agent']),
      seed(60, 1, '/usr/sbin/cron'),
    ]);
    expect(table.get(12)?.inJob).toBe(true);
    expect(table.get(11)?.inJob).toBe(false);
    expect(table.get(AGENT)?.inJob).toBe(false);
    expect(table.get(60)?.inJob).toBe(false);
    table.fork(12, 70, 10);
    exec(table, 70, '/usr/bin/curl', ['curl', 'x']);
    table.fork(AGENT, 71, 11);
    exec(table, 71, '/usr/sbin/ip', ['ip', 'link']);
    table.fork(60, 72, 12);
    exec(table, 72, '/usr/bin/logrotate', ['logrotate']);
    expect([table.get(70)?.inJob, table.get(71)?.inJob, table.get(72)?.inJob]).toEqual([true, false, false]);
    expect(table.ancestry(70).map((p) => p.pid)).toEqual([12]);
  });

  it('a worker that starts later makes its children the job', () => {
    const table = agentTable();
    table.seed([seed(1, 0, '/sbin/init'), seed(10, 1, '/opt/runner/bin/Runner.Listener'), seed(AGENT, 1, '/usr/bin/node')]);
    table.fork(10, 11, 5);
    exec(table, 11, '/opt/runner/bin/Runner.Worker', ['Runner.Worker', 'spawnclient', '1', '2']);
    table.fork(11, 12, 6);
    exec(table, 12, '/usr/bin/bash', ['bash', '-e', 'step.sh']);
    expect(table.get(12)?.inJob).toBe(true);
    expect(table.runnerPresent).toBe(true);
  });

  it('without a runner, everything but the agent is the job', () => {
    const table = agentTable();
    table.seed([seed(1, 0, '/sbin/init'), seed(AGENT, 1, '/usr/bin/node'), seed(60, 1, '/usr/sbin/sshd')]);
    table.fork(60, 61, 1);
    exec(table, 61, '/usr/bin/make', ['make']);
    table.fork(AGENT, 62, 2);
    expect([table.get(60)?.inJob, table.get(61)?.inJob, table.get(62)?.inJob]).toEqual([true, true, false]);
  });

  it("the agent's own helpers are not held waiting for audit's details (it may not have seen them); the job's execs are", () => {
    const table = agentTable();
    table.seed([seed(1, 0, '/sbin/init'), seed(AGENT, 1, '/usr/bin/node'), seed(60, 1, '/usr/bin/bash')]);
    table.fork(AGENT, 71, 10);
    table.execAnnounced(71, 11, AGENT);
    expect(table.pending).toBe(0);
    table.fork(60, 61, 12);
    table.execAnnounced(61, 13, 60);
    expect(table.pending).toBe(1);
  });

  it('a process in a container cgroup is the job even on a runner', () => {
    let table: ProcessRegistry;
    table = new ProcessRegistry({
      membership: agentMembership({ agentPid: AGENT, runnerPresent: () => table.runnerPresent }),
      cgroupOf: (pid) => (pid === 81 ? `/system.slice/docker-${'ab'.repeat(32)}.scope` : '/'),
    });
    table.seed([seed(1, 0, '/sbin/init'), seed(10, 1, '/runner/Runner.Listener'), seed(80, 1, '/usr/bin/containerd-shim-runc-v2')]);
    table.fork(80, 81, 1);
    exec(table, 81, '/usr/bin/python3', ['python3', 'app.py']);
    expect(table.get(81)?.inJob).toBe(true);
    expect(table.get(81)?.cgroup).toBe(`/system.slice/docker-${'ab'.repeat(32)}.scope`);
  });
});

describe('process table property', () => {
  it('every exec is told once with its details, every exit once and after its exec, whatever the order of audit’s records', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(9), fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 40 }), fc.nat(1000), (plan, seedValue) => {
        let table: ProcessRegistry;
        table = new ProcessRegistry({ membership: agentMembership({ agentPid: 1, runnerPresent: () => table.runnerPresent }) });
        const told: string[] = [];
        table.onExec((i) => told.push(`exec ${i.pid} ${i.exe}`));
        table.onExit((i) => told.push(`exit ${i.pid}`));
        const details: ExecDetails[] = [];
        let pid = 1000;
        const live: number[] = [];
        for (const [parentIndex, runs, exits] of plan) {
          pid += 1;
          const parent = live[parentIndex % Math.max(1, live.length)] ?? 2;
          table.fork(parent, pid, pid);
          live.push(pid);
          if (runs) {
            table.execAnnounced(pid, pid, null);
            details.push({ pid, ppid: parent, exe: `/bin/p${pid}`, argv: [`p${pid}`], cwd: null, uid: 0, comm: null, timeMs: pid });
          }
          if (exits) table.exit(pid, pid + 0.5, 0);
        }
        // Audit delivers in order, but at some point after the connector (here: all later, some interleaved).
        const cut = seedValue % (details.length + 1);
        for (const d of details.slice(0, cut)) table.execDetails(d, true);
        for (const d of details.slice(cut)) table.execDetails(d, true);
        for (const d of details) expect(told.filter((t) => t === `exec ${d.pid} /bin/p${d.pid}`)).toHaveLength(1);
        for (const line of told.filter((t) => t.startsWith('exit'))) {
          const exitPid = Number(line.split(' ')[1]);
          expect(told.filter((t) => t === line)).toHaveLength(1);
          const execAt = told.findIndex((t) => t.startsWith(`exec ${exitPid} `));
          if (details.some((d) => d.pid === exitPid)) expect(execAt).toBeLessThan(told.indexOf(line));
        }
      }),
    );
  });
});
