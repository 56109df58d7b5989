/** `runwall agent start|status|stop`: the engine for the whole machine, driven over its control socket. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  agentPaths,
  controlRequest,
  controlSocketPath,
  Nftables,
  recoverDeadAgent,
  runAgent,
  upstreamFromResolvConf,
  type AgentPaths,
  type AgentStatus,
} from '../agent/index.js';
import { RunwallError, type RunSummary } from '../protocol/index.js';
import { parseGrace, parseL7, policyFromFlags, type ExecFlags } from './exec-command.js';
import { AGENT_DAEMON_NODE_OPTIONS } from './memory-flags.js';

interface AgentFlags extends ExecFlags {
  readonly foreground?: boolean;
  readonly stateDir?: string;
  readonly resolvConf?: string;
  readonly dockerDaemonJson?: string;
}

function pathsFrom(flags: AgentFlags): AgentPaths {
  return agentPaths({
    ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
    ...(flags.resolvConf ? { resolvConf: flags.resolvConf } : {}),
    ...(flags.dockerDaemonJson ? { dockerDaemonJson: flags.dockerDaemonJson } : {}),
  });
}

function machineUpstream(resolvConf: string): string {
  const read = (path: string): string | null => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  };
  const text = read(resolvConf);
  const upstream = text === null ? null : upstreamFromResolvConf(text, read('/run/systemd/resolve/resolv.conf'));
  if (!upstream) throw new RunwallError('RW_UPSTREAM_INVALID', `${resolvConf} names no usable nameserver; pass --dns-upstream`);
  return upstream;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function policyOptions(command: Command): Command {
  return command
    .addOption(new Option('--egress-policy <mode>', 'audit or block (default: block)'))
    .option('--allowed-endpoints <list>', 'endpoints the machine may reach, separated by spaces or newlines')
    .option('--policy <file>', 'policy file (YAML); flags win over it')
    .option('--block-list <file>', 'global block list; enforced in every mode')
    .option('--dns-upstream <addr[:port]>', "resolver to forward allowed names to (default: the machine's)")
    .option('--events <file>', 'append every event as a JSON line here')
    .option('--report <file>', 'where stop writes the run report (default: STATE_DIR/report.json)')
    .addOption(new Option('--ttl-grace <seconds>').default('10').hideHelp())
    .option('--l7 <on|off>', 'check TLS SNI and HTTP Host of every flow against the policy (default: on)')
    .addOption(new Option('--state-dir <dir>', 'control socket and state (default /run/runwall/agent)').hideHelp())
    .addOption(new Option('--resolv-conf <file>').hideHelp())
    .addOption(new Option('--docker-daemon-json <file>').hideHelp());
}

export function registerAgentCommand(program: Command): void {
  const agent = program.command('agent').description('protect the whole machine: a daemon with a root-only control socket');

  policyOptions(agent.command('start'))
    .description('start the agent (it enforces before this command returns)')
    .option('--foreground', 'run in this process instead of as a daemon')
    .option('--workspace <dir>', "the job's workspace: file changes under it are recorded and changes to its tracked source are findings")
    .action(async (flags: AgentFlags) => {
      const paths = pathsFrom(flags);
      const policy = policyFromFlags(flags, () => machineUpstream(paths.resolvConf));
      const l7 = parseL7(flags.l7);
      if (flags.foreground) {
        await runAgent({
          policy,
          l7,
          paths,
          ttlGraceSeconds: parseGrace(flags.ttlGrace),
          defaultReportPath: flags.report ?? `${paths.stateDir}/report.json`,
          ...(flags.workspace ? { workspace: flags.workspace } : {}),
          ...(flags.events ? { eventsPath: flags.events } : {}),
        });
        return;
      }
      try {
        const status = (await controlRequest(controlSocketPath(paths), { command: 'status' }, 2_000)) as AgentStatus;
        throw new RunwallError('RW_AGENT_RUNNING', `a runwall agent is already running (pid ${status.pid})`);
      } catch (error: unknown) {
        if (!(error instanceof RunwallError) || error.code !== 'RW_AGENT_NOT_RUNNING') throw error;
      }
      mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
      const log = `${paths.stateDir}/agent.log`;
      const out = openSync(log, 'a', 0o600);
      const args = [...AGENT_DAEMON_NODE_OPTIONS, ...process.execArgv, process.argv[1] ?? '', ...process.argv.slice(2), '--foreground'];
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
      let exited: number | null = null;
      child.on('exit', (code) => {
        exited = code ?? 250;
      });
      child.unref();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (exited !== null) {
          const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-1)[0] : '';
          throw new RunwallError('RW_SETUP_FAILED', `the agent exited during start (status ${exited}): ${tail ?? ''}`);
        }
        try {
          const status = (await controlRequest(controlSocketPath(paths), { command: 'status' }, 1_000)) as AgentStatus;
          process.stdout.write(
            `runwall agent: enforcing ${status.mode} mode (pid ${status.pid}), ${status.enforcingAfterMs} ms after start; resolver ${status.resolvers.join(', ')}; control ${controlSocketPath(paths)}\n`,
          );
          return;
        } catch (error: unknown) {
          if (!(error instanceof RunwallError) || error.code !== 'RW_AGENT_NOT_RUNNING') throw error;
        }
        await sleep(25);
      }
      child.kill('SIGKILL');
      throw new RunwallError('RW_SETUP_FAILED', `the agent did not come up within 15 s; see ${log}`);
    });

  agent
    .command('status')
    .description("print the running agent's status as JSON (exit 3 when none runs)")
    .addOption(new Option('--state-dir <dir>').hideHelp())
    .action(async (flags: AgentFlags) => {
      const paths = pathsFrom(flags);
      try {
        const status = await controlRequest(controlSocketPath(paths), { command: 'status' }, 5_000);
        process.stdout.write(JSON.stringify(status, null, 2) + '\n');
      } catch (error: unknown) {
        if (!(error instanceof RunwallError) || error.code !== 'RW_AGENT_NOT_RUNNING') throw error;
        const stale = existsSync(`${paths.stateDir}/state.json`);
        process.stdout.write(
          stale
            ? "runwall agent: not running, but a dead agent's rules are still in force (the machine stays blocked); 'runwall agent stop' removes them\n"
            : 'runwall agent: not running\n',
        );
        process.exitCode = 3;
      }
    });

  agent
    .command('stop')
    .description('stop the agent, restore the resolver configuration and write the run report')
    .option('--report <file>', 'where to write the run report')
    .addOption(new Option('--state-dir <dir>').hideHelp())
    .action(async (flags: AgentFlags) => {
      const paths = pathsFrom(flags);
      try {
        const result = (await controlRequest(controlSocketPath(paths), { command: 'stop', ...(flags.report ? { report: flags.report } : {}) }, 30_000)) as {
          report: string;
          summary: RunSummary;
        };
        const c = result.summary.counts;
        process.stdout.write(`runwall agent: stopped; ${result.summary.destinations.length} destinations, ${c.blocked} blocked, ${c.attackBlocked} attack-blocked; report: ${result.report}\n`);
      } catch (error: unknown) {
        if (!(error instanceof RunwallError) || error.code !== 'RW_AGENT_NOT_RUNNING') throw error;
        const nft = Nftables.open();
        const done = await recoverDeadAgent(paths, nft);
        nft.close();
        if (done.length === 0) throw error;
        process.stdout.write(`runwall agent: was not running; cleaned up after it: ${done.join('; ')}\n`);
      }
    });
  agent
    .command('step')
    .description('mark where a step of the job begins or ends (for CI systems whose steps runwall cannot see); events in between belong to it')
    .argument('<action>', 'begin or end')
    .argument('<name>', 'the step, as the CI system names it')
    .addOption(new Option('--state-dir <dir>').hideHelp())
    .action(async (action: string, name: string, flags: AgentFlags) => {
      if (action !== 'begin' && action !== 'end') throw new RunwallError('RW_USAGE', `runwall agent step: the action must be begin or end, not '${action}'`);
      if (name.length === 0 || name.length > 256) throw new RunwallError('RW_USAGE', 'runwall agent step: the name must be 1-256 characters');
      const result = (await controlRequest(controlSocketPath(pathsFrom(flags)), { command: 'step', action, name }, 15_000)) as { id?: string };
      process.stdout.write(`runwall agent: step '${name}' ${action === 'begin' ? 'began' : 'ended'}${result.id ? ` (${result.id})` : ''}\n`);
    });
}
