/** `runwall report FILE`: a run report as a readable table. */
import type { Command } from 'commander';
import { parseRunReport, RunwallError } from '../protocol/index.js';
import { readInputFile } from './read-input.js';
import { formatReport } from './report-format.js';

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('print a run report (JSON written by --report) as a readable table')
    .argument('<file>', 'the run report')
    .action((file: string) => {
      const text = readInputFile(file, 'run report');
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error: unknown) {
        throw new RunwallError('RW_REPORT_INVALID', `'${file}' is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      process.stdout.write(formatReport(parseRunReport(value)) + '\n');
    });
}
