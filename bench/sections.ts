/** The parts of `make bench`, and RUNWALL_BENCH_ONLY, which picks some of them. Pure. */

/** Measured in the bench's own test internet. */
export const NETWORK_SECTIONS = ['dns', 'agent-start', 'exec-start', 'workload'] as const;
/** Other engineers' modules under bench/, each run when its file exists. */
export const OPTIONAL_PARTS = [
  { section: 'server', file: 'server', exportName: 'runServerBench' },
  { section: 'files', file: 'files', exportName: 'runFilesBench' },
  { section: 'process', file: 'process', exportName: 'runProcessBench' },
  { section: 'steps', file: 'steps', exportName: 'runStepsBench' },
] as const;

export type NetworkSection = (typeof NETWORK_SECTIONS)[number];
export type OptionalSection = (typeof OPTIONAL_PARTS)[number]['section'];
export type Section = NetworkSection | OptionalSection;

export const ALL_SECTIONS: readonly Section[] = [...NETWORK_SECTIONS, ...OPTIONAL_PARTS.map((part) => part.section)];

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
