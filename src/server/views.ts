/**
 * Views of a run computed from its events, as pure functions: the network
 * tree (step → process chain → destination), the process tree, and the diff
 * between two allowed-endpoints lists. The API serves them; the web app draws them.
 */
import type { ProcessNode as ReportProcessNode, ProcessRef, RunEvent, Verdict } from '../protocol/index.js';
import { eventVerdict, normalName, verdictRank } from './run-facts.js';

export interface NetworkDestination {
  /** `name:port`, `address:port`, or a name alone for DNS-only destinations. */
  readonly destination: string;
  readonly verdict: Verdict;
  readonly count: number;
  readonly kinds: readonly ('dns' | 'connection' | 'http')[];
}

export interface NetworkProcess {
  /** Executables from the job's root down to the process, e.g. `bash › npm › node`. */
  readonly chain: readonly string[];
  readonly pid: number | null;
  readonly destinations: readonly NetworkDestination[];
}

export interface NetworkStep {
  readonly id: string | null;
  readonly name: string;
  readonly processes: readonly NetworkProcess[];
}

export interface NetworkTree {
  readonly steps: readonly NetworkStep[];
  /** Network events the tree was built from. */
  readonly events: number;
  /** True when the run had more network events than the view reads. */
  readonly truncated: boolean;
}

const UNKNOWN_PROCESS = '(process not recorded)';
export const NO_STEP_NAME = '(not in a recorded step)';

/** The tool chain root first, by the names people use (`npm`), else executables; candidates when the agent could not tell. */
function chainOf(event: RunEvent): { chain: string[]; pid: number | null } {
  const process = event.process;
  if (!process) {
    const candidates = event.processCandidates ?? [];
    if (candidates.length === 0) return { chain: [UNKNOWN_PROCESS], pid: null };
    const names = [...new Set(candidates.map((c) => c.name ?? c.exe ?? `pid ${c.pid}`))].sort();
    return { chain: [`one of: ${names.join(', ')}`], pid: null };
  }
  const own = process.name ?? process.exe ?? `pid ${process.pid}`;
  const ancestors = (process.ancestry ?? []).map((a) => a.name ?? a.exe ?? `pid ${a.pid}`).reverse();
  return { chain: [...ancestors, own], pid: process.pid };
}

function destinationOf(event: RunEvent): string | null {
  switch (event.kind) {
    case 'dns':
      return normalName(event.name);
    case 'connection': {
      const host = event.name ? normalName(event.name) : event.destination.includes(':') ? `[${event.destination}]` : event.destination;
      return event.port === null ? `${host}/${event.protocol}` : `${host}:${event.port}${event.protocol === 'tcp' ? '' : `/${event.protocol}`}`;
    }
    case 'http':
      return `${normalName(event.host)}:${event.port}`;
    default:
      return null;
  }
}

