// `runwall agent start` launches its daemon before the CLI's modules load (agent-launch.ts):
// which invocations do, where the daemon's log goes, and what its environment leaves out.
import { describe, expect, it } from 'vitest';
import { agentPaths } from '../../src/agent/index.js';
import { DEFAULT_AGENT_STATE_DIR, daemonEnvironment, execStartsL7, launchesDaemon, stateDirOf } from '../../src/cli/agent-launch.js';
import { AGENT_DAEMON_MALLOC_ENV } from '../../src/cli/memory-flags.js';

const argv = (...rest: string[]): string[] => ['/usr/bin/node', '/opt/runwall/dist/cli/main.js', ...rest];

describe('the early agent launch', () => {
  it('launches only for `agent start` run as a daemon, never for help or --foreground or other commands', () => {
    expect(launchesDaemon(argv('agent', 'start', '--egress-policy', 'block'))).toBe(true);
    expect(launchesDaemon(argv('agent', 'start'))).toBe(true);
    expect(launchesDaemon(argv('agent', 'start', '--foreground'))).toBe(false);
    expect(launchesDaemon(argv('agent', 'start', '--help'))).toBe(false);
    expect(launchesDaemon(argv('agent', 'start', '-h'))).toBe(false);
    expect(launchesDaemon(argv('agent', 'stop'))).toBe(false);
    expect(launchesDaemon(argv('exec', '--', 'agent', 'start'))).toBe(false);
    expect(launchesDaemon(argv())).toBe(false);
  });

  it('logs where the agent keeps its state: --state-dir, then RUNWALL_AGENT_DIR, then the default the agent uses', () => {
    expect(stateDirOf(argv('agent', 'start', '--state-dir', '/tmp/a'), {})).toBe('/tmp/a');
    expect(stateDirOf(argv('agent', 'start', '--state-dir=/tmp/b'), { RUNWALL_AGENT_DIR: '/tmp/env' })).toBe('/tmp/b');
    expect(stateDirOf(argv('agent', 'start'), { RUNWALL_AGENT_DIR: '/tmp/env' })).toBe('/tmp/env');
    expect(stateDirOf(argv('agent', 'start'), {})).toBe(DEFAULT_AGENT_STATE_DIR);
    // The daemon's own idea of the default (its control socket lives there): the two must agree.
    const saved = process.env['RUNWALL_AGENT_DIR'];
    delete process.env['RUNWALL_AGENT_DIR'];
    try {
      expect(agentPaths().stateDir).toBe(DEFAULT_AGENT_STATE_DIR);
    } finally {
      if (saved !== undefined) process.env['RUNWALL_AGENT_DIR'] = saved;
    }
  });

  it("starts the daemon without NODE_EXTRA_CA_CERTS (read at every Node start; the agent makes no TLS connection), with glibc's malloc settings and the rest of the caller's environment", () => {
    const env = daemonEnvironment({ PATH: '/usr/bin', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', RUNWALL_AGENT_DIR: '/tmp/x' });
    expect(env).toEqual({ ...AGENT_DAEMON_MALLOC_ENV, PATH: '/usr/bin', RUNWALL_AGENT_DIR: '/tmp/x' });
    // glibc's malloc settings come in, but a caller's own win.
    expect(daemonEnvironment({ MALLOC_ARENA_MAX: '8' })['MALLOC_ARENA_MAX']).toBe('8');
  });

  it("starts exec's L7 thread first thing, but not for exec's help or --l7 off (a job's own options are not exec's)", () => {
    expect(execStartsL7(argv('exec', '--egress-policy', 'block', '--', 'npm', 'ci'))).toBe(true);
    expect(execStartsL7(argv('exec', '--', 'tool', '--help'))).toBe(true);
    expect(execStartsL7(argv('exec', '--help'))).toBe(false);
    expect(execStartsL7(argv('exec', '--l7', 'off', '--', 'npm', 'ci'))).toBe(false);
    expect(execStartsL7(argv('exec', '--l7=off', '--', 'npm', 'ci'))).toBe(false);
    expect(execStartsL7(argv('exec', '--', 'tool', '--l7', 'off'))).toBe(true);
    expect(execStartsL7(argv('agent', 'start'))).toBe(false);
  });
});
