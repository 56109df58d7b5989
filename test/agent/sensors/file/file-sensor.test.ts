// The file sensor under the real `runwall exec --workspace`: real fanotify, real writes in a temp git repo.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../../helpers/internet.js';
import { REPO, RUNWALL, eventsOf, execInHost, type ExecResult } from '../../../helpers/runwall-cli.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A git work tree with these tracked files (committed), owned by root as a CI checkout would be. */
function makeRepo(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=ci@example.test', '-c', 'user.name=ci', '-C', dir, ...args], { stdio: 'ignore' });
  git('init', '-q');
  git('add', '.');
  git('commit', '-qm', 'initial');
}

const fileEvents = (report: RunReport) => eventsOf(report, 'file');
const findings = (report: RunReport) => eventsOf(report, 'detection').filter((d) => d.id === 'source-tampered');
// The file sensor's own notes (other sensors, such as the L7 check, report what they saw too).
const sensorNotes = (report: RunReport) => eventsOf(report, 'agent').filter((a) => a.action === 'sensor' && a.message.startsWith('file ')).map((a) => a.message);
/** Every counted change of `action` under `prefix`: individual events count 1, folded ones their count. */
const total = (report: RunReport, action: string, prefix: string) =>
  fileEvents(report)
    .filter((e) => e.action === action && e.path.startsWith(prefix))
    .reduce((n, e) => n + (e.count ?? 1), 0);

const SOURCE = {
  'src/index.js': 'console.log("hello");\n',
  'src/lib/util.js': 'export const x = 1;\n',
  'README.md': '# app\n',
  'VERSION': '1.0.0\n',
  'keep.txt': 'keep\n',
  '.gitignore': 'dist/\nnode_modules/\n',
};