export function buildNetworkTree(events: readonly RunEvent[], truncated = false): NetworkTree {
  const stepNames = new Map<string, string>();
  const stepOrder: (string | null)[] = [];
  const steps = new Map<string | null, Map<string, { chain: string[]; pid: number | null; destinations: Map<string, { verdict: Verdict; count: number; kinds: Set<'dns' | 'connection' | 'http'> }> }>>();
  const touchStep = (id: string | null) => {
    if (!steps.has(id)) {
      steps.set(id, new Map());
      stepOrder.push(id);
    }
    return steps.get(id)!;
  };
  let count = 0;
  for (const event of events) {
    if (event.kind === 'step') {
      if (event.action === 'begin' || !stepNames.has(event.id)) stepNames.set(event.id, event.name);
      continue;
    }
    const destination = destinationOf(event);
    const verdict = eventVerdict(event);
    if (destination === null || verdict === null) continue;
    count++;
    const step = touchStep(event.step ?? null);
    const { chain, pid } = chainOf(event);
    const processKey = `${pid ?? ''}\u0000${chain.join('\u0000')}`;
    let process = step.get(processKey);
    if (!process) {
      process = { chain, pid, destinations: new Map() };
      step.set(processKey, process);
    }
    const kind = event.kind as 'dns' | 'connection' | 'http';
    const weight = event.kind === 'connection' ? event.count : 1;
    const existing = process.destinations.get(destination);
    if (existing) {
      existing.count += weight;
      existing.kinds.add(kind);
      if (verdictRank(verdict) > verdictRank(existing.verdict)) existing.verdict = verdict;
    } else {
      process.destinations.set(destination, { verdict, count: weight, kinds: new Set([kind]) });
    }
  }
  return {
    events: count,
    truncated,
    steps: stepOrder.map((id) => ({
      id,
      name: id === null ? NO_STEP_NAME : (stepNames.get(id) ?? id),
      processes: [...(steps.get(id)?.values() ?? [])].map((p) => ({
        chain: p.chain,
        pid: p.pid,
        destinations: [...p.destinations.entries()]
          .map(([destination, d]) => ({ destination, verdict: d.verdict, count: d.count, kinds: [...d.kinds].sort() }))
          .sort((a, b) => verdictRank(b.verdict) - verdictRank(a.verdict) || a.destination.localeCompare(b.destination)),
      })),
    })),
  };
}

export interface ProcessNode {
  readonly pid: number;
  readonly ppid: number | null;
  readonly exe: string | null;
  readonly argv: readonly string[] | null;
  readonly step: string | null;
  readonly startedAt: string | null;
  readonly exitCode: number | null;
  /** Network events this process caused, by verdict. */
  readonly network: Readonly<Record<Verdict, number>>;
  readonly children: readonly ProcessNode[];
}

export interface ProcessTree {
  readonly roots: readonly ProcessNode[];
  readonly processes: number;
  readonly truncated: boolean;
}

interface MutableNode {
  pid: number;
  ppid: number | null;
  exe: string | null;
  argv: string[] | null;
  step: string | null;
  startedAt: string | null;
  exitCode: number | null;
  network: Record<Verdict, number>;
}

/**
 * The process tree from exec/fork/exit events, completed with processes known
 * only from network events' attribution (their ancestry gives the parents).
 * A pid reused after exit is treated as one node: the tree is for reading, not forensics.
 */
export function buildProcessTree(events: readonly RunEvent[], maxNodes = 5000): ProcessTree {
  const nodes = new Map<number, MutableNode>();
  let truncated = false;
  const touch = (pid: number): MutableNode | null => {
    let node = nodes.get(pid);
    if (!node) {
      if (nodes.size >= maxNodes) {
        truncated = true;
        return null;
      }
      node = { pid, ppid: null, exe: null, argv: null, step: null, startedAt: null, exitCode: null, network: { allowed: 0, audit: 0, blocked: 0, 'attack-blocked': 0 } };
      nodes.set(pid, node);
    }
    return node;
  };
  const learn = (ref: ProcessRef) => {
    const node = touch(ref.pid);
    if (!node) return null;
    node.exe ??= ref.exe ?? null;
    node.argv ??= ref.argv ? [...ref.argv] : null;
    if (ref.ppid !== undefined) node.ppid ??= ref.ppid;
    let child = node;
    for (const ancestor of ref.ancestry ?? []) {
      child.ppid ??= ancestor.pid;
      const parent = touch(ancestor.pid);
      if (!parent) break;
      parent.exe ??= ancestor.exe ?? null;
      child = parent;
    }
    return node;
  };
  for (const event of events) {
    if (event.kind === 'process') {
      const node = touch(event.pid);
      if (!node) continue;
      if (event.ppid !== undefined) node.ppid = event.ppid;
      if (event.exe) node.exe = event.exe;
      if (event.argv) node.argv = [...event.argv];
      if (event.action === 'exec' || event.action === 'fork') node.startedAt ??= event.time;
      if (event.action === 'exit' && event.exitCode !== undefined) node.exitCode = event.exitCode;
      if (event.step) node.step ??= event.step;
      continue;
    }
    const verdict = eventVerdict(event);
    if (event.process) {
      const node = learn(event.process);
      if (node && verdict) node.network[verdict] += 1;
      if (node && event.step) node.step ??= event.step;
    }
  }
  const children = new Map<number, number[]>();
  const roots: number[] = [];
  for (const node of nodes.values()) {
    if (node.ppid !== null && node.ppid !== node.pid && nodes.has(node.ppid)) {
      const list = children.get(node.ppid) ?? [];
      list.push(node.pid);
      children.set(node.ppid, list);
    } else {
      roots.push(node.pid);
    }
  }
  // Iterative build with a visited set: a cycle in bad data cannot loop forever.
  const visited = new Set<number>();
  const build = (pid: number): ProcessNode => {
    visited.add(pid);
    const node = nodes.get(pid)!;
    const kids = (children.get(pid) ?? []).filter((c) => !visited.has(c)).sort((a, b) => a - b);
    return { ...node, children: kids.map(build) };
  };
  const tree = roots.sort((a, b) => a - b).map(build);
  // Nodes only on a cycle have no root: show them as roots too.
  for (const pid of nodes.keys()) if (!visited.has(pid)) tree.push(build(pid));
  return { roots: tree, processes: nodes.size, truncated };
}

