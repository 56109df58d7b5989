import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  cancelJob,
  completeStep,
  jobExitCode,
  parseFileCommands,
  parsePathFile,
  parseWorkflow,
  planJob,
  prepareStep,
  shellCommand,
  skipStep,
  startJob,
  type JobPlan,
  type JobState,
  type LocalRunner,
  type RunAction,
  type StepAction,
  type StepFiles,
} from '../../src/policy/index.js';
import { isDeepFrozen } from './helpers.js';

const RUNNER: LocalRunner = { workspace: '/work/repo', temp: '/tmp/rt', arch: 'X64', bashAvailable: true, baseEnv: { PATH: '/usr/bin:/bin', HOME: '/root' } };
const FILES: StepFiles = { env: '/tmp/rt/env', path: '/tmp/rt/path', output: '/tmp/rt/output', summary: '/tmp/rt/summary', state: '/tmp/rt/state' };

interface Ran {
  readonly actions: StepAction[];
  readonly state: JobState;
}

/** Runs a plan to the end with each run step's exit status and file output from `exits` (by step id). */
function runPlan(
  plan: JobPlan,
  exits: Record<string, { code?: number; env?: string; path?: string; output?: string }> = {},
  options: { cancelBefore?: string; runner?: LocalRunner } = {},
): Ran {
  const runner = options.runner ?? RUNNER;
  let { state } = startJob(plan, runner);
  const actions: StepAction[] = [];
  plan.steps.forEach((step, index) => {
    if (options.cancelBefore === step.id) state = cancelJob(state);
    const action = prepareStep(plan, state, index, runner, FILES);
    actions.push(action);
    if (action.kind === 'skip') {
      state = skipStep(state, action).state;
      return;
    }
    const exit = exits[step.id] ?? {};
    state = completeStep(state, action, {
      exitCode: exit.code ?? 0,
      cancelled: false,
      timedOut: false,
      files: { env: exit.env ?? '', path: exit.path ?? '', output: exit.output ?? '' },
    }).state;
  });
  return { actions, state };
}

function plan(yaml: string, job = 'j'): JobPlan {
  return planJob(parseWorkflow(yaml, 'w.yml'), job);
}

const FOUR_STEPS = `on: push
jobs:
  j:
    steps:
      - id: first
        run: curl -sf http://allowed.test/
      - uses: actions/setup-node@v4
      - id: flaky
        run: exit 3
        continue-on-error: true
      - id: on-failure
        if: failure()
        run: echo only on failure
      - id: last
        if: always()
        run: echo always
`;

