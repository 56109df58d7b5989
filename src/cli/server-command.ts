/** `runwall server`: the insights API and web app on one port. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { RunwallError } from '../protocol/index.js';
import { parseDatabaseSpec, startServer, type GitHubAppConfig } from '../server/index.js';

interface ServerFlags {
  port: string;
  host: string;
  database?: string;
  githubAppId?: string;
  githubPrivateKey?: string;
  githubApiUrl: string;
  publicUrl?: string;
}

export function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new RunwallError('RW_USAGE', `--port must be a number from 0 to 65535, not '${text}'`);
  return Number(text);
}

/** `$RUNWALL_DATA/runwall.db`, else `./.runwall/runwall.db`. */
export function defaultDatabase(env: NodeJS.ProcessEnv = process.env): string {
  return `sqlite:${join(env.RUNWALL_DATA || './.runwall', 'runwall.db')}`;
}

function githubConfig(flags: ServerFlags): GitHubAppConfig | null {
  if (flags.githubAppId === undefined && flags.githubPrivateKey === undefined) return null;
  if (!flags.githubAppId || !flags.githubPrivateKey) {
    throw new RunwallError('RW_USAGE', '--github-app-id and --github-private-key go together (the GitHub App that posts check runs)');
  }
  let privateKey: string;
  try {
    privateKey = readFileSync(flags.githubPrivateKey, 'utf8');
  } catch (error) {
    throw new RunwallError('RW_FILE_UNREADABLE', `--github-private-key '${flags.githubPrivateKey}': ${error instanceof Error ? error.message : String(error)}`);
  }
  return { appId: flags.githubAppId, privateKey, baseUrl: flags.githubApiUrl, checkName: 'runwall', publicUrl: flags.publicUrl ?? null };
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('start the insights API and web app (runs, policies, global block list, baselines)')
    .option('--port <n>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--database <url>', "'sqlite:PATH' or 'postgres://user@host/db' (default: sqlite under $RUNWALL_DATA or ./.runwall)")
    .option('--github-app-id <id>', 'GitHub App id, to post a check run with each run\'s verdict')
    .option('--github-private-key <file>', "the GitHub App's private key (PEM)")
    .option('--github-api-url <url>', 'GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)', 'https://api.github.com')
    .option('--public-url <url>', 'where people reach this server, for links in check runs')
    .action(async (flags: ServerFlags) => {
      const port = parsePort(flags.port);
      const database = parseDatabaseSpec(flags.database ?? process.env.RUNWALL_DATABASE ?? defaultDatabase());
      const server = await startServer({ host: flags.host, port, database, github: githubConfig(flags) });
      const lines = [`runwall server listening on ${server.url} (database ${server.database}, schema version ${server.schemaVersion})`];
      if (server.firstStart) {
        const first = server.firstStart;
        lines.push(
          `First start: created organisation '${first.tenant}' with an operator. Shown once, keep them:`,
          `  API key:  ${first.apiKey}`,
          `  Sign in:  ${first.email}  password ${first.password}`,
        );
      }
      process.stdout.write(lines.join('\n') + '\n');
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
    });
}