/**
 * The process tree from the report's own list (ids and parents, so a reused pid is two nodes),
 * with each process's network events counted by pid (the events carry no node id).
 */
export function processTreeFromReport(list: readonly ReportProcessNode[], events: readonly RunEvent[], maxNodes = 5000): ProcessTree {
  const network = new Map<number, Record<Verdict, number>>();
  for (const event of events) {
    const verdict = eventVerdict(event);
    if (!verdict || !event.process) continue;
    const counts = network.get(event.process.pid) ?? { allowed: 0, audit: 0, blocked: 0, 'attack-blocked': 0 };
    counts[verdict] += 1;
    network.set(event.process.pid, counts);
  }
  const kept = list.slice(0, maxNodes);
  const ids = new Set(kept.map((n) => n.id));
  const children = new Map<number, ReportProcessNode[]>();
  const roots: ReportProcessNode[] = [];
  for (const node of kept) {
    if (node.parent !== undefined && node.parent !== node.id && ids.has(node.parent)) {
      const list = children.get(node.parent) ?? [];
      list.push(node);
      children.set(node.parent, list);
    } else {
      roots.push(node);
    }
  }
  const visited = new Set<number>();
  const build = (node: ReportProcessNode): ProcessNode => {
    visited.add(node.id);
    return {
      pid: node.pid,
      ppid: node.ppid ?? null,
      exe: node.exe ?? node.name ?? null,
      argv: node.argv ? [...node.argv] : null,
      step: node.step ?? null,
      startedAt: node.startTime ?? null,
      exitCode: node.exitCode ?? null,
      network: network.get(node.pid) ?? { allowed: 0, audit: 0, blocked: 0, 'attack-blocked': 0 },
      children: (children.get(node.id) ?? []).filter((c) => !visited.has(c.id)).map(build),
    };
  };
  const tree = roots.map(build);
  for (const node of kept) if (!visited.has(node.id)) tree.push(build(node));
  return { roots: tree, processes: kept.length, truncated: list.length > kept.length };
}

export interface EndpointDiff {
  /** In the candidate, not in force: the run needed them. */
  readonly added: readonly string[];
  /** In force, not in the candidate: nothing used them. */
  readonly unused: readonly string[];
  readonly kept: readonly string[];
}

export function diffEndpoints(inForce: readonly string[], candidate: readonly string[]): EndpointDiff {
  const force = new Set(inForce);
  const next = new Set(candidate);
  return {
    added: [...next].filter((e) => !force.has(e)).sort(),
    unused: [...force].filter((e) => !next.has(e)).sort(),
    kept: [...next].filter((e) => force.has(e)).sort(),
  };
}
