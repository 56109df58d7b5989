import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseWorkflow, planJob } from '../../src/policy/index.js';
import { expectRunwallError, isDeepFrozen } from './helpers.js';

const WORKFLOW = `name: CI
on: [push, pull_request]
permissions: { contents: read }
env:
  GREETING: hello
  COUNT: 3
  FLAG: true
  NOTHING:
defaults:
  run:
    shell: sh
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: npm run lint
  build:
    name: Build and test
    runs-on: ubuntu-latest
    needs: lint
    timeout-minutes: 10
    env:
      JOB_LEVEL: job
    defaults:
      run:
        working-directory: app
    services:
      postgres:
        image: postgres:16
    steps:
      - uses: actions/checkout@v4
        with: { fetch-depth: 0 }
      - name: Install
        id: install
        run: |
          npm ci
          npm run build
        shell: bash
        env:
          STEP_LEVEL: step
      - run: npm test
        continue-on-error: true
        timeout-minutes: 5
        working-directory: /abs
      - name: Report failure
        if: failure()
        run: echo failed
      - uses: ./.github/actions/local
      - uses: docker://alpine:3
`;

describe('parseWorkflow', () => {
  it('reads a workflow into a frozen model: env as text, defaults, jobs and steps in order', () => {
    const workflow = parseWorkflow(WORKFLOW, 'ci.yml');
    expect(workflow.name).toBe('CI');
    expect(workflow.env).toEqual([
      ['GREETING', 'hello'],
      ['COUNT', '3'],
      ['FLAG', 'true'],
      ['NOTHING', ''],
    ]);
    expect(workflow.defaults).toEqual({ shell: 'sh', workingDirectory: null });
    expect(workflow.jobs.map((job) => job.id)).toEqual(['lint', 'build']);
    const build = workflow.jobs[1]!;
    expect(build).toMatchObject({ name: 'Build and test', needs: ['lint'], services: ['postgres'], timeoutMinutes: 10, defaults: { shell: null, workingDirectory: 'app' } });
    expect(build.steps.map((step) => [step.id, step.run === null ? step.uses : 'run'])).toEqual([
      [null, 'actions/checkout@v4'],
      ['install', 'run'],
      [null, 'run'],
      [null, 'run'],
      [null, './.github/actions/local'],
      [null, 'docker://alpine:3'],
    ]);
    expect(build.steps[1]).toMatchObject({ name: 'Install', shell: 'bash', env: [['STEP_LEVEL', 'step']], line: 33 });
    expect(build.steps[2]).toMatchObject({ continueOnError: true, timeoutMinutes: 5, workingDirectory: '/abs' });
    expect(isDeepFrozen(workflow)).toBe(true);
  });

  it.each([
    ['not YAML', 'jobs: [\n', /^w\.yml:2:1: not valid YAML/],
    ['empty', '', /^w\.yml: is empty/],
    ['no jobs', 'name: x\non: push\n', /^w\.yml:1: has no `jobs:`/],
    ['unknown top-level key', 'on: push\njob:\n  a: {}\n', /^w\.yml:2: unknown key 'job' in the workflow; known keys: name, run-name, on/],
    ['unknown job key', 'jobs:\n  a:\n    runs-on: x\n    step: []\n', /^w\.yml:4: unknown key 'step' in jobs\.a/],
    ['unknown step key', 'jobs:\n  a:\n    steps:\n      - run: x\n        sell: bash\n', /^w\.yml:5: unknown key 'sell' in jobs\.a\.steps\[0\]/],
    ['run and uses', 'jobs:\n  a:\n    steps:\n      - run: x\n        uses: y@v1\n', /^w\.yml:4: jobs\.a\.steps\[0\] has both 'run' and 'uses'/],
    ['neither run nor uses', 'jobs:\n  a:\n    steps:\n      - name: x\n', /^w\.yml:4: jobs\.a\.steps\[0\] has neither 'run' nor 'uses'/],
    ['steps not a list', 'jobs:\n  a:\n    steps: run\n', /^w\.yml:3: jobs\.a\.steps must be a list, not "run"/],
    ['no steps', 'jobs:\n  a:\n    runs-on: x\n', /^w\.yml:3: jobs\.a has no 'steps'/],
    ['duplicate step id', 'jobs:\n  a:\n    steps:\n      - { id: s, run: x }\n      - { id: s, run: y }\n', /^w\.yml:5: jobs\.a\.steps\[1\] repeats the id 's' of steps\[0\]/],
    ['bad step id', 'jobs:\n  a:\n    steps:\n      - { id: 1abc, run: x }\n', /must start with a letter/],
    ['env not a mapping', 'jobs:\n  a:\n    env: [x]\n    steps:\n      - run: x\n', /^w\.yml:3: jobs\.a\.env must be a mapping, not a list/],
    ['bad env name', 'env:\n  BAD-NAME: 1\njobs:\n  a:\n    steps:\n      - run: x\n', /'BAD-NAME' is not a valid environment variable name/],
    ['numeric continue-on-error', 'jobs:\n  a:\n    steps:\n      - run: x\n        continue-on-error: 1\n', /continue-on-error must be true, false or an expression/],
    ['duplicate key', 'jobs:\n  a:\n    steps:\n      - run: x\n  a:\n    steps:\n      - run: y\n', /not valid YAML/],
  ])('%s is RW_WORKFLOW_INVALID naming file and line', (_name, text, message) => {
    const error = expectRunwallError(() => parseWorkflow(text, 'w.yml'), 'RW_WORKFLOW_INVALID');
    expect(error.message).toMatch(message);
  });
});

