/**
 * The `runwall` command behind main.ts: commander, each subcommand in its own `*-command.ts`,
 * and the one place errors become a line on stderr and an exit status.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_RUNWALL_FAILED, EXIT_USAGE, INPUT_ERROR_CODES, RUNWALL_VERSION, isRunwallError } from '../protocol/index.js';
import type { AgentLaunchOutcome } from './agent-launch.js';

/** Runs the command in process.argv; `failedLaunch` is the daemon main.ts launched for `agent start`, which did not come to enforce. */
export async function runCli(failedLaunch: AgentLaunchOutcome | null): Promise<void> {
  const program = new Command('runwall')
    .description('Open runtime security for CI/CD runners: control and record what a job does on the network.')
    .version(RUNWALL_VERSION)
    .exitOverride()
    .showHelpAfterError(false)
    .enablePositionalOptions();

  /**
   * Subcommands register here (one line each). Each is loaded only when it is the one asked for
   * (all of them for help): loading the server's database drivers costs `runwall exec` and
   * `runwall agent start` hundreds of milliseconds before they can enforce anything.
   */
  const COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
    exec: async () => (await import('./exec-command.js')).registerExecCommand,
    report: async () => (await import('./report-command.js')).registerReportCommand,
    agent: async () => (await import('./agent-command.js')).registerAgentCommand,
    server: async () => (await import('./server-command.js')).registerServerCommand,
  };
  const asked = process.argv[2];
  const wanted = failedLaunch ? [] : asked === '--version' || asked === '-V' ? [] : asked !== undefined && asked in COMMANDS ? [asked] : Object.keys(COMMANDS);
  for (const name of wanted) (await COMMANDS[name]!())(program);

  try {
    // A launched daemon checks the arguments itself (agent-launch.ts): its error is this command's.
    if (failedLaunch && failedLaunch.kind !== 'ready') throw (await import('./agent-launch-report.js')).agentLaunchFailure(failedLaunch);
    await program.parseAsync(process.argv);
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) process.exit(0);
      process.exit(EXIT_USAGE);
    }
    if (isRunwallError(error)) {
      process.stderr.write(error.toLine() + '\n');
      process.exit(INPUT_ERROR_CODES.has(error.code) ? EXIT_USAGE : EXIT_RUNWALL_FAILED);
    }
    process.stderr.write(`runwall: RW_INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT_RUNWALL_FAILED);
  }
}
