#!/usr/bin/env node
/** The `runwall` command. Each subcommand lives in its own `*-command.ts` and registers itself here. */
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from './agent-command.js';
import { registerExecCommand } from './exec-command.js';
import { registerReportCommand } from './report-command.js';
import { registerServerCommand } from './server-command.js';
import { EXIT_RUNWALL_FAILED, EXIT_USAGE, INPUT_ERROR_CODES, RUNWALL_VERSION, isRunwallError } from '../protocol/index.js';

const program = new Command('runwall')
  .description('Open runtime security for CI/CD runners: control and record what a job does on the network.')
  .version(RUNWALL_VERSION)
  .exitOverride()
  .showHelpAfterError(false)
  .enablePositionalOptions();

// Subcommands register here (one line each).
registerExecCommand(program);
registerReportCommand(program);
registerAgentCommand(program);
registerServerCommand(program);

try {
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