describe('file sensor under runwall exec --workspace', () => {
  let internet: Internet;
  let base: string;
  let tmpfs: string;

  beforeAll(async () => {
    internet = await createInternet();
    base = mkdtempSync(join(tmpdir(), `runwall-files-${process.pid}-`));
    tmpfs = join(base, 'tmpfs');
    mkdirSync(tmpfs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', `runwall-files-${process.pid}`, tmpfs]);
  }, 120_000);

  afterAll(async () => {
    await internet?.destroy();
    try {
      execFileSync('umount', ['-l', tmpfs]);
    } catch {
      // Not mounted (set-up failed early).
    }
    rmSync(base, { recursive: true, force: true });
  });

  describe('a job that tampers with source, restores it, and writes outputs (repo on the disk)', () => {
    let result: ExecResult;
    let report: RunReport;
    let workspace: string;

    beforeAll(async () => {
      workspace = join(base, 'tamper');
      makeRepo(workspace, SOURCE);
      const script = [
        // A tracked file modified by a named process (tee stays alive until its input ends).
        '{ echo "// injected"; sleep 0.5; } | tee -a src/index.js > /dev/null',
        // SolarWinds: write, let the build see it, put the original back.
        'cp README.md /tmp/readme.$$; echo "implant" >> README.md; sleep 0.3; cp /tmp/readme.$$ README.md; rm /tmp/readme.$$',
        // The same, restored at once.
        'cp VERSION /tmp/version.$$; echo 6.6.6 > VERSION; cat /tmp/version.$$ > VERSION; rm /tmp/version.$$',
        // A tracked file deleted, a tracked directory moved away.
        'rm keep.txt',
        'mv src/lib src/lib-moved',
        // Outputs and installed packages: not source.
        'mkdir -p dist node_modules/pkg && echo out > dist/app.js && echo pkg > node_modules/pkg/index.js && echo new > src/generated.js',
        // Opened for writing but not changed: not a write.
        'touch src/index.js',
      ].join('\n');
      result = await execInHost(internet, ['--egress-policy', 'block', '--workspace', workspace], script);
      report = result.report!;
    }, 120_000);

    it('runs the job and says what it watched', () => {
      expect(result.code, result.stderr).toBe(0);
      expect(sensorNotes(report)[0]).toMatch(new RegExp(`file monitoring on ${workspace}: 6 source files \\(git ls-files\\)`));
      expect(sensorNotes(report).at(-1)).toMatch(/no events lost/);
      expect(report.enforcement.problems).toEqual([]);
    });

    it('a tracked file modified by a process is source-tampered, naming the process and both hashes', () => {
      const finding = findings(report).find((f) => f.evidence['path'] === 'src/index.js' && f.evidence['action'] === 'write');
      expect(finding).toBeDefined();
      expect(finding?.severity).toBe('high');
      expect(finding?.evidence['sha256Before']).toBe(sha256(SOURCE['src/index.js']));
      expect(finding?.evidence['sha256After']).toBe(sha256(readFileSync(join(workspace, 'src/index.js'), 'utf8')));
      expect(finding?.evidence['sha256After']).toBe(sha256(`${SOURCE['src/index.js']}// injected\n`));
      expect(finding?.process?.exe).toBe('/usr/bin/tee');
      expect(finding?.process?.argv).toEqual(['tee', '-a', 'src/index.js']);
      expect(finding?.evidence['excused']).toBe(false);
      expect(finding?.remedy).toMatch(/git diff -- src\/index\.js/);
      const event = fileEvents(report).find((e) => e.path === 'src/index.js' && e.action === 'write');
      expect(event).toMatchObject({ source: true, sha256: finding?.evidence['sha256After'] });
    });

    it('a change that was reverted before the job ended is still reported: the write, and that it was restored', () => {
      for (const path of ['README.md', 'VERSION']) {
        const original = sha256(SOURCE[path as keyof typeof SOURCE]);
        const writes = findings(report).filter((f) => f.evidence['path'] === path && f.evidence['action'] === 'write');
        expect(writes.length, path).toBeGreaterThan(0);
        const restored = findings(report).find((f) => f.evidence['path'] === path && f.evidence['restored'] === true);
        expect(restored, path).toBeDefined();
        expect(restored?.severity).toBe('high');
        expect(restored?.evidence['sha256Before']).toBe(original);
        expect(restored?.evidence['sha256After']).toBe(original);
        expect(restored?.title).toMatch(/restored before it ended/);
      }
      // The slow one was read while it held the implant.
      const readme = findings(report).find((f) => f.evidence['path'] === 'README.md' && f.evidence['restored'] === true);
      expect(readme?.evidence['sha256Seen']).toContain(sha256(`${SOURCE['README.md']}implant\n`));
    });

    it('deleting a tracked file and moving a tracked directory are source changes too', () => {
      expect(findings(report).find((f) => f.evidence['path'] === 'keep.txt')?.evidence).toMatchObject({ action: 'delete', sha256After: null });
      const moved = findings(report).find((f) => f.evidence['path'] === 'src/lib/util.js');
      expect(moved?.evidence).toMatchObject({ action: 'rename', to: 'src/lib-moved/util.js' });
    });

    it('outputs, node_modules and new files are file events without a finding; a touch is not a write', () => {
      for (const path of ['dist/app.js', 'node_modules/pkg/index.js', 'src/generated.js']) {
        expect(fileEvents(report).find((e) => e.path === path && e.action === 'create'), path).toMatchObject({ source: false });
        expect(findings(report).find((f) => f.evidence['path'] === path), path).toBeUndefined();
      }
      const indexWrites = fileEvents(report).filter((e) => e.path === 'src/index.js' && e.action === 'write');
      expect(indexWrites).toHaveLength(1); // tee's write; the touch adds nothing
      const paths = new Set(findings(report).map((f) => f.evidence['path']));
      expect([...paths].sort()).toEqual(['README.md', 'VERSION', 'keep.txt', 'src/index.js', 'src/lib/util.js']);
    });
  });

  it('a 10,000-file write loses nothing and folds into a few events', async () => {
    const workspace = join(tmpfs, 'many');
    makeRepo(workspace, { 'package.json': '{}\n' });
    const result = await execInHost(
      internet,
      ['--egress-policy', 'block', '--workspace', workspace],
      'mkdir -p node_modules/big && cd node_modules/big && i=0; while [ $i -lt 10000 ]; do echo $i > f$i; i=$((i+1)); done; rm f1 f2 f3',
      { timeoutMs: 120_000 },
    );
    const report = result.report!;
    expect(result.code, result.stderr).toBe(0);
    expect(total(report, 'create', 'node_modules/')).toBe(10_000);
    expect(total(report, 'write', 'node_modules/')).toBe(10_000);
    expect(total(report, 'delete', 'node_modules/')).toBe(3);
    expect(fileEvents(report).length).toBeLessThan(50);
    expect(fileEvents(report).find((e) => e.count !== undefined)?.path).toBe('node_modules/');
    expect(findings(report)).toEqual([]);
    expect(sensorNotes(report).at(-1)).toMatch(/10000 created, 10000 written, 0 renamed, 3 deleted .*no events lost/);
    expect(report.enforcement.problems).toEqual([]);
  }, 180_000);

  it('an allowed writer is excused: still reported, at severity info, saying which entry excused it', async () => {
    const workspace = join(tmpfs, 'allowed');
    makeRepo(workspace, SOURCE);
    const policy = join(base, 'allowed-policy.yml');
    writeFileSync(policy, 'egress-policy: block\nallowed-source-writers:\n  - tee path:VERSION\n');
    const result = await execInHost(
      internet,
      ['--policy', policy, '--workspace', workspace],
      '{ echo 1.0.1; sleep 0.5; } | tee VERSION > /dev/null; { echo x; sleep 0.5; } | tee -a README.md > /dev/null',
    );
    const report = result.report!;
    expect(result.code, result.stderr).toBe(0);
    expect(report.policy.allowedSourceWriters).toEqual([{ process: 'tee', paths: ['VERSION'], text: 'tee path:VERSION' }]);
    const version = findings(report).find((f) => f.evidence['path'] === 'VERSION');
    expect(version).toMatchObject({ severity: 'info', evidence: { excused: true, excusedBy: 'tee path:VERSION', sha256After: sha256('1.0.1\n') } });
    // The same writer elsewhere is not excused.
    expect(findings(report).find((f) => f.evidence['path'] === 'README.md')).toMatchObject({ severity: 'high', evidence: { excused: false } });
  }, 120_000);

  it('disable-file-monitoring turns the sensor off, and the report says so', async () => {
    const workspace = join(tmpfs, 'disabled');
    makeRepo(workspace, SOURCE);
    const policy = join(base, 'disabled-policy.yml');
    writeFileSync(policy, 'egress-policy: block\ndisable-file-monitoring: true\n');
    const result = await execInHost(internet, ['--policy', policy, '--workspace', workspace], 'echo evil >> src/index.js; echo out > out.txt');
    const report = result.report!;
    expect(result.code, result.stderr).toBe(0);
    expect(report.policy.disableFileMonitoring).toBe(true);
    expect(fileEvents(report)).toEqual([]);
    expect(findings(report)).toEqual([]);
    expect(sensorNotes(report)).toEqual([expect.stringMatching(/^file monitoring is off: disable-file-monitoring is set \(policy-file:/)]);
  }, 120_000);

  it('without git, every file present at start is source', async () => {
    const workspace = join(tmpfs, 'plain');
    for (const [path, content] of Object.entries({ 'a.txt': 'a\n', 'lib/b.txt': 'b\n', 'node_modules/x/i.js': 'x\n' })) {
      mkdirSync(dirname(join(workspace, path)), { recursive: true });
      writeFileSync(join(workspace, path), content);
    }
    const result = await execInHost(internet, ['--workspace', workspace], 'echo changed > lib/b.txt; echo changed > node_modules/x/i.js');
    const report = result.report!;
    expect(sensorNotes(report)[0]).toMatch(/2 source files \(every file present; not a git work tree\)/);
    expect(findings(report).map((f) => f.evidence['path'])).toEqual(['lib/b.txt']);
  }, 120_000);

  it('with --workflow, every file event and finding names the step it happened in, counted changes too', async () => {
    const workspace = join(tmpfs, 'workflow');
    makeRepo(workspace, SOURCE);
    const workflow = join(base, 'ci.yml');
    writeFileSync(
      workflow,
      [
        'on: push',
        'jobs:',
        '  build:',
        '    runs-on: ubuntu-latest',
        '    steps:',
        '      - name: Build',
        '        run: mkdir -p dist && for i in $(seq 1 40); do echo $i > dist/a$i.js; done',
        '      - name: Sneaky',
        '        run: for i in $(seq 1 40); do echo $i > dist/b$i.js; done; echo "// x" >> src/index.js',
      ].join('\n') + '\n',
    );
    const reportPath = join(base, 'workflow-report.json');
    const run = await internet.runInHost(
      [...RUNWALL, 'exec', '--dns-upstream', internet.upstream.v4, '--report', reportPath, '--workspace', workspace, '--workflow', workflow, '--job', 'build'],
      { cwd: REPO, timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as RunReport;
    const steps = Object.fromEntries(eventsOf(report, 'step').filter((e) => e.action === 'begin').map((e) => [e.name, e.id]));
    const perStep = (step: string | undefined) =>
      fileEvents(report)
        .filter((e) => e.step === step && e.action === 'create' && e.path.startsWith('dist/'))
        .reduce((n, e) => n + (e.count ?? 1), 0);
    expect(perStep(steps['Build'])).toBe(40);
    expect(perStep(steps['Sneaky'])).toBe(40);
    expect(fileEvents(report).every((e) => e.step !== undefined)).toBe(true);
    const finding = findings(report).find((f) => f.evidence['path'] === 'src/index.js');
    expect(finding?.step).toBe(steps['Sneaky']);
    expect(finding?.evidence['step']).toBe(steps['Sneaky']);
  }, 180_000);

  it('an ordinary build (git, make, cc, npm ci of a local package) raises no source-tampered finding', async () => {
    const workspace = join(tmpfs, 'build');
    makeRepo(workspace, {
      'main.c': 'int main(void) { return 0; }\n',
      'Makefile': 'app: main.o\n\tcc -o app main.o\nmain.o: main.c\n\tcc -c main.c\n',
      'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { dep: 'file:dep' } }, null, 2) + '\n',
      'dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0' }) + '\n',
      'dep/index.js': 'module.exports = 1;\n',
      '.gitignore': 'node_modules/\n*.o\napp\n',
    });
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: workspace, stdio: 'ignore' });
    execFileSync('git', ['-C', workspace, 'add', 'package-lock.json']);
    execFileSync('git', ['-c', 'user.email=ci@example.test', '-c', 'user.name=ci', '-C', workspace, 'commit', '-qm', 'lock']);
    const result = await execInHost(
      internet,
      ['--workspace', workspace],
      'git status --short && git log --oneline -1 && make && ./app && npm ci --offline --no-audit --no-fund && git diff --exit-code',
      { timeoutMs: 120_000 },
    );
    const report = result.report!;
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(total(report, 'create', 'main.o')).toBe(1);
    expect(total(report, 'create', 'node_modules/')).toBeGreaterThan(0);
    expect(findings(report)).toEqual([]);
  }, 180_000);
});
