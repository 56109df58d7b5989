/** `runwall agent start|status|stop`: the engine for the whole machine, driven over its control socket. */
import { closeSync, existsSync, readFileSync, writeSync } from 'node:fs';
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
import { enforcingLine, launchAgentDaemon } from './agent-launch.js';
import { agentLaunchFailure } from './agent-launch-report.js';
import { parseGrace, parseL7, policyFromFlags, type ExecFlags } from './exec-command.js';

interface AgentFlags extends ExecFlags {
  readonly foreground?: boolean;
  readonly readyFd?: string;
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

/** `--ready-fd`: writes the status there as one JSON line and closes it, so later children do not hold it open. */
function readyWriter(text: string): (status: AgentStatus) => void {
  const fd = Number(text);
  if (!/^[0-9]+$/.test(text) || fd < 3) throw new RunwallError('RW_USAGE', `--ready-fd: '${text}' is not a file descriptor above 2`);
  return (status) => {
    try {
      writeSync(fd, JSON.stringify(status) + '\n');
      closeSync(fd);
    } catch {
      // Whoever started it no longer waits: the agent runs on regardless.
    }
  };
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
    .addOption(new Option('--ready-fd <fd>', 'with --foreground: write the status as one JSON line to this descriptor once enforcing, then close it').hideHelp())
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
          ...(flags.readyFd !== undefined ? { onReady: readyWriter(flags.readyFd) } : {}),
        });
        return;
      }
      // Reached only when main.ts did not launch it first (see agent-launch.ts).
      const outcome = await launchAgentDaemon(process.argv, process.execArgv, process.env);
      if (outcome.kind !== 'ready') throw agentLaunchFailure(outcome);
      process.stdout.write(enforcingLine(outcome.statusLine));
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
