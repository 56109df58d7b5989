// The step tracker: events get the step whose process tree they come from, or the step open at their time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StepTracker, type ProcessLike, type ProcessLookup } from '../../../src/agent/steps/step-tracker.js';
import type { RunEvent, UnsequencedEvent } from '../../../src/protocol/index.js';

/** A process table as the process sensor keeps it: creator links survive the creator's exit; ancestry stops at the job's root. */
class FakeTable implements ProcessLookup {
  readonly byPid = new Map<number, ProcessLike & { inJob: boolean }>();
  readonly #exec: ((info: ProcessLike) => void)[] = [];
  readonly #exit: ((info: ProcessLike) => void)[] = [];

  add(pid: number, ppid: number, options: { inJob?: boolean; startTime?: string; exe?: string } = {}): ProcessLike {
    const info = { pid, ppid, exe: options.exe ?? '/bin/sh', argv: ['sh'], startTime: options.startTime ?? new Date().toISOString(), endTime: null, exitCode: null, inJob: options.inJob ?? true };
    this.byPid.set(pid, info);
    for (const listener of this.#exec) listener(info);
    return info;
  }

  exit(pid: number): void {
    const info = this.byPid.get(pid);
    if (info) for (const listener of this.#exit) listener(info);
  }

  get(pid: number): ProcessLike | undefined {
    return this.byPid.get(pid);
  }

  ancestry(pid: number): readonly ProcessLike[] {
    const out: ProcessLike[] = [];
    let at = this.byPid.get(pid);
    for (let i = 0; at && i < 100; i += 1) {
      const parent = this.byPid.get(at.ppid);
      if (!parent || !parent.inJob) break;
      out.push(parent);
      at = parent;
    }
    return out;
  }

  onExec(listener: (info: ProcessLike) => void): () => void {
    this.#exec.push(listener);
    return () => undefined;
  }

  onExit(listener: (info: ProcessLike) => void): () => void {
    this.#exit.push(listener);
    return () => undefined;
  }
}

function tracked(table: FakeTable | null): StepTracker {
  const tracker = new StepTracker(table);
  if (table) {
    table.onExec((info) => tracker.learnExec(info));
    table.onExit((info) => tracker.forget(info));
  }
  return tracker;
}

const at = (ms: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString();

function step(action: 'begin' | 'end', id: string, time: string, pid?: number): UnsequencedEvent {
  return { kind: 'step', time, action, id, name: id.toUpperCase(), source: 'workflow', ...(pid !== undefined ? { process: { pid } } : {}) };
}

function dns(time: string, pid?: number): UnsequencedEvent {
  return {
    kind: 'dns',
    time,
    name: 'a.test',
    qtype: 'A',
    transport: 'udp',
    client: '100.64.0.2',
    verdict: 'allowed',
    rule: { source: 'allowed-endpoints', explanation: 'x' },
    rcode: 'NOERROR',
    answers: [],
    admitted: [],
    ...(pid !== undefined ? { process: { pid } } : {}),
  };
}

type Stepped = Pick<RunEvent, 'step' | 'stepAttribution'>;
const stepOf = (event: UnsequencedEvent): Stepped => ({ step: event.step, stepAttribution: event.stepAttribution });

describe('StepTracker', () => {
  it('a step event names itself; events from a step root process tree belong to that step', () => {
    const table = new FakeTable();
    const tracker = tracked(table);
    expect(tracker.enrich(step('begin', 'build', at(0), 100)).step).toBe('build');
    // Root (host-side launcher) → step init (sandbox plumbing, not in the job) → the step's shell → curl.
    table.add(100, 1, { inJob: false });
    table.add(101, 100, { inJob: false });
    table.add(102, 101);
    table.add(103, 102);
    expect(stepOf(tracker.enrich(dns(at(10), 103)))).toEqual({ step: 'build', stepAttribution: 'process-tree' });
  });

  it('a background process of step 1 is step 1 when it connects during step 2, even after its parents exited', () => {
    const table = new FakeTable();
    const tracker = tracked(table);
    tracker.enrich(step('begin', 'one', at(0), 100));
    table.add(100, 1, { inJob: false });
    table.add(101, 100);
    table.add(102, 101); // a subshell left running in the background
    table.exit(101);
    table.exit(100);
    tracker.enrich(step('end', 'one', at(50)));
    tracker.enrich(step('begin', 'two', at(60), 200));
    table.add(200, 1, { inJob: false });
    table.add(201, 200);
    table.add(103, 102); // the background subshell runs curl during step two
    expect(stepOf(tracker.enrich(dns(at(70), 103)))).toEqual({ step: 'one', stepAttribution: 'process-tree' });
    expect(stepOf(tracker.enrich(dns(at(70), 201)))).toEqual({ step: 'two', stepAttribution: 'process-tree' });
  });

  it('a pid reused after its step ended is not that step', () => {
    const table = new FakeTable();
    const tracker = tracked(table);
    tracker.enrich(step('begin', 'one', at(0), 100));
    tracker.enrich(step('end', 'one', at(10)));
    table.add(100, 1, { inJob: true, startTime: at(5_000) });
    expect(tracker.enrich(dns(at(5_100), 100)).step).toBeUndefined();
  });

  it('without a process table, events get the step open at their time, and say so', () => {
    const tracker = tracked(null);
    tracker.enrich(step('begin', 'one', at(0), 100));
    tracker.enrich(step('end', 'one', at(100)));
    tracker.enrich(step('begin', 'two', at(200), 200));
    expect(stepOf(tracker.enrich(dns(at(50), 999)))).toEqual({ step: 'one', stepAttribution: 'time-window' });
    expect(tracker.enrich(dns(at(150))).step).toBeUndefined();
    expect(stepOf(tracker.enrich(dns(at(250))))).toEqual({ step: 'two', stepAttribution: 'time-window' });
  });

  it("a process known to be outside every step's tree gets no step, except an explicit marker's", () => {
    const table = new FakeTable();
    const tracker = tracked(table);
    table.add(500, 1, { inJob: false });
    tracker.enrich(step('begin', 'tree', at(0), 100));
    expect(tracker.enrich(dns(at(10), 500)).step).toBeUndefined();
    const marker = tracker.markerEvent('begin', 'deploy', at(20));
    tracker.enrich(marker);
    expect(stepOf(tracker.enrich(dns(at(30), 500)))).toEqual({ step: marker.kind === 'step' ? marker.id : '', stepAttribution: 'time-window' });
  });

  it('markers: begin gives a fresh id, end closes the latest open step of that name, an unknown end is refused', () => {
    const tracker = tracked(null);
    const first = tracker.markerEvent('begin', 'build', at(0));
    tracker.enrich(first);
    const second = tracker.markerEvent('begin', 'build', at(10));
    tracker.enrich(second);
    expect([first, second].map((event) => (event.kind === 'step' ? event.id : ''))).toEqual(['step-1', 'step-2']);
    const end = tracker.markerEvent('end', 'build', at(20));
    expect(end).toMatchObject({ action: 'end', id: 'step-2', source: 'marker' });
    tracker.enrich(end);
    expect(tracker.openSteps().map((s) => s.id)).toEqual(['step-1']);
    expect(() => tracker.markerEvent('end', 'test', at(30))).toThrow(/no step named 'test' is open/);
  });

  it("candidates from one step give the event that step; from several, the event keeps to time", () => {
    const table = new FakeTable();
    const tracker = tracked(table);
    tracker.enrich(step('begin', 'one', at(0), 100));
    table.add(100, 1, { inJob: false });
    table.add(101, 100);
    table.add(102, 100);
    const candidates = (pids: number[]): UnsequencedEvent => ({ ...dns(at(10)), processCandidates: pids.map((pid) => ({ pid })) });
    expect(stepOf(tracker.enrich(candidates([101, 102])))).toEqual({ step: 'one', stepAttribution: 'process-tree' });
    table.add(600, 1, { inJob: false });
    expect(stepOf(tracker.enrich(candidates([101, 600])))).toEqual({ step: 'one', stepAttribution: 'time-window' });
  });

  it("runwall's own agent events and events that already name a step are left alone", () => {
    const tracker = tracked(null);
    tracker.enrich(step('begin', 'one', at(0)));
    const agent: UnsequencedEvent = { kind: 'agent', time: at(5), action: 'error', message: 'x' };
    expect(tracker.enrich(agent)).toBe(agent);
    const named = { ...dns(at(5)), step: 'other' };
    expect(tracker.enrich(named)).toBe(named);
  });

  it('property: every process descending from a step root maps to that root, whatever the tree and exit order', () => {
    fc.assert(
      fc.property(
        // Each new process picks a parent among the earlier ones; roots are 0..steps-1.
        fc.integer({ min: 1, max: 4 }).chain((steps) =>
          fc.tuple(fc.constant(steps), fc.array(fc.nat(), { minLength: 1, maxLength: 60 }), fc.array(fc.boolean(), { minLength: 60, maxLength: 60 })),
        ),
        ([steps, parents, exits]) => {
          const table = new FakeTable();
          const tracker = tracked(table);
          const rootOf = new Map<number, number>();
          for (let s = 0; s < steps; s += 1) {
            const pid = 1_000 + s;
            tracker.enrich(step('begin', `s${s}`, at(s * 10), pid));
            table.add(pid, 1, { inJob: false });
            rootOf.set(pid, s);
          }
          const pids = [...rootOf.keys()];
          parents.forEach((choice, i) => {
            const pid = 2_000 + i;
            const parent = pids[choice % pids.length] as number;
            table.add(pid, parent);
            rootOf.set(pid, rootOf.get(parent) as number);
            pids.push(pid);
            if (exits[i]) table.exit(parent);
          });
          for (const pid of pids) expect(tracker.stepOfProcess(pid)).toBe(`s${rootOf.get(pid)}`);
        },
      ),
      { numRuns: 200 },
    );
  });
});
