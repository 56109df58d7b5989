// The file sensor in agent mode: `runwall agent start --workspace` on the test internet's "runner".
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../../helpers/internet.js';
import { REPO, RUNWALL, eventsOf } from '../../../helpers/runwall-cli.js';

describe('runwall agent --workspace', () => {
  let internet: Internet;
  let dir: string;

  beforeAll(async () => {
    internet = await createInternet();
    dir = mkdtempSync(join(tmpdir(), `runwall-files-agent-${process.pid}-`));
  }, 60_000);

  afterAll(async () => {
    await internet?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records changes in the workspace by processes on the machine, and finds the change to tracked source', async () => {
    const workspace = join(dir, 'work');
    mkdirSync(join(workspace, 'src'), { recursive: true });
    writeFileSync(join(workspace, 'src', 'main.py'), 'print("hi")\n');
    execFileSync('git', ['-C', workspace, 'init', '-q']);
    execFileSync('git', ['-C', workspace, 'add', '.']);
    execFileSync('git', ['-c', 'user.email=ci@example.test', '-c', 'user.name=ci', '-C', workspace, 'commit', '-qm', 'init']);
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 198.51.100.53\n');
    const flags = ['--state-dir', join(dir, 'state'), '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'daemon.json')];

    const start = await internet.runInHost([...RUNWALL, 'agent', 'start', '--egress-policy', 'audit', '--workspace', workspace, ...flags], { cwd: REPO, timeoutMs: 30_000 });
    expect(start.code, start.stderr).toBe(0);
    const job = await internet.runInHost(['sh', '-c', `cd ${workspace} && { echo "import os"; sleep 0.5; } | tee -a src/main.py >/dev/null && mkdir -p build && echo x > build/out.txt`], { timeoutMs: 30_000 });
    expect(job.code).toBe(0);
    const reportPath = join(dir, 'report.json');
    const stop = await internet.runInHost([...RUNWALL, 'agent', 'stop', '--report', reportPath, ...flags.slice(0, 2)], { cwd: REPO, timeoutMs: 30_000 });
    expect(stop.code, stop.stderr).toBe(0);

    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    expect(report.run.surface).toBe('agent');
    const files = eventsOf(report, 'file');
    expect(files.find((e) => e.path === 'build/out.txt' && e.action === 'create')).toMatchObject({ source: false });
    const finding = eventsOf(report, 'detection').find((d) => d.id === 'source-tampered');
    expect(finding?.evidence).toMatchObject({ path: 'src/main.py', action: 'write', excused: false });
    expect(finding?.process?.exe).toBe('/usr/bin/tee');
  }, 120_000);
});
