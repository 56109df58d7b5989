/**
 * Where the bench runs: the project's test internet (test/helpers/internet.ts), plus
 *   - a faster upstream: dnsmasq answering *.gen.test itself at 198.51.100.54 in P-inet,
 *     so the DNS figures are not only the Node zone server's;
 *   - a baseline job namespace in P-host, joined by a veth pair and masqueraded like
 *     `runwall exec`'s, but with no rules and the upstream as its resolver.
 * Every namespace and process is the bench's own and goes in teardown() (and on exit).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createInternet, type Internet } from '../test/helpers/internet.js';
import { killAllStarted, runChecked, start, sleep, type Started } from './processes.js';

export const REPO = resolve(import.meta.dirname, '..');

/** The Node zone server of the test internet, and dnsmasq answering the same names. */
export const ZONE_UPSTREAM = '198.51.100.53';
export const DNSMASQ_UPSTREAM = '198.51.100.54';
/** What dnsmasq answers for every nI.gen.test (the zone server spreads them over 198.51.100.50..199). */
const DNSMASQ_GEN_ADDRESS = '198.51.100.60';
/** Names outside every policy the bench uses: the zone and the dnsmasq upstream both say NXDOMAIN. */
export const DENIED_SUFFIX = 'denied.test';

/** The baseline job's side of its veth pair; 100.127/16 stays clear of runwall's 100.64.0.0/16 slots. */
const BASE = { hostIf: 'rwbh0', jobIf: 'rwbj0', host4: '100.127.0.1', job4: '100.127.0.2', net4: '100.127.0.0/30' } as const;
const BASE_TABLE = 'runwall_bench_base';

export interface RunwallCommand {
  readonly argv: readonly string[];
  /** How it runs: the built CLI as deployed, or from source through tsx. */
  readonly how: string;
}

export interface BenchEnv {
  readonly internet: Internet;
  readonly hostNs: string;
  readonly baseNs: string;
  readonly dir: string;
  readonly runwall: RunwallCommand;
  /** argv prefix that runs a command in the baseline job namespace with `resolvConf` as its /etc/resolv.conf. */
  inBaseJob(resolvConf: string, argv: readonly string[]): readonly string[];
  teardown(): Promise<void>;
}

function newestMtime(dir: string, depth = 0): number {
  if (depth > 8) return 0; // src/ is a few levels deep; a loop of links is not followed forever
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestMtime(path, depth + 1) : stat.mtimeMs);
  }
  return newest;
}

/**
 * `make bench` builds dist/ first: measure that. Run without a build, fall back to the sources.
 * RUNWALL_BENCH_CLI=/path/to/dist/cli/main.js measures another build (another checkout) instead.
 */
export function runwallCommand(): RunwallCommand {
  const chosen = process.env['RUNWALL_BENCH_CLI'];
  if (chosen !== undefined && chosen !== '') {
    if (!existsSync(chosen)) throw new Error(`RUNWALL_BENCH_CLI=${chosen}: no such file`);
    return { argv: [process.execPath, resolve(chosen)], how: `RUNWALL_BENCH_CLI=${chosen}` };
  }
  const built = join(REPO, 'dist/cli/main.js');
  if (existsSync(built)) {
    const stale = newestMtime(join(REPO, 'src')) > statSync(built).mtimeMs;
    return { argv: [process.execPath, built], how: stale ? 'dist/ (older than src/: run make bench to rebuild)' : 'dist/ (built CLI)' };
  }
  return { argv: [process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts')], how: 'src/ through tsx (no dist/: start-up figures include compiling)' };
}

function removeBaseNamespaceSync(baseNs: string): void {
  spawnSync('ip', ['netns', 'pids', baseNs], { encoding: 'utf8', timeout: 5_000 })
    .stdout?.split('\n')
    .map(Number)
    .filter((pid) => Number.isSafeInteger(pid) && pid > 1)
    .forEach((pid) => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    });
  if (existsSync(`/run/netns/${baseNs}`)) spawnSync('ip', ['netns', 'del', baseNs], { timeout: 5_000 });
}

async function startDnsmasqUpstream(internet: Internet): Promise<Started> {
  await runChecked(['ip', 'addr', 'add', `${DNSMASQ_UPSTREAM}/32`, 'dev', 'lo'], { netns: internet.inetNs, timeoutMs: 5_000 });
  const dnsmasq = start(
    [
      'dnsmasq',
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      '--user=root',
      `--listen-address=${DNSMASQ_UPSTREAM}`,
      '--bind-interfaces',
      '--dns-forward-max=1000',
      `--address=/gen.test/${DNSMASQ_GEN_ADDRESS}`,
      `--address=/${DENIED_SUFFIX}/`,
    ],
    { netns: internet.inetNs, timeoutMs: 30 * 60_000 },
  );
  await waitForDns(internet.hostNs, DNSMASQ_UPSTREAM, 'n1.gen.test', dnsmasq);
  return dnsmasq;
}

/** Waits (at most 5 s) until `server` answers; a resolver that exited fails at once. */
export async function waitForDns(netns: string, server: string, name: string, process?: Started): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (process && process.child.exitCode !== null) {
      const result = await process.done;
      throw new Error(`resolver at ${server} exited: ${result.stderr.trim()}`);
    }
    const dig = await runChecked(['dig', '+short', '+tries=1', '+time=1', `@${server}`, name, 'A'], { netns, timeoutMs: 5_000 }).catch(() => null);
    if (dig && dig.stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`no answer from ${server} within 5 s`);
}