describe('running a job plan', () => {
  it('the issue fixture: uses skipped, a tolerated failure, if: failure() not run, if: always() run; the job succeeds', () => {
    const { actions, state } = runPlan(plan(FOUR_STEPS), { flaky: { code: 3 } });
    expect(actions.map((action) => [action.step.id, action.kind])).toEqual([
      ['first', 'run'],
      ['step-2', 'skip'],
      ['flaky', 'run'],
      ['on-failure', 'skip'],
      ['last', 'run'],
    ]);
    expect(state.records.map((r) => [r.id, r.outcome, r.conclusion])).toEqual([
      ['first', 'success', 'success'],
      ['step-2', 'skipped', 'skipped'],
      ['flaky', 'failure', 'success'],
      ['on-failure', 'skipped', 'skipped'],
      ['last', 'success', 'success'],
    ]);
    expect(state.records[2]?.notes).toContain('continue-on-error: the failure does not fail the job');
    expect(state.records[3]?.reason).toBe("its condition 'failure()' is false (job status: success)");
    expect(state.status).toBe('success');
    expect(jobExitCode(state)).toBe(0);
    expect(isDeepFrozen(state)).toBe(true);
  });

  it('a failure without continue-on-error skips ordinary steps, runs failure() and always() steps, and is the exit status', () => {
    const yaml = FOUR_STEPS.replace('        continue-on-error: true\n', '').replace('      - id: last', '      - id: plain\n        run: echo plain\n      - id: last');
    const { actions, state } = runPlan(plan(yaml), { flaky: { code: 3 } });
    expect(actions.map((action) => [action.step.id, action.kind])).toEqual([
      ['first', 'run'],
      ['step-2', 'skip'],
      ['flaky', 'run'],
      ['on-failure', 'run'],
      ['plain', 'skip'],
      ['last', 'run'],
    ]);
    expect(state.status).toBe('failure');
    expect(jobExitCode(state)).toBe(3);
  });

  it('after cancellation only always() and cancelled() steps run, and the job exits 130', () => {
    const yaml = `jobs:\n  j:\n    steps:\n      - { id: a, run: x }\n      - { id: b, run: y }\n      - { id: c, if: cancelled(), run: z }\n      - { id: d, if: always(), run: w }\n      - { id: e, if: failure(), run: v }\n`;
    const { actions, state } = runPlan(plan(yaml), {}, { cancelBefore: 'b' });
    expect(actions.map((action) => action.kind)).toEqual(['run', 'skip', 'run', 'run', 'skip']);
    expect(jobExitCode(state)).toBe(130);
  });

  it('environment: workflow < job < GITHUB_ENV < step, runner variables set, expressions evaluated', () => {
    const yaml = `env:
  LEVEL: workflow
  W: w
jobs:
  j:
    env:
      LEVEL: job
      J: \${{ env.W }}-j
    steps:
      - id: setter
        run: echo "FROM_FILE=yes" >> "$GITHUB_ENV"
      - id: reader
        env:
          LEVEL: step
          S: \${{ env.FROM_FILE }}
        run: echo \${{ env.LEVEL }} \${{ runner.os }} \${{ github.workspace }}
`;
    const { actions } = runPlan(plan(yaml), { setter: { env: 'FROM_FILE=yes\nLEVEL=from-file\n' } });
    const reader = actions[1] as RunAction;
    expect(reader.env).toMatchObject({
      LEVEL: 'step',
      W: 'w',
      J: 'w-j',
      FROM_FILE: 'yes',
      S: 'yes',
      HOME: '/root',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: '/work/repo',
      GITHUB_JOB: 'j',
      GITHUB_ACTION: 'reader',
      GITHUB_ENV: FILES.env,
      GITHUB_OUTPUT: FILES.output,
      RUNNER_TEMP: '/tmp/rt',
      RUNNER_OS: 'Linux',
    });
    expect(reader.script).toBe('echo step Linux /work/repo');
    const setter = actions[0] as RunAction;
    expect(setter.env['LEVEL']).toBe('job');
  });

  it('GITHUB_PATH puts the last added directory first; GITHUB_ENV may not set NODE_OPTIONS', () => {
    const yaml = `jobs:\n  j:\n    steps:\n      - { id: a, run: x }\n      - { id: b, run: y }\n      - { id: c, run: z }\n`;
    const { actions, state } = runPlan(plan(yaml), { a: { path: '/opt/one\n', env: 'NODE_OPTIONS=--require=/tmp/evil.js\n' }, b: { path: '/opt/two\n\n' } });
    expect((actions[2] as RunAction).env['PATH']).toBe('/opt/two:/opt/one:/usr/bin:/bin');
    expect((actions[1] as RunAction).env['NODE_OPTIONS']).toBeUndefined();
    expect(state.records[0]?.notes).toContain('GITHUB_ENV may not set NODE_OPTIONS; ignored');
  });

  it('step outputs feed later conditions and scripts', () => {
    const yaml = `jobs:
  j:
    steps:
      - id: version
        run: echo "v=1.2.3" >> "$GITHUB_OUTPUT"
      - if: steps.version.outputs.v == '1.2.3'
        run: echo "\${{ steps.version.outputs.v }} \${{ steps.version.outcome }}"
      - if: steps.version.outputs.v == '9'
        run: echo never
`;
    const { actions } = runPlan(plan(yaml), { version: { output: 'v=1.2.3\nnotes<<EOF\nline 1\nline 2\nEOF\n' } });
    expect(actions.map((action) => action.kind)).toEqual(['run', 'run', 'skip']);
    expect((actions[1] as RunAction).script).toBe('echo "1.2.3 success"');
  });

  it('working directory: workspace by default, relative to it, or absolute', () => {
    const yaml = `defaults:\n  run:\n    working-directory: sub\njobs:\n  j:\n    steps:\n      - run: a\n      - run: b\n        working-directory: ../other/./x\n      - run: c\n        working-directory: /abs/dir\n  k:\n    steps:\n      - run: d\n`;
    expect(runPlan(plan(yaml)).actions.map((action) => (action as RunAction).workingDirectory)).toEqual(['/work/repo/sub', '/work/other/x', '/abs/dir']);
    expect((runPlan(plan(yaml.replace(/defaults:\n  run:\n    working-directory: sub\n/, ''), 'k')).actions[0] as RunAction).workingDirectory).toBe('/work/repo');
  });

  it('what cannot be evaluated here skips the step with the reason; secrets read as empty, with a note', () => {
    const yaml = `jobs:
  j:
    steps:
      - if: github.event_name == 'push'
        run: echo push
      - run: echo \${{ hashFiles('package-lock.json') }}
      - env:
          TOKEN: \${{ secrets.NPM_TOKEN }}
        run: npm publish
`;
    const { actions, state } = runPlan(plan(yaml));
    expect(actions[0]).toMatchObject({ kind: 'skip', reason: 'it reads github.event_name is not known when a workflow runs locally' });
    expect(actions[1]).toMatchObject({ kind: 'skip', reason: 'it reads hashFiles() reads the workspace and is not evaluated locally' });
    expect(actions[2]).toMatchObject({ kind: 'run', env: expect.objectContaining({ TOKEN: '' }) });
    expect(state.records[2]?.notes).toEqual(["secrets.NPM_TOKEN is empty: runwall exec does not have the repository's secrets"]);
  });

  it("the job's own if: false skips every step with that reason", () => {
    const { actions } = runPlan(plan("jobs:\n  j:\n    if: ${{ false }}\n    steps:\n      - run: a\n      - run: b\n"));
    expect(actions.map((action) => action.kind === 'skip' && action.reason)).toEqual(["the job's condition '${{ false }}' is false", "the job's condition '${{ false }}' is false"]);
  });

  it('continue-on-error and timeout-minutes may be expressions', () => {
    const yaml = `env:\n  TOLERATE: 'true'\njobs:\n  j:\n    steps:\n      - run: exit 1\n        continue-on-error: \${{ env.TOLERATE == 'true' }}\n        timeout-minutes: \${{ env.TOLERATE == 'true' && 2 || 1 }}\n`;
    const { actions, state } = runPlan(plan(yaml), { 'step-1': { code: 1 } });
    expect(actions[0]).toMatchObject({ continueOnError: true, timeoutMs: 120_000 });
    expect(state.status).toBe('success');
  });

  it('a timed-out step fails; a malformed GITHUB_OUTPUT fails the step with the reason', () => {
    const p = plan('jobs:\n  j:\n    steps:\n      - run: sleep 100\n        timeout-minutes: 0.5\n      - run: echo\n');
    const { state } = startJob(p, RUNNER);
    const first = prepareStep(p, state, 0, RUNNER, FILES) as RunAction;
    expect(first.timeoutMs).toBe(30_000);
    const timedOut = completeStep(state, first, { exitCode: null, cancelled: false, timedOut: true, files: { env: '', path: '', output: '' } });
    expect(timedOut.record).toMatchObject({ outcome: 'failure', reason: 'it ran longer than its timeout of 0.5 minutes' });
    expect(jobExitCode(timedOut.state)).toBe(1);
    const malformed = completeStep(state, first, { exitCode: 0, cancelled: false, timedOut: false, files: { env: '', path: '', output: 'x<<EOF\nnever closed\n' } });
    expect(malformed.record).toMatchObject({ outcome: 'failure', reason: "GITHUB_OUTPUT: the value of 'x' is never closed by its delimiter 'EOF'" });
  });
});

