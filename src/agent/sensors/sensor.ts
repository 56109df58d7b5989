/**
 * What every sensor (process, file, ...) gets and gives. Sensors only emit
 * events onto the pipeline; enrichers (process attribution, steps) fill in
 * `process` and `step` before an event is sequenced; detectors subscribe and
 * emit detections. Each sensor registers one factory in ./registry.ts.
 */
import type { EffectivePolicy } from '../../protocol/index.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';

export type SensorScope =
  /** `runwall exec`: the job is everything in this cgroup (v2 path relative to the root) and network namespace. */
  | { readonly kind: 'exec'; readonly cgroup: string; readonly netns: string }
  /** `runwall agent`: the whole machine; the job's processes are marked as the sensors find them. */
  | { readonly kind: 'agent'; readonly agentPid: number };

export interface SensorContext {
  readonly pipeline: EventPipeline;
  readonly scope: SensorScope;
  readonly policy: EffectivePolicy;
  /** The tree watched for file changes (`--workspace`), or null. */
  readonly workspace: string | null;
  /** Shared state sensors publish for each other (e.g. the process table), by well-known key. */
  readonly shared: Map<string, unknown>;
}

/** A problem a running sensor met (events lost, records it could not decode); it goes into the report's enforcement problems. */
export interface SensorProblem {
  readonly code: string;
  readonly message: string;
  readonly time: string;
}

export interface Sensor {
  readonly name: string;
  /** Problems met while running; read after stop(). */
  readonly problems?: readonly SensorProblem[];
  /** Flushes what it holds onto the pipeline and releases its kernel resources. */
  stop(): Promise<void>;
}

/** Starts a sensor, or returns null when it does not apply (e.g. file monitoring disabled). Throws RunwallError when it cannot start. */
export type SensorFactory = (context: SensorContext) => Promise<Sensor | null>;
