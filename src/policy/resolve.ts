/**
 * The effective policy of a run: flags win over the policy file, the file
 * over defaults; the report records where each setting came from.
 */
import type { BlockListEntry, EffectivePolicy } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';
import type { PolicySettings } from './policy-file.js';
import { parseDnsUpstream } from './upstream.js';

export interface PolicySources {
  flags: PolicySettings;
  file?: { path: string; settings: PolicySettings };
  /** The global block list (a block-list file, the server's list). */
  blockList?: readonly BlockListEntry[];
  defaults: { dnsUpstream: string };
}

/** Block-list entries from several sources, the first of each canonical text kept. */
export function mergeBlockLists(...lists: readonly (readonly BlockListEntry[] | undefined)[]): BlockListEntry[] {
  const seen = new Set<string>();
  const out: BlockListEntry[] = [];
  for (const list of lists) {
    for (const entry of list ?? []) {
      if (seen.has(entry.text)) continue;
      seen.add(entry.text);
      out.push({ ...entry });
    }
  }
  return out;
}

export function resolvePolicy(input: PolicySources): EffectivePolicy {
  const { flags, file } = input;
  const origins: Record<string, string> = {};
  const pick = <K extends 'egressPolicy' | 'allowedEndpoints' | 'dnsUpstream' | 'disableFileMonitoring' | 'allowedSourceWriters'>(
    key: K,
    fallback: NonNullable<PolicySettings[K]>,
  ): NonNullable<PolicySettings[K]> => {
    const fromFlag = flags[key];
    if (fromFlag !== undefined) {
      origins[key] = 'flag';
      return fromFlag as NonNullable<PolicySettings[K]>;
    }
    const fromFile = file?.settings[key];
    if (file !== undefined && fromFile !== undefined) {
      origins[key] = `policy-file:${file.path}`;
      return fromFile as NonNullable<PolicySettings[K]>;
    }
    origins[key] = 'default';
    return fallback;
  };
  const egressPolicy = pick('egressPolicy', 'block');
  const allowedEndpoints = pick('allowedEndpoints', []);
  // The default is written by code, not a user; validating it still gives one canonical form.
  const dnsUpstream = pick('dnsUpstream', parseDnsUpstream(input.defaults.dnsUpstream, 'default dns-upstream'));
  const disableFileMonitoring = pick('disableFileMonitoring', false);
  const allowedSourceWriters = pick('allowedSourceWriters', []);
  return deepFreeze({
    egressPolicy,
    allowedEndpoints: allowedEndpoints.map((endpoint) => ({ ...endpoint })),
    blockList: mergeBlockLists(file?.settings.blockList, flags.blockList, input.blockList),
    dnsUpstream,
    disableFileMonitoring,
    allowedSourceWriters: allowedSourceWriters.map((writer) => ({ ...writer, ...(writer.paths ? { paths: [...writer.paths] } : {}) })),
    origins,
  });
}
