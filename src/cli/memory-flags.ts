/**
 * V8 settings for the long-running commands (`runwall exec`, `runwall agent`).
 * Measured (bench/dns.ts, the agent under dnsperf): with V8's defaults the
 * agent's RSS reached about 250 MiB while its live heap stayed near 30 MiB.
 * The DNS proxy's steady stream of short-lived objects grows the old
 * generation up to four times what is live and the young generation to its
 * largest (2 x 16 MiB).
 *
 * - Old generation: grow by 30 % of what is live, not by V8's dynamic factor.
 *   V8 reads this as it goes, so it is set here, first thing in main.
 * - Young generation: 2 MiB semi-spaces. V8 fixes this when the process
 *   starts, so only the agent's daemon, which `agent start` spawns, gets it
 *   (on its command line); `runwall exec` keeps V8's default.
 * Both were chosen against the DNS bench: --optimize-for-size saved about as
 * much but cost 40-70 % more CPU per query. Semi-spaces of 2 MiB against 4:
 * ~7 MiB lower peak RSS under load, up to ~10 % more CPU per admitted query
 * (5 runs each, noisy); 1 MiB saved ~2 MiB more and cost ~20 %.
 */
import { setFlagsFromString } from 'node:v8';

const LONG_RUNNING = new Set(['exec', 'agent']);

/** Flags V8 honours when set at run time, for `command` (argv[2]); none for the short commands and `runwall server`. */
export function memoryFlagsFor(command: string | undefined): readonly string[] {
  return command !== undefined && LONG_RUNNING.has(command) ? ['--heap-growing-percent=30'] : [];
}

/**
 * glibc malloc settings for a spawned agent daemon, which glibc reads from its environment as
 * it starts (why: src/agent/platform/malloc-tuning.ts; a test keeps the two in step). The
 * caller's own values win.
 */
export const AGENT_DAEMON_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
});

/** Node options for a spawned agent daemon (before the caller's own, so a caller's choice wins). */
export const AGENT_DAEMON_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=2'];

// This module is main.ts's first import: the flags are in place before the other modules load.
for (const flag of memoryFlagsFor(process.argv[2])) setFlagsFromString(flag);