describe('shells', () => {
  it('run scripts as the Actions runner does on Linux', () => {
    const argv = (shell: string | null, bash = true) => {
      const command = shellCommand(shell, bash);
      return 'unsupported' in command ? command.unsupported : `${command.argv.join(' ')} (${command.extension})`;
    };
    expect(argv(null)).toBe('bash -e {0} (.sh)');
    expect(argv(null, false)).toBe('sh -e {0} (.sh)');
    expect(argv('bash')).toBe('bash --noprofile --norc -e -o pipefail {0} (.sh)');
    expect(argv('sh')).toBe('sh -e {0} (.sh)');
    expect(argv('python')).toBe('python {0} (.py)');
    expect(argv('pwsh')).toBe("pwsh -command . '{0}' (.ps1)");
    expect(argv('perl -w {0}')).toBe('perl -w {0} ()');
    expect(argv('cmd')).toBe("shell 'cmd' exists only on Windows runners");
  });
});

describe('file commands', () => {
  it('read NAME=value and NAME<<DELIMITER entries in order', () => {
    expect(parseFileCommands('A=1\nB=x=y\r\n\nC<<EOF\nline 1\n\nline 3\nEOF\nD=\n', 'GITHUB_ENV')).toEqual({
      entries: [
        ['A', '1'],
        ['B', 'x=y'],
        ['C', 'line 1\n\nline 3'],
        ['D', ''],
      ],
      errors: [],
    });
  });

  it('report what they cannot read', () => {
    expect(parseFileCommands('just text\nOK=1\n', 'GITHUB_OUTPUT').errors).toEqual(["GITHUB_OUTPUT line 1: 'just text' is neither NAME=value nor NAME<<DELIMITER"]);
  });

  it('GITHUB_PATH: one directory a line', () => {
    expect(parsePathFile('/a\n  /b  \n\n')).toEqual(['/a', '/b']);
  });

  it('any NAME=value list written out reads back the same', () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/);
    const single = fc.string({ maxLength: 20 }).filter((v) => !/[\r\n]/.test(v));
    const multi = fc.array(single.filter((v) => v !== 'EOF_X'), { maxLength: 4 }).map((lines) => lines.join('\n'));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.oneof(single, multi)), { maxLength: 10 }), (entries) => {
        const text = entries.map(([k, v]) => (v.includes('\n') || v.includes('<<') ? `${k}<<EOF_X\n${v}\nEOF_X` : `${k}=${v}`)).join('\n') + '\n';
        expect(parseFileCommands(text, 'GITHUB_ENV')).toEqual({ entries, errors: [] });
      }),
    );
  });
});

