// The process sensor under `runwall agent` on a "runner VM" (the test internet's host namespace): a
// stand-in runner worker (a copy of dash named Runner.Worker, started before the agent, as on
// GitHub) runs a step; the step's processes are the job, a process beside it is not.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../../helpers/internet.js';
import { REPO, RUNWALL, eventsOf } from '../../../helpers/runwall-cli.js';

describe('process sensor under runwall agent', () => {
  let internet: Internet;
  let report: RunReport;

  beforeAll(async () => {
    internet = await createInternet();
    const dir = mkdtempSync(join(tmpdir(), 'runwall-agent-proc-'));
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 198.51.100.53\n');
    mkdirSync(join(dir, 'docker'));
    const flags = ['--state-dir', join(dir, 'state'), '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'docker', 'daemon.json')];
    const onRunner = (script: string) => ['unshare', '--mount', 'sh', '-c', `mount --bind ${resolvConf} /etc/resolv.conf && ${script}`];

    // The worker: waits (bounded) for its step, runs it as a child shell as Runner.Worker does, then
    // stays until the agent has stopped (a runner outlives its jobs).
    const worker = join(dir, 'bin', 'Runner.Worker');
    mkdirSync(join(dir, 'bin'));
    copyFileSync('/usr/bin/dash', worker);
    chmodSync(worker, 0o755);
    const go = join(dir, 'go');
    const end = join(dir, 'end');
    const stepped = join(dir, 'stepped');
    const wait = (file: string) => `i=0; while [ ! -e ${file} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;
    writeFileSync(join(dir, 'worker.sh'), `${wait(go)}\nsh -c 'curl -s -m 3 http://198.51.100.11:443/step; /bin/echo step-done'\n: > ${stepped}\n${wait(end)}\n`);
    const workerRun = internet.spawnInHost(onRunner(`${worker} ${join(dir, 'worker.sh')}`), { timeoutMs: 60_000 });

    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--allowed-endpoints', 'allowed.test', ...flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    // Beside the runner, while it runs: not the job.
    await internet.runInHost(onRunner('curl -s -m 3 http://198.51.100.14:443/beside'), { timeoutMs: 30_000 });
    // A query on the runner VM while, in a namespace the agent does not govern (a fresh one of its own,
    // loopback only: nothing leaves it), digs keep sending to port 53 (bounded: 60, each refused at once).
    const outsider = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up; i=0; while [ $i -lt 60 ]; do dig +tries=1 +time=1 @127.0.0.1 outsider.test >/dev/null 2>&1; sleep 0.02; i=$((i+1)); done'], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    const outsiderDone = new Promise((resolve) => outsider.on('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await internet.runInHost(onRunner('dig +tries=1 +time=2 who-asked.test'), { timeoutMs: 30_000 });
    await outsiderDone;
    writeFileSync(go, '');
    // The worker marks the step done (bounded wait).
    for (let i = 0; i < 200 && !existsSync(stepped); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(existsSync(stepped)).toBe(true);
    const reportPath = join(dir, 'report.json');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...flags.slice(0, 2)], { cwd: REPO });
    writeFileSync(end, '');
    expect((await workerRun.done).code).toBe(0);
    expect(stop.code).toBe(0);
    report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
  });

  it('the worker’s step is the job: its shell and curl are recorded with their argv', () => {
    const execs = eventsOf(report, 'process').filter((e) => e.action === 'exec');
    const stepShell = execs.find((e) => e.argv?.[0] === 'sh' && e.argv?.[2]?.includes('/step'));
    const curl = execs.find((e) => e.exe === '/usr/bin/curl' && e.argv?.at(-1) === 'http://198.51.100.11:443/step');
    expect(stepShell).toBeDefined();
    expect(curl).toMatchObject({ ppid: stepShell!.pid });
    expect(curl?.process?.ancestry?.map((a) => a.pid)).toEqual([stepShell!.pid]);
    expect(execs.find((e) => e.argv?.[0] === '/bin/echo' && e.argv[1] === 'step-done')).toBeDefined();
  });

  it('the worker itself and a process beside it are not the job', () => {
    const execs = eventsOf(report, 'process').filter((e) => e.action === 'exec');
    expect(execs.find((e) => e.exe?.endsWith('/Runner.Worker'))).toBeUndefined();
    expect(execs.find((e) => e.argv?.at(-1) === 'http://198.51.100.14:443/beside')).toBeUndefined();
  });

  it('a query on the runner VM names its own dig, not the digs of a namespace the agent does not govern', () => {
    const query = eventsOf(report, 'dns').find((e) => e.name === 'who-asked.test');
    expect(query?.rcode).toBe('NXDOMAIN');
    expect(query?.processCandidates).toBeUndefined();
    expect(query?.process).toMatchObject({ exe: '/usr/bin/dig', argv: ['dig', '+tries=1', '+time=2', 'who-asked.test'] });
    expect(eventsOf(report, 'dns').find((e) => e.name === 'outsider.test')).toBeUndefined();
  });

  it('connections are attributed in agent mode too: the step’s curl, and the one beside it', () => {
    const step = eventsOf(report, 'connection').find((e) => e.destination === '198.51.100.11' && e.port === 443);
    expect(step?.verdict).toBe('blocked');
    expect(step?.process).toMatchObject({ exe: '/usr/bin/curl', argv: ['curl', '-s', '-m', '3', 'http://198.51.100.11:443/step'] });
    expect(step?.process?.ancestry?.map((a) => a.name)).toEqual(['sh']);
    const beside = eventsOf(report, 'connection').find((e) => e.destination === '198.51.100.14');
    expect(beside?.process?.argv?.at(-1)).toBe('http://198.51.100.14:443/beside');
    expect(report.summary.destinations.find((d) => d.name === '198.51.100.11')?.chains).toEqual(['sh → curl']);
  });
});
