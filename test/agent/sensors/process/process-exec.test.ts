// The process sensor under the real `runwall exec`: every exec of the job with its argv, exits with
// their status, and each blocked connection and DNS query named by the process that made it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionEvent, ProcessEvent, RunReport } from '../../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../../helpers/internet.js';
import { eventsOf, execInHost, type ExecResult } from '../../../helpers/runwall-cli.js';

const JOB = [
  // A blocked connection from curl under the job's shell.
  'curl -s -m 3 http://198.51.100.11:443/',
  // A process that lives about a millisecond, with arguments holding a space.
  '/bin/true one "two words"',
  // Exit statuses, and a process killed by a signal.
  'sh -c "exit 7"',
  'sh -c \'kill -9 $$\'',
  // A blocked name.
  'curl -s -m 3 http://other.test/',
  // Two different programs blocked at the same moment, to different destinations.
  'wget -q -T 3 -t 1 http://198.51.100.12:8443/w & curl -s -m 3 http://198.51.100.13:443/c & wait',
  // Two processes to the same destination at the same moment: attribution must not guess.
  'curl -s -m 3 http://198.51.100.14:443/a & curl -s -m 3 http://198.51.100.14:443/b & wait',
  // A burst of short-lived processes.
  'i=0; while [ $i -lt 300 ]; do /bin/echo burst-$i >/dev/null; i=$((i+1)); done',
  'exit 0',
].join('\n');

describe('process sensor under runwall exec', () => {
  let internet: Internet;
  let result: ExecResult;
  let report: RunReport;
  let execs: ProcessEvent[];
  let exits: ProcessEvent[];

  beforeAll(async () => {
    internet = await createInternet();
    result = await execInHost(internet, ['--egress-policy', 'block', '--allowed-endpoints', 'allowed.test:443'], JOB);
    report = result.report!;
    execs = eventsOf(report, 'process').filter((e) => e.action === 'exec');
    exits = eventsOf(report, 'process').filter((e) => e.action === 'exit');
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
  });

  const connectionTo = (destination: string): ConnectionEvent => {
    const event = eventsOf(report, 'connection').find((e) => e.destination === destination);
    if (!event) throw new Error(`no connection event to ${destination}: ${JSON.stringify(eventsOf(report, 'connection'))}`);
    return event;
  };

  it('the job ran and the sensor reported no problem', () => {
    expect(result.code).toBe(0);
    const problems = report.events.filter((e) => e.kind === 'agent' && e.action === 'error');
    expect(problems).toEqual([]);
  });

  it('the job tree starts at the command: runwall’s own sandbox steps are not in it', () => {
    expect(execs[0]).toMatchObject({ exe: '/usr/bin/dash', argv: ['sh', '-c', JOB] });
    const programs = new Set(execs.map((e) => e.exe));
    for (const plumbing of ['/usr/bin/setpriv', '/usr/bin/nsenter', '/usr/bin/unshare', '/usr/bin/mount']) expect(programs).not.toContain(plumbing);
  });

  it('a blocked connection names its process exactly: curl, its argv, and its ancestry up to the job’s shell', () => {
    const event = connectionTo('198.51.100.11');
    expect(event.verdict).toBe('blocked');
    expect(event.process).toMatchObject({ exe: '/usr/bin/curl', argv: ['curl', '-s', '-m', '3', 'http://198.51.100.11:443/'], name: 'curl' });
    expect(event.process?.ancestry?.map((a) => a.name)).toEqual(['sh']);
    expect(event.process?.ancestry?.[0]?.pid).toBe(execs[0]!.pid);
    expect(event.sourcePort).toBeGreaterThan(0);
  });

  it('two programs blocked at the same moment: each connection names its own exe and argv', () => {
    const wget = connectionTo('198.51.100.12');
    const curl = connectionTo('198.51.100.13');
    expect(wget.process).toMatchObject({ exe: '/usr/bin/wget', argv: ['wget', '-q', '-T', '3', '-t', '1', 'http://198.51.100.12:8443/w'] });
    expect(curl.process).toMatchObject({ exe: '/usr/bin/curl', argv: ['curl', '-s', '-m', '3', 'http://198.51.100.13:443/c'] });
    expect(wget.process?.pid).not.toBe(curl.process?.pid);
  });

  it('two processes to one destination at the same moment: both are candidates, none is guessed', () => {
    const events = eventsOf(report, 'connection').filter((e) => e.destination === '198.51.100.14');
    const named = events.flatMap((e) => (e.process ? [e.process] : (e.processCandidates ?? [])));
    expect(new Set(named.map((p) => p.argv?.at(-1)))).toEqual(new Set(['http://198.51.100.14:443/a', 'http://198.51.100.14:443/b']));
    for (const event of events) {
      if (event.count > 1 || event.processCandidates) {
        expect(event.process).toBeUndefined();
        expect(event.processCandidates?.length).toBe(2);
      }
    }
  });

  it('a blocked DNS query names the process that asked', () => {
    const dns = eventsOf(report, 'dns').filter((e) => e.name === 'other.test');
    expect(dns.length).toBeGreaterThan(0);
    for (const event of dns) expect(event.process).toMatchObject({ exe: '/usr/bin/curl', argv: ['curl', '-s', '-m', '3', 'http://other.test/'] });
  });

  it('a process that lives a millisecond is recorded with its argv and cwd', () => {
    const trueExec = execs.find((e) => e.exe === '/usr/bin/true');
    expect(trueExec).toMatchObject({ argv: ['/bin/true', 'one', 'two words'], ppid: execs[0]!.pid, uid: 0 });
    expect(trueExec?.cwd).toBe(execs[0]!.cwd);
    expect(exits.find((e) => e.pid === trueExec?.pid)?.exitCode).toBe(0);
  });

  it('every one of 300 short-lived processes in a burst is recorded with its argv', () => {
    const burst = execs.filter((e) => e.argv?.[0] === '/bin/echo').map((e) => e.argv?.[1]);
    expect(burst).toHaveLength(300);
    expect(new Set(burst).size).toBe(300);
  });

  it('exit statuses are recorded: 7 from exit 7, 137 for a SIGKILL, curl’s own codes', () => {
    const statusOf = (argv: string[]) => exits.find((x) => x.pid === execs.find((e) => JSON.stringify(e.argv) === JSON.stringify(argv))?.pid)?.exitCode;
    expect(statusOf(['sh', '-c', 'exit 7'])).toBe(7);
    expect(statusOf(['sh', '-c', 'kill -9 $$'])).toBe(137);
    expect(statusOf(['curl', '-s', '-m', '3', 'http://198.51.100.11:443/'])).toBe(7); // could not connect
    expect(statusOf(['curl', '-s', '-m', '3', 'http://other.test/'])).toBe(6); // could not resolve
    const root = exits.find((e) => e.pid === execs[0]!.pid);
    expect(root?.exitCode).toBe(0);
  });

  it('the report has the process tree and, per destination, the tool chains that reached it', () => {
    const tree = report.processes ?? [];
    const root = tree.find((n) => n.pid === execs[0]!.pid);
    const curl = tree.find((n) => n.argv?.at(-1) === 'http://198.51.100.11:443/');
    expect(root?.parent).toBeUndefined();
    expect(curl?.parent).toBe(root?.id);
    expect(curl).toMatchObject({ name: 'curl', exitCode: 7 });
    const destination = report.summary.destinations.find((d) => d.name === '198.51.100.12');
    expect(destination?.chains).toEqual(['sh → wget']);
    expect(report.summary.destinations.find((d) => d.name === 'other.test')?.chains).toEqual(['sh → curl']);
  });
});