describe('planJob', () => {
  const workflow = parseWorkflow(WORKFLOW, 'ci.yml');

  it('gives each step a unique id, a display name, its effective shell and working directory', () => {
    const plan = planJob(workflow, 'build');
    expect(plan.job).toMatchObject({ id: 'build', name: 'Build and test', timeoutMinutes: 10, hasNeeds: true });
    expect(plan.steps.map((step) => [step.id, step.nameText, step.shell])).toEqual([
      ['step-1', 'Run actions/checkout@v4', 'sh'],
      ['install', 'Install', 'bash'],
      ['step-3', 'Run npm test', 'sh'],
      ['step-4', 'Report failure', 'sh'],
      ['step-5', 'Run ./.github/actions/local', 'sh'],
      ['step-6', 'Run docker://alpine:3', 'sh'],
    ]);
    expect(plan.steps[1]?.workingDirectory).toEqual(['app']);
    expect(plan.steps[2]?.workingDirectory).toEqual(['/abs']);
    expect(plan.steps[2]?.continueOnError).toBe(true);
    expect(plan.steps[3]?.conditionText).toBe('failure()');
    expect(plan.steps[1]?.conditionText).toBe('success()');
    expect(plan.env.workflow.map(([key]) => key)).toEqual(['GREETING', 'COUNT', 'FLAG', 'NOTHING']);
    expect(plan.env.job).toEqual([['JOB_LEVEL', ['job']]]);
    expect(isDeepFrozen(plan)).toBe(true);
  });

  it('says why a step can never run here, and what the job as a whole leaves out', () => {
    const plan = planJob(workflow, 'build');
    expect(plan.steps.map((step) => step.cannotRun)).toEqual([
      "'actions/checkout@v4' is a remote action; runwall exec runs only run: steps (nothing is downloaded)",
      null,
      null,
      null,
      "'./.github/actions/local' is a local action; runwall exec runs only run: steps",
      "'docker://alpine:3' is a Docker action; runwall exec runs only run: steps",
    ]);
    expect(plan.notes).toEqual(['service containers are not started: postgres', 'jobs this job needs are not run: lint (their outputs are not known)']);
  });

  it('a job in a container runs none of its steps here', () => {
    const plan = planJob(parseWorkflow('jobs:\n  a:\n    container: node:20\n    steps:\n      - run: npm ci\n', 'c.yml'), 'a');
    expect(plan.steps[0]?.cannotRun).toBe("the job runs its steps in container 'node:20'; runwall exec runs steps on this machine only");
  });

  it("a step's own id never collides with a generated one", () => {
    const plan = planJob(parseWorkflow('jobs:\n  a:\n    steps:\n      - run: one\n      - id: step-1\n        run: two\n', 'c.yml'), 'a');
    expect(plan.steps.map((step) => step.id)).toEqual(['step-1-2', 'step-1']);
  });

  it('an unknown job is RW_WORKFLOW_JOB_UNKNOWN listing the jobs; a reusable-workflow call is RW_WORKFLOW_UNSUPPORTED', () => {
    expect(expectRunwallError(() => planJob(workflow, 'deploy'), 'RW_WORKFLOW_JOB_UNKNOWN').message).toBe("ci.yml has no job 'deploy'; its jobs: lint, build");
    const called = parseWorkflow('jobs:\n  call:\n    uses: org/repo/.github/workflows/w.yml@v1\n', 'r.yml');
    expect(expectRunwallError(() => planJob(called, 'call'), 'RW_WORKFLOW_UNSUPPORTED').message).toMatch(/calls the reusable workflow 'org\/repo/);
  });

  it('an expression that does not parse is RW_WORKFLOW_INVALID at its step', () => {
    const broken = parseWorkflow('jobs:\n  a:\n    steps:\n      - run: ok\n      - run: echo ${{ env.X ==  }}\n', 'b.yml');
    expect(expectRunwallError(() => planJob(broken, 'a'), 'RW_WORKFLOW_INVALID').message).toMatch(/^b\.yml:5: jobs\.a\.steps\[1\]\.run: unexpected end of expression/);
    const badIf = parseWorkflow('jobs:\n  a:\n    steps:\n      - run: ok\n        if: succes()\n', 'b.yml');
    expect(expectRunwallError(() => planJob(badIf, 'a'), 'RW_WORKFLOW_INVALID').message).toMatch(/unknown function 'succes'/);
  });
});

describe('workflow properties', () => {
  const stepArb = fc.record(
    {
      id: fc.option(fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/), { nil: undefined }),
      name: fc.option(fc.string({ maxLength: 12 }).filter((s) => !s.includes('${{')), { nil: undefined }),
      kind: fc.constantFrom('run', 'uses'),
      body: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('${{') && s.trim() !== ''),
      env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,6}$/), fc.oneof(fc.string({ maxLength: 8 }).filter((s) => !s.includes('${{')), fc.integer(), fc.boolean())),
      continueOnError: fc.boolean(),
    },
    { requiredKeys: ['kind', 'body', 'env', 'continueOnError'] },
  );
  const jobArb = fc.array(stepArb, { minLength: 1, maxLength: 12 }).map((steps) => {
    const seen = new Set<string>();
    return steps.map((step) => {
      if (step.id === undefined || seen.has(step.id)) return { ...step, id: undefined };
      seen.add(step.id);
      return step;
    });
  });

  it('a workflow written with a YAML library reads back to the same steps, and its plan has unique ids in order', () => {
    fc.assert(
      fc.property(jobArb, (steps) => {
        const document = {
          on: 'push',
          jobs: {
            j: {
              'runs-on': 'ubuntu-latest',
              steps: steps.map((step) => ({
                ...(step.id !== undefined ? { id: step.id } : {}),
                ...(step.name !== undefined ? { name: step.name } : {}),
                [step.kind]: step.body,
                ...(Object.keys(step.env).length > 0 ? { env: step.env } : {}),
                'continue-on-error': step.continueOnError,
              })),
            },
          },
        };
        const workflow = parseWorkflow(stringify(document), 'p.yml');
        const job = workflow.jobs[0]!;
        expect(job.steps).toHaveLength(steps.length);
        job.steps.forEach((parsed, i) => {
          const step = steps[i]!;
          expect(parsed.id).toBe(step.id ?? null);
          expect(parsed.name).toBe(step.name ?? null);
          expect(step.kind === 'run' ? parsed.run : parsed.uses).toBe(step.body);
          expect(parsed.env).toEqual(Object.entries(step.env).map(([k, v]) => [k, String(v)]));
          expect(parsed.continueOnError).toBe(step.continueOnError);
        });
        const plan = planJob(workflow, 'j');
        const ids = plan.steps.map((step) => step.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(plan.steps.map((step) => step.index)).toEqual(steps.map((_, i) => i));
        expect(plan.steps.map((step) => step.cannotRun === null)).toEqual(steps.map((step) => step.kind === 'run'));
      }),
      { numRuns: 100 },
    );
  });

  it('any text is either a workflow or RW_WORKFLOW_INVALID, never another error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseWorkflow(text, 'f.yml');
        } catch (error) {
          expect((error as { code?: string }).code).toBe('RW_WORKFLOW_INVALID');
        }
      }),
      { numRuns: 500 },
    );
  });
});
