/**
 * How long runwall takes to get going, runs alternating with their baselines:
 *   - agent start: `runwall agent start` until it enforces (the agent's own figure,
 *     process start → enforcing, and the command's wall time) beside a bare
 *     `node -e 0`, and `runwall --version` (what loading the CLI alone costs);
 *   - exec start: `runwall exec -- true` beside `true` in fresh namespaces.
 */
import { startAgent } from './agent-run.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { REPO, ZONE_UPSTREAM, type BenchEnv } from './bench-env.js';
import { cleanEnv, runChecked } from './processes.js';
import { median } from './stats.js';

const ROUNDS = 3;
const MIB = 1024 * 1024;

function inHost(env: BenchEnv): { netns: string; cwd: string; timeoutMs: number } {
  return { netns: env.hostNs, cwd: REPO, timeoutMs: 30_000 };
}

export async function runAgentStartBench(env: BenchEnv, log: (line: string) => void): Promise<readonly BenchRow[]> {
  const bareNode: number[] = [];
  const cliVersion: number[] = [];
  const enforcing: number[] = [];
  const startWall: number[] = [];
  const stopWall: number[] = [];
  const idleRss: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`agent start: round ${round + 1} of ${ROUNDS} (node -e 0, runwall --version, agent start/stop)`);
    bareNode.push((await runChecked([process.execPath, '-e', '0'], inHost(env))).wallMs);
    cliVersion.push((await runChecked([...env.runwall.argv, '--version'], inHost(env))).wallMs);
    const agent = await startAgent(env, { upstream: ZONE_UPSTREAM, allowed: 'allowed.test' });
    enforcing.push(agent.enforcingAfterMs);
    startWall.push(agent.startWallMs);
    idleRss.push(agent.rssBytes);
    stopWall.push(await agent.stop());
  }
  const node = median(bareNode);
  const goal = { on: 'value', bound: 'at-most', limit: 300 } as const;
  const withoutCa = process.env['NODE_EXTRA_CA_CERTS'] ? await startWithoutExtraCaCerts(env, log) : [];
  return [
    benchRow({
      name: 'cli: `runwall --version` vs `node -e 0`',
      value: median(cliVersion),
      unit: 'ms',
      baseline: node,
      note: `what loading the CLI costs before any command runs; medians of ${ROUNDS}`,
    }),
    benchRow({ name: 'agent: process start → enforcing (its enforcingAfterMs)', value: median(enforcing), unit: 'ms', baseline: node, goal, note: 'baseline: a bare `node -e 0`' }),
    benchRow({ name: 'agent: `runwall agent start` wall time', value: median(startWall), unit: 'ms', baseline: node, goal, note: 'returns once the agent enforces' }),
    ...withoutCa,
    benchRow({ name: 'agent: `runwall agent stop` wall time', value: median(stopWall), unit: 'ms', baseline: node, note: 'writes the run report' }),
    benchRow({ name: 'rss: runwall agent right after start, idle', value: median(idleRss) / MIB, unit: 'MiB', note: "the agent's own rssBytes" }),
  ];
}

/**
 * Where the machine sets NODE_EXTRA_CA_CERTS (this kind does, to the whole system bundle), every
 * Node process parses that file as it starts: 35-70 ms of the command's own start. The agent's
 * daemon runs without it already; this row shows `agent start` as it is where it is not set.
 */
async function startWithoutExtraCaCerts(env: BenchEnv, log: (line: string) => void): Promise<BenchRow[]> {
  const processEnv = cleanEnv();
  delete processEnv['NODE_EXTRA_CA_CERTS'];
  const bareNode: number[] = [];
  const startWall: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`agent start without NODE_EXTRA_CA_CERTS: round ${round + 1} of ${ROUNDS}`);
    bareNode.push((await runChecked([process.execPath, '-e', '0'], { ...inHost(env), env: processEnv })).wallMs);
    const agent = await startAgent(env, { upstream: ZONE_UPSTREAM, allowed: 'allowed.test', processEnv });
    startWall.push(agent.startWallMs);
    await agent.stop();
  }
  return [
    benchRow({
      name: 'agent: `runwall agent start` wall time, NODE_EXTRA_CA_CERTS unset',
      value: median(startWall),
      unit: 'ms',
      baseline: median(bareNode),
      goal: { on: 'value', bound: 'at-most', limit: 300 },
      note: 'as on a machine that does not set it (this one does: every Node start parses the CA file); baseline: `node -e 0` likewise',
    }),
  ];
}

export async function runExecStartBench(env: BenchEnv, log: (line: string) => void): Promise<readonly BenchRow[]> {
  const plainTrue: number[] = [];
  const execTrue: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`exec start: runwall exec -- true, round ${round + 1} of ${ROUNDS}`);
    plainTrue.push((await runChecked(['unshare', '--net', '--pid', '--mount', '--fork', '--mount-proc', 'true'], inHost(env))).wallMs);
    const exec = [...env.runwall.argv, 'exec', '--dns-upstream', ZONE_UPSTREAM, '--egress-policy', 'block', '--allowed-endpoints', 'allowed.test', '--', 'true'];
    execTrue.push((await runChecked(exec, inHost(env))).wallMs);
  }
  const overhead = Math.round(median(execTrue) - median(plainTrue));
  return [
    benchRow({
      name: 'exec: `runwall exec -- true` vs `true` in new namespaces',
      value: median(execTrue),
      unit: 'ms',
      baseline: median(plainTrue),
      note: `set-up + teardown overhead ${overhead} ms; baseline: unshare --net --pid --mount --fork true; medians of ${ROUNDS}`,
    }),
  ];
}