async function createBaseNamespace(hostNs: string, baseNs: string, dir: string): Promise<void> {
  await runChecked(['ip', 'netns', 'add', baseNs], { timeoutMs: 5_000 });
  const inHost = { netns: hostNs, timeoutMs: 5_000 };
  const inBase = { netns: baseNs, timeoutMs: 5_000 };
  await runChecked(['ip', 'link', 'add', BASE.hostIf, 'type', 'veth', 'peer', 'name', BASE.jobIf, 'netns', baseNs], inHost);
  await runChecked(['ip', 'addr', 'add', `${BASE.host4}/30`, 'dev', BASE.hostIf], inHost);
  await runChecked(['ip', 'link', 'set', BASE.hostIf, 'up'], inHost);
  await runChecked(['ip', 'link', 'set', 'lo', 'up'], inBase);
  await runChecked(['ip', 'addr', 'add', `${BASE.job4}/30`, 'dev', BASE.jobIf], inBase);
  await runChecked(['ip', 'link', 'set', BASE.jobIf, 'up'], inBase);
  await runChecked(['ip', 'route', 'add', 'default', 'via', BASE.host4], inBase);
  // The same masquerade runwall's table does, and nothing else.
  const ruleset = join(dir, 'baseline.nft');
  writeFileSync(
    ruleset,
    `table ip ${BASE_TABLE} {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr ${BASE.net4} oifname != "${BASE.hostIf}" masquerade\n  }\n}\n`,
  );
  await runChecked(['nft', '-f', ruleset], inHost);
}

export async function createBenchEnv(): Promise<BenchEnv> {
  const internet = await createInternet({ name: 'bench' });
  const baseNs = `rwb${process.pid}-job`;
  const dir = mkdtempSync(join(tmpdir(), 'runwall-bench-'));
  let dnsmasq: Started | undefined;
  const onExit = (): void => {
    killAllStarted();
    removeBaseNamespaceSync(baseNs);
  };
  process.once('exit', onExit);
  const teardown = async (): Promise<void> => {
    dnsmasq?.child.kill('SIGKILL');
    killAllStarted();
    removeBaseNamespaceSync(baseNs);
    await internet.destroy();
    rmSync(dir, { recursive: true, force: true });
    process.off('exit', onExit);
  };
  try {
    dnsmasq = await startDnsmasqUpstream(internet);
    await createBaseNamespace(internet.hostNs, baseNs, dir);
  } catch (error) {
    await teardown();
    throw error;
  }
  return {
    internet,
    hostNs: internet.hostNs,
    baseNs,
    dir,
    runwall: runwallCommand(),
    // A private mount namespace, so the bind mount over /etc/resolv.conf is the job's alone.
    inBaseJob: (resolvConf, argv) => [
      'nsenter',
      `--net=/run/netns/${baseNs}`,
      '--',
      'unshare',
      '--mount',
      'sh',
      '-c',
      'mount --bind "$0" /etc/resolv.conf && exec "$@"',
      resolvConf,
      ...argv,
    ],
    teardown,
  };
}

/** A resolv.conf naming `server`, in the bench's directory. */
export function resolvConfFor(env: BenchEnv, server: string): string {
  const path = join(env.dir, `resolv-${server}.conf`);
  writeFileSync(path, `nameserver ${server}\n`);
  return path;
}
