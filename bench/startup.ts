/**
 * How long runwall takes to get going: `runwall agent start` until it enforces
 * (its own figure, process start → enforcing, and the command's wall time), beside
 * a bare `node -e 0` (and `runwall --version`, the cost of loading the CLI alone); and `runwall exec -- true` beside `true` in fresh namespaces.
 * Runs alternate between the measured command and its baseline.
 */
import { startAgent } from './agent-run.js';
import { benchRow, type BenchRow } from './bench-row.js';
import { REPO, ZONE_UPSTREAM, type BenchEnv } from './bench-env.js';
import { runChecked } from './processes.js';
import { median } from './stats.js';

const ROUNDS = 3;
const MIB = 1024 * 1024;

export interface StartupBenchResult {
  readonly rows: readonly BenchRow[];
  /** RSS the agent reported right after start, idle (bytes), one per round. */
  readonly agentIdleRssBytes: readonly number[];
}

export async function runStartupBench(env: BenchEnv, log: (line: string) => void): Promise<StartupBenchResult> {
  const inHost = { netns: env.hostNs, cwd: REPO, timeoutMs: 30_000 };
  const bareNode: number[] = [];
  const cliVersion: number[] = [];
  const enforcing: number[] = [];
  const startWall: number[] = [];
  const stopWall: number[] = [];
  const idleRss: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`start-up: agent start/stop, round ${round + 1} of ${ROUNDS}`);
    bareNode.push((await runChecked([process.execPath, '-e', '0'], inHost)).wallMs);
    cliVersion.push((await runChecked([...env.runwall.argv, '--version'], inHost)).wallMs);
    const agent = await startAgent(env, { upstream: ZONE_UPSTREAM, allowed: 'allowed.test' });
    enforcing.push(agent.enforcingAfterMs);
    startWall.push(agent.startWallMs);
    idleRss.push(agent.rssBytes);
    stopWall.push(await agent.stop());
  }

  const plainTrue: number[] = [];
  const execTrue: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`start-up: runwall exec -- true, round ${round + 1} of ${ROUNDS}`);
    plainTrue.push((await runChecked(['unshare', '--net', '--pid', '--mount', '--fork', '--mount-proc', 'true'], inHost)).wallMs);
    execTrue.push(
      (
        await runChecked(
          [...env.runwall.argv, 'exec', '--dns-upstream', ZONE_UPSTREAM, '--egress-policy', 'block', '--allowed-endpoints', 'allowed.test', '--', 'true'],
          inHost,
        )
      ).wallMs,
    );
  }

  const node = median(bareNode);
  const startupGoal = { on: 'value', bound: 'at-most', limit: 300 } as const;
  const baselineNote = `baseline: a bare \`node -e 0\`; medians of ${ROUNDS}`;
  return {
    agentIdleRssBytes: idleRss,
    rows: [
      benchRow({
        name: 'cli: `runwall --version` vs `node -e 0`',
        value: median(cliVersion),
        unit: 'ms',
        baseline: node,
        note: 'what loading the CLI costs before any command runs (every command pays it)',
      }),
      benchRow({ name: 'agent: process start → enforcing (its enforcingAfterMs)', value: median(enforcing), unit: 'ms', baseline: node, goal: startupGoal, note: baselineNote }),
      benchRow({ name: 'agent: `runwall agent start` wall time', value: median(startWall), unit: 'ms', baseline: node, goal: startupGoal, note: 'returns once the agent enforces' }),
      benchRow({ name: 'agent: `runwall agent stop` wall time', value: median(stopWall), unit: 'ms', baseline: node, note: 'writes the run report' }),
      benchRow({ name: 'agent: RSS right after start, idle', value: median(idleRss) / MIB, unit: 'MiB', note: "the agent's own rssBytes" }),
      benchRow({
        name: 'exec: `runwall exec -- true` vs `true` in new namespaces',
        value: median(execTrue),
        unit: 'ms',
        baseline: median(plainTrue),
        note: `set-up + teardown overhead ${Math.round(median(execTrue) - median(plainTrue))} ms; baseline: unshare --net --pid --mount --fork true`,
      }),
    ],
  };
}
