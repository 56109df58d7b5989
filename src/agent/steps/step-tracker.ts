/**
 * Which step an event belongs to. A step is a process tree: the tracker
 * learns each step's root process from its `begin` event, and gives an event
 * the step its process descends from, so a server started in the background
 * in step 1 is still step 1 when it connects during step 3. Steps without a
 * process (explicit markers, or a run without the process sensor) own the
 * time between their begin and end instead, and the event says so
 * (`stepAttribution: 'time-window'`).
 *
 * Each process's step is learnt when it runs a program (the process table's
 * exec listener), while its creator chain is fresh, and kept until it exits.
 */
import { RunwallError, type StepEvent, type UnsequencedEvent } from '../../protocol/index.js';
import { withFields } from '../with-fields.js';

/** The part of the process sensor's table this needs (see sensors/process/process-table.ts). */
export interface ProcessLike {
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly startTime: string;
  readonly endTime: string | null;
  readonly exitCode: number | null;
}

export interface ProcessLookup {
  get(pid: number): ProcessLike | undefined;
  /** Nearest first, up to the job's root (or pid 1). */
  ancestry(pid: number): readonly ProcessLike[];
  onExec(listener: (info: ProcessLike) => void): () => void;
  onExit(listener: (info: ProcessLike) => void): () => void;
}

export type StepSource = NonNullable<StepEvent['source']>;

interface TrackedStep {
  readonly id: string;
  readonly name: string;
  readonly source: StepSource | null;
  readonly beginMs: number;
  endMs: number | null;
  /** Host pid of the step's root process, when a process runs it. */
  readonly root: number | null;
}

/** How far up a creator chain the tracker looks: deeper trees than this are not a build's. */
const MAX_WALK = 256;
/** Processes whose step is remembered at once; the oldest are forgotten beyond this. */
const MAX_REMEMBERED = 200_000;
/** A process that started this long after its pid's step ended is a new process with a reused pid. */
const PID_REUSE_SLACK_MS = 1_000;
/** Clocks of the kernel's records and of the sensors differ by up to a few jiffies. */
const LIVENESS_SLACK_MS = 50;

export class StepTracker {
  readonly #steps = new Map<string, TrackedStep>();
  /** In the order they began. */
  readonly #order: TrackedStep[] = [];
  readonly #byRoot = new Map<number, TrackedStep>();
  readonly #byPid = new Map<number, string>();
  readonly #processes: ProcessLookup | null;
  #counter = 0;

  constructor(processes: ProcessLookup | null) {
    this.#processes = processes;
  }

  get hasProcessTable(): boolean {
    return this.#processes !== null;
  }

