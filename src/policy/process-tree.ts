/**
 * The job's processes as a person reads them: tool chains (`npm → node → sh →
 * curl`) for an event's process, and the process tree of a run from its
 * process events. Pure.
 */
import type { ProcessNode, ProcessRef, RunEvent } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';

type Named = { readonly pid: number; readonly exe?: string | undefined; readonly name?: string | undefined };

function baseName(path: string): string {
  const cut = path.replace(/\/+$/, '');
  return cut.slice(cut.lastIndexOf('/') + 1) || path;
}

/** The name shown for a process: its tool name, else its executable's base name, else `pid:N`. */
export function processName(process: Named): string {
  if (process.name) return process.name;
  if (process.exe) return baseName(process.exe);
  return `pid:${process.pid}`;
}

/** Root first, the process itself last: `npm → node → sh → curl`. */
export function processChain(process: ProcessRef): string {
  const ancestors = [...(process.ancestry ?? [])].reverse().map(processName);
  return [...ancestors, processName(process)].join(' → ');
}

/** The chains an event names: its process, or each candidate (marked) when attribution was ambiguous. */
export function eventChains(event: { readonly process?: ProcessRef | undefined; readonly processCandidates?: readonly ProcessRef[] | undefined }): string[] {
  if (event.process) return [processChain(event.process)];
  return (event.processCandidates ?? []).map((candidate) => `${processChain(candidate)} (ambiguous)`);
}

type ProcessEvent = Extract<RunEvent, { kind: 'process' }>;
type MutableNode = { -readonly [K in keyof ProcessNode]: ProcessNode[K] };

/**
 * The process tree of a run, built one event at a time: one node per process
 * that exec'd (its last program), plus the ancestors its events name (a
 * forked shell that never exec'd), linked to the nearest listed ancestor. A
 * pid that exits and comes back is a new node. Ordered by first sighting.
 */
export class ProcessTreeBuilder {
  readonly #nodes: MutableNode[] = [];
  /** The node a pid currently stands for, and whether that process has exited. */
  readonly #current = new Map<number, { node: MutableNode; ended: boolean }>();

  /** Whether any process event came (a report without them has no `processes`). */
  #seen = false;

  get hasProcesses(): boolean {
    return this.#seen;
  }

  add(event: RunEvent): void {
    if (event.kind !== 'process') return;
    this.#seen = true;
    if (event.action === 'exec') {
      const parent = this.#ancestorsOf(event);
      const node = this.#nodeFor(event.pid, {}, parent);
      node.startTime = event.time;
      if (event.ppid !== undefined) node.ppid = event.ppid;
      if (event.exe !== undefined) node.exe = event.exe;
      if (event.argv !== undefined) node.argv = [...event.argv];
      if (event.process?.name !== undefined) node.name = event.process.name;
      else delete node.name;
      if (event.cwd !== undefined) node.cwd = event.cwd;
      if (event.uid !== undefined) node.uid = event.uid;
      if (event.container !== undefined) node.container = { ...event.container };
      if (event.step !== undefined && node.step === undefined) node.step = event.step;
    } else if (event.action === 'exit') {
      const live = this.#current.get(event.pid);
      if (!live || live.ended) return;
      live.ended = true;
      live.node.endTime = event.time;
      if (event.exitCode !== undefined) live.node.exitCode = event.exitCode;
    }
  }

  finish(): readonly ProcessNode[] {
    return deepFreeze(this.#nodes.map((node) => ({ ...node })) as ProcessNode[]);
  }

  #nodeFor(pid: number, fields: Partial<MutableNode>, parent: MutableNode | undefined): MutableNode {
    const live = this.#current.get(pid);
    if (live && !live.ended) return live.node;
    const node: MutableNode = { id: this.#nodes.length, pid, ...fields, ...(parent ? { parent: parent.id } : {}) };
    this.#nodes.push(node);
    this.#current.set(pid, { node, ended: false });
    return node;
  }

  /** Makes sure the ancestors an event names exist (root first) and returns the nearest. */
  #ancestorsOf(event: ProcessEvent): MutableNode | undefined {
    let parent: MutableNode | undefined;
    for (const ancestor of [...(event.process?.ancestry ?? [])].reverse()) {
      const fields: Partial<MutableNode> = {};
      if (ancestor.exe !== undefined) fields.exe = ancestor.exe;
      if (ancestor.name !== undefined) fields.name = ancestor.name;
      parent = this.#nodeFor(ancestor.pid, fields, parent);
    }
    if (parent === undefined && event.ppid !== undefined) {
      const live = this.#current.get(event.ppid);
      if (live && !live.ended) parent = live.node;
    }
    return parent;
  }
}

export function buildProcessTree(events: readonly RunEvent[]): readonly ProcessNode[] {
  const builder = new ProcessTreeBuilder();
  for (const event of events) builder.add(event);
  return builder.finish();
}
