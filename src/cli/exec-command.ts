/** `runwall exec`: run a command under a policy in its own network namespace. */
import { Command, Option } from 'commander';
import { hostResolver, runExec } from '../agent/index.js';
import {
  parseBlockList,
  parseDnsUpstream,
  parseEgressMode,
  parseEndpointList,
  parsePolicyFile,
  parseWorkflow,
  planJob,
  resolvePolicy,
  type JobPlan,
  type PolicySettings,
} from '../policy/index.js';
import { RunwallError, type EffectivePolicy } from '../protocol/index.js';
import { readInputFile } from './read-input.js';
import { formatRunSummaryLine } from './report-format.js';

export interface ExecFlags {
  readonly egressPolicy?: string;
  readonly allowedEndpoints?: string;
  readonly policy?: string;
  readonly blockList?: string;
  readonly dnsUpstream?: string;
  readonly report?: string;
  readonly events?: string;
  readonly workspace?: string;
  readonly ttlGrace?: string;
  readonly l7?: string;
}

/** Flags, policy file and block list, validated and merged; throws before anything is set up. */
export function policyFromFlags(flags: ExecFlags, defaultUpstream: () => string): EffectivePolicy {
  const fromFlags: PolicySettings = {
    ...(flags.egressPolicy !== undefined ? { egressPolicy: parseEgressMode(flags.egressPolicy, '--egress-policy') } : {}),
    ...(flags.allowedEndpoints !== undefined ? { allowedEndpoints: parseEndpointList(flags.allowedEndpoints, '--allowed-endpoints') } : {}),
    ...(flags.dnsUpstream !== undefined ? { dnsUpstream: parseDnsUpstream(flags.dnsUpstream, '--dns-upstream') } : {}),
  };
  const file = flags.policy !== undefined ? { path: flags.policy, settings: parsePolicyFile(readInputFile(flags.policy, 'policy file'), flags.policy) } : undefined;
  const blockList = flags.blockList !== undefined ? parseBlockList(readInputFile(flags.blockList, 'block list'), flags.blockList) : undefined;
  const needsDefault = fromFlags.dnsUpstream === undefined && file?.settings.dnsUpstream === undefined;
  return resolvePolicy({
    flags: fromFlags,
    ...(file ? { file } : {}),
    ...(blockList ? { blockList } : {}),
    defaults: { dnsUpstream: needsDefault ? parseDnsUpstream(defaultUpstream(), '/etc/resolv.conf') : '127.0.0.1:53' },
  });
}

interface ExecCommandFlags extends ExecFlags {
  readonly workflow?: string;
  readonly job?: string;
}

/** `--workflow FILE --job ID`, read and planned before anything is set up; or null for a plain command. */
function workflowFromFlags(command: string | undefined, flags: ExecCommandFlags): { path: string; plan: JobPlan } | null {
  if (flags.workflow === undefined) {
    if (flags.job !== undefined) throw new RunwallError('RW_USAGE', '--job needs --workflow FILE');
    if (command === undefined) throw new RunwallError('RW_USAGE', 'give a command to run, or --workflow FILE --job ID');
    return null;
  }
  if (command !== undefined) throw new RunwallError('RW_USAGE', `give either a command ('${command}') or --workflow, not both`);
  if (flags.job === undefined) throw new RunwallError('RW_USAGE', '--workflow needs --job ID (the job whose steps to run)');
  const workflow = parseWorkflow(readInputFile(flags.workflow, 'workflow'), flags.workflow);
  return { path: flags.workflow, plan: planJob(workflow, flags.job) };
}

export function parseGrace(text: string | undefined): number {
  if (text === undefined) return 10;
  if (!/^\d{1,5}$/.test(text)) throw new RunwallError('RW_USAGE', `--ttl-grace '${text}' is not a whole number of seconds`);
  return Number(text);
}

/** `--l7 on|off`: the TLS SNI / HTTP Host check. A closed choice; anything else is refused, never defaulted. */
export function parseL7(text: string | undefined): 'on' | 'off' {
  if (text === undefined || text === 'on') return 'on';
  if (text === 'off') return 'off';
  throw new RunwallError('RW_USAGE', `--l7 must be "on" or "off", not ${JSON.stringify(text)}`);
}

export function registerExecCommand(program: Command): void {
  program
    .command('exec')
    .description('run COMMAND (or the run: steps of a workflow job) in its own network namespace under an egress policy, and write a run report')
    .addOption(new Option('--egress-policy <mode>', 'audit: record everything; block: deny what the policy does not allow (default: block)'))
    .option('--allowed-endpoints <list>', 'endpoints the job may reach: host[:port], *.domain[:port], IP, CIDR; separated by spaces or newlines')
    .option('--policy <file>', "policy file (YAML, the GitHub Action's input names); flags win over it")
    .option('--block-list <file>', 'global block list: one entry and its reason per line; enforced in every mode')
    .option('--dns-upstream <addr[:port]>', "resolver the proxy forwards allowed names to (default: the host's)")
    .option('--report <file>', 'write the run report (JSON) here')
    .option('--events <file>', 'append every event as a JSON line here while the job runs')
    .option('--workspace <dir>', "the job's working directory (and, with file monitoring, the tree watched)")
    .addOption(new Option('--ttl-grace <seconds>', 'how long an admitted address outlives its DNS TTL').default('10').hideHelp())
    .option('--l7 <on|off>', 'check TLS SNI and HTTP Host of every flow against the policy, so a shared address does not open other names (default: on)')
    .option('--workflow <file>', 'a GitHub Actions workflow: run the run: steps of its job --job, in order, each as a step')
    .option('--job <id>', 'the job of --workflow to run')
    .argument('[command]', 'the command to run')
    .argument('[args...]', 'its arguments')
    .passThroughOptions()
    .action(async (command: string | undefined, args: string[], flags: ExecCommandFlags) => {
      const workflow = workflowFromFlags(command, flags);
      const policy = policyFromFlags(flags, hostResolver);
      const l7 = parseL7(flags.l7);
      const outcome = await runExec({
        policy,
        l7,
        command: command ?? '',
        args,
        ...(workflow ? { workflow } : {}),
        ttlGraceSeconds: parseGrace(flags.ttlGrace),
        ...(flags.report ? { reportPath: flags.report } : {}),
        ...(flags.events ? { eventsPath: flags.events } : {}),
        ...(flags.workspace ? { cwd: flags.workspace, workspace: flags.workspace } : {}),
      });
      process.stderr.write(formatRunSummaryLine(outcome.report, flags.report) + '\n');
      process.exitCode = outcome.exitCode;
    });
}