  /** A fresh id for a step runwall found itself (runner steps, markers): `step-N`. */
  nextId(): string {
    for (;;) {
      this.#counter += 1;
      const id = `step-${this.#counter}`;
      if (!this.#steps.has(id)) return id;
    }
  }

  /** The event for an explicit marker (`runwall agent step begin|end NAME`); `end` closes the latest open step of that name. */
  markerEvent(action: 'begin' | 'end', name: string, time: string = new Date().toISOString()): UnsequencedEvent {
    if (action === 'begin') return { kind: 'step', time, action, id: this.nextId(), name, source: 'marker' };
    const open = [...this.#order].reverse().find((step) => step.name === name && step.endMs === null);
    if (open === undefined) throw new RunwallError('RW_CONTROL_FAILED', `no step named '${name}' is open`);
    return { kind: 'step', time, action, id: open.id, name, source: 'marker', outcome: 'success' };
  }

  /** Steps that began and have not ended, oldest first. */
  openSteps(): { id: string; name: string; root: number | null }[] {
    return this.#order.filter((step) => step.endMs === null).map(({ id, name, root }) => ({ id, name, root }));
  }

  isRoot(pid: number): boolean {
    const step = this.#byRoot.get(pid);
    return step !== undefined && step.endMs === null;
  }

  /** A step event passing through the pipeline. */
  observe(event: Extract<UnsequencedEvent, { kind: 'step' }>): void {
    const at = timeOf(event.time);
    const known = this.#steps.get(event.id);
    if (event.action === 'begin') {
      if (known !== undefined) return;
      const root = event.process?.pid ?? null;
      const step: TrackedStep = { id: event.id, name: event.name, source: event.source ?? null, beginMs: at, endMs: null, root };
      this.#steps.set(step.id, step);
      this.#order.push(step);
      if (root !== null) this.#byRoot.set(root, step);
      return;
    }
    if (known !== undefined) known.endMs = at;
  }

  /** A program ran: remember its step while its creator chain is fresh. */
  learnExec(info: ProcessLike): void {
    const id = this.stepOfProcess(info.pid);
    if (id !== undefined) this.#remember(info.pid, id);
  }

  /** A process ended: its pid may be reused (a step's root stays known by its step, with a check for reuse). */
  forget(info: ProcessLike): void {
    this.#byPid.delete(info.pid);
  }

  /** The step whose process tree holds `pid`, or undefined. */
  stepOfProcess(pid: number): string | undefined {
    const remembered = this.#byPid.get(pid);
    if (remembered !== undefined) return remembered;
    const processes = this.#processes;
    if (processes === null) return undefined;
    const self = processes.get(pid);
    // The creator chain: the table's ancestry (creator records, right across pid reuse), then on up
    // through ppids the ancestry leaves out (the sandbox's own plumbing between a step's root and its command).
    const chain: number[] = [pid];
    for (const ancestor of processes.ancestry(pid)) chain.push(ancestor.pid);
    let next = chain.length > 1 ? processes.get(chain[chain.length - 1] as number)?.ppid : self?.ppid;
    while (next !== undefined && next > 1 && chain.length < MAX_WALK && !chain.includes(next)) {
      chain.push(next);
      next = processes.get(next)?.ppid;
    }
    for (let i = 0; i < chain.length; i += 1) {
      const candidate = chain[i] as number;
      const id = this.#byPid.get(candidate) ?? this.#rootStep(candidate, processes.get(candidate));
      if (id === undefined) continue;
      // The next event of these processes is a lookup, not a walk (forget() drops each at its exit).
      for (const below of chain.slice(0, i)) this.#remember(below, id);
      return id;
    }
    return undefined;
  }

  #rootStep(pid: number, info: ProcessLike | undefined): string | undefined {
    const step = this.#byRoot.get(pid);
    if (step === undefined) return undefined;
    // A pid reused after its step ended is not that step's root.
    if (step.endMs !== null && info !== undefined && timeOf(info.startTime) > step.endMs + PID_REUSE_SLACK_MS) return undefined;
    return step.id;
  }

  /** The step open at `timeMs` (the latest begun), among marker steps only when `markersOnly`. */
  stepAt(timeMs: number, markersOnly: boolean): string | undefined {
    for (let i = this.#order.length - 1; i >= 0; i -= 1) {
      const step = this.#order[i] as TrackedStep;
      if (markersOnly && step.root !== null) continue;
      if (step.beginMs <= timeMs && (step.endMs === null || timeMs <= step.endMs)) return step.id;
    }
    return undefined;
  }

  #remember(pid: number, id: string): void {
    if (this.#byPid.size >= MAX_REMEMBERED) {
      const oldest = this.#byPid.keys().next();
      if (!oldest.done) this.#byPid.delete(oldest.value);
    }
    this.#byPid.set(pid, id);
  }

  /** The pipeline enricher: sets `step` (and how it was found) on every event of the job. */
  readonly enrich = (event: UnsequencedEvent): UnsequencedEvent => {
    if (event.kind === 'step') {
      this.observe(event);
      return event.step === undefined ? withFields(event, { step: event.id }) : event;
    }
    // runwall's own lifecycle is not the job's; an event that already names its step keeps it.
    if (event.step !== undefined || event.kind === 'agent' || this.#order.length === 0) return event;
    const pid = event.kind === 'process' ? event.pid : event.process?.pid;
    let known = false;
    if (pid !== undefined && this.#processes !== null) {
      const id = this.stepOfProcess(pid);
      if (id !== undefined) return withFields(event, { step: id, stepAttribution: 'process-tree' as const });
      known = this.#processes.get(pid) !== undefined;
    } else if (event.processCandidates !== undefined && event.processCandidates.length > 0 && this.#processes !== null) {
      // The process sensor could not tell which of several processes it was. One that was not alive at the
      // event's time was not it; if those left are all one step's, so is the event.
      const timeMs = timeOf(event.time);
      const processes = this.#processes;
      const alive = event.processCandidates.filter((candidate) => {
        const info = processes.get(candidate.pid);
        if (info === undefined) return true;
        const ended = info.endTime === null ? null : timeOf(info.endTime);
        return timeOf(info.startTime) <= timeMs + LIVENESS_SLACK_MS && (ended === null || ended >= timeMs - LIVENESS_SLACK_MS);
      });
      const steps = new Set((alive.length > 0 ? alive : event.processCandidates).map((candidate) => this.stepOfProcess(candidate.pid)));
      const [only] = steps;
      if (steps.size === 1 && only !== undefined) return withFields(event, { step: only, stepAttribution: 'process-tree' as const });
    }
    // A process known to be outside every step's tree belongs only to an explicit marker's time.
    const id = this.stepAt(timeOf(event.time), known);
    return id === undefined ? event : withFields(event, { step: id, stepAttribution: 'time-window' as const });
  };
}

function timeOf(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? Date.now() : ms;
}
