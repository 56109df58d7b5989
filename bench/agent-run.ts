/**
 * `runwall agent` in the bench's P-host, as a runner VM would run it: started with
 * `runwall agent start`, asked for its status, stopped with `runwall agent stop`.
 * Its resolver file and state are the bench's own, so the machine's are never touched.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchEnv } from './bench-env.js';
import { REPO } from './bench-env.js';
import { runChecked, sleep } from './processes.js';

/** Where the agent listens on loopback (AGENT_LOOPBACK_RESOLVER in src/agent). */
export const AGENT_RESOLVER = '127.0.0.153';

export interface AgentStatusFigures {
  readonly pid: number;
  readonly enforcingAfterMs: number;
  readonly rssBytes: number;
}

export interface RunningAgent extends AgentStatusFigures {
  /** Wall time of `runwall agent start` (it returns once the agent enforces). */
  readonly startWallMs: number;
  /** Stops it (`runwall agent stop`); resolves to that command's wall time. If that fails the agent is killed and cleaned up after, and the error thrown. */
  stop(): Promise<number>;
}

/** The fields of `runwall agent status` the bench reads, checked. */
export function parseAgentStatus(text: string): AgentStatusFigures {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new Error('agent status is not a JSON object');
  const { pid, enforcingAfterMs, rssBytes } = value as Record<string, unknown>;
  if (typeof pid !== 'number' || typeof enforcingAfterMs !== 'number' || typeof rssBytes !== 'number') {
    throw new Error(`agent status lacks pid/enforcingAfterMs/rssBytes: ${text.slice(0, 200)}`);
  }
  return { pid, enforcingAfterMs, rssBytes };
}

/** `processEnv`: the environment `runwall agent start` runs in (default: the bench's own). */
export async function startAgent(env: BenchEnv, options: { upstream: string; allowed: string; processEnv?: NodeJS.ProcessEnv }): Promise<RunningAgent> {
  const dir = mkdtempSync(join(env.dir, 'agent-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${options.upstream}\n`);
  const stateFlags = ['--state-dir', join(dir, 'state')];
  const flags = [...stateFlags, '--resolv-conf', resolvConf, '--docker-daemon-json', join(dir, 'no-docker', 'daemon.json')];
  const inHost = { netns: env.hostNs, cwd: REPO, timeoutMs: 30_000 };
  const stop = async (): Promise<number> => (await runChecked([...env.runwall.argv, 'agent', 'stop', '--report', join(dir, 'report.json'), ...stateFlags], inHost)).wallMs;
  let started;
  try {
    started = await runChecked(
      [...env.runwall.argv, 'agent', 'start', '--egress-policy', 'block', '--allowed-endpoints', options.allowed, '--dns-upstream', options.upstream, ...flags],
      options.processEnv ? { ...inHost, env: options.processEnv } : inHost,
    );
  } catch (error) {
    // A block-mode agent that fails to start leaves P-host blocked (fail closed): lift that, or every later section hangs.
    await stop().catch(() => undefined);
    throw error;
  }
  let status: AgentStatusFigures;
  try {
    status = parseAgentStatus((await runChecked([...env.runwall.argv, 'agent', 'status', ...stateFlags], inHost)).stdout);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  const pid = status.pid;
  /** A stop that fails may leave the agent running, its rules in force: kill it and let `agent stop` clean up after it. */
  const stopOrKill = async (): Promise<number> => {
    try {
      return await stop();
    } catch (error) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await sleep(200);
      await stop().catch(() => undefined);
      throw error;
    }
  };
  return { ...status, startWallMs: started.wallMs, stop: stopOrKill };
}