describe('job semantics (model-based)', () => {
  const stepArb = fc.record({
    condition: fc.constantFrom(null, 'success()', 'failure()', 'always()', 'cancelled()'),
    tolerate: fc.boolean(),
    exit: fc.constantFrom(0, 0, 1, 2),
    uses: fc.boolean(),
  });

  it('runs a step exactly when GitHub would, and the job fails exactly when a run step failed untolerated', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 10 }), (steps) => {
        const yaml = stringify({
          jobs: {
            j: {
              steps: steps.map((step, i) => ({
                id: `s${i}`,
                ...(step.condition ? { if: step.condition } : {}),
                ...(step.uses ? { uses: 'org/action@v1' } : { run: `exit ${step.exit}` }),
                'continue-on-error': step.tolerate,
              })),
            },
          },
        });
        const exits = Object.fromEntries(steps.map((step, i) => [`s${i}`, { code: step.exit }]));
        const { actions, state } = runPlan(plan(yaml), exits);
        let failed = false;
        let firstFailure: number | null = null;
        steps.forEach((step, i) => {
          const wanted = step.condition === 'always()' ? true : step.condition === 'failure()' ? failed : step.condition === 'cancelled()' ? false : !failed;
          expect(actions[i]?.kind).toBe(wanted && !step.uses ? 'run' : 'skip');
          if (wanted && !step.uses && step.exit !== 0 && !step.tolerate && !failed) {
            failed = true;
            firstFailure = step.exit;
          }
        });
        expect(state.status).toBe(failed ? 'failure' : 'success');
        expect(jobExitCode(state)).toBe(firstFailure ?? 0);
      }),
      { numRuns: 300 },
    );
  });
});
