/** The parts of `make bench`, and RUNWALL_BENCH_ONLY, which picks some of them. Pure. */

/** Measured in the bench's own test internet. */
export const NETWORK_SECTIONS = ['dns', 'agent-start', 'exec-start', 'workload'] as const;
/** Other engineers' modules under bench/ measured in the same test internet, run when their file exists: fn(env, log). */
export const OPTIONAL_NETWORK_PARTS = [{ section: 'l7', file: 'l7', exportName: 'runL7Bench' }] as const;
/** Other engineers' modules under bench/ that need no network, run when their file exists: fn(log). */
export const OPTIONAL_PARTS = [
  { section: 'server', file: 'server', exportName: 'runServerBench' },
  { section: 'files', file: 'files', exportName: 'runFilesBench' },
  { section: 'process', file: 'process', exportName: 'runProcessBench' },
  { section: 'steps', file: 'steps', exportName: 'runStepsBench' },
  { section: 'admit', file: 'admit', exportName: 'runAdmitBench' },
] as const;

export type NetworkSection = (typeof NETWORK_SECTIONS)[number];
export type OptionalPart = (typeof OPTIONAL_NETWORK_PARTS)[number] | (typeof OPTIONAL_PARTS)[number];
export type Section = NetworkSection | OptionalPart['section'];

export const ALL_SECTIONS: readonly Section[] = [
  ...NETWORK_SECTIONS,
  ...OPTIONAL_NETWORK_PARTS.map((part) => part.section),
  ...OPTIONAL_PARTS.map((part) => part.section),
];

/**
 * "dns,server" → those sections; unset or empty → all of them. An unknown name is
 * an error (a typo must not quietly run nothing).
 */
export function parseSectionList(text: string | undefined): ReadonlySet<Section> {
  if (text === undefined || text.trim() === '') return new Set(ALL_SECTIONS);
  const picked = new Set<Section>();
  for (const raw of text.split(',')) {
    const name = raw.trim();
    const known = ALL_SECTIONS.find((section) => section === name);
    if (known === undefined) throw new RangeError(`RUNWALL_BENCH_ONLY: unknown section '${name}' (known: ${ALL_SECTIONS.join(', ')})`);
    picked.add(known);
  }
  return picked;
}
