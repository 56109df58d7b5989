/**
 * The run report: what every surface (exec, agent, Action) produces, what the
 * server ingests, and what `runwall report` prints. Its JSON Schema is
 * generated from these definitions into schema/run-report.schema.json.
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  AgentEvent,
  ConnectionEvent,
  DetectionEvent,
  DnsEvent,
  EgressMode,
  FileEvent,
  HttpEvent,
  ProcessEvent,
  RunEvent,
  StepEvent,
  StepOutcome,
  TransportProtocol,
  Verdict,
} from './events.js';
import { REPORT_SCHEMA_VERSION } from './version.js';

export const EndpointKind = Type.Union([
  Type.Literal('domain'),
  Type.Literal('wildcard'),
  Type.Literal('ip'),
  Type.Literal('cidr'),
]);
export type EndpointKind = Static<typeof EndpointKind>;

/** One allowed-endpoints entry, validated and canonical. */
export const Endpoint = Type.Object(
  {
    kind: EndpointKind,
    /** Lower-case domain (wildcards without the `*.`), or an address / CIDR in canonical form. */
    host: Type.String(),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Canonical text, as it would be written in a policy: `*.example.com:443`, `[2001:db8::1]:443`. */
    text: Type.String(),
  },
  { $id: 'Endpoint' },
);
export type Endpoint = Static<typeof Endpoint>;

export const BlockListEntry = Type.Object(
  {
    kind: EndpointKind,
    /** Lower-case domain (wildcards without the `*.`), address or CIDR. */
    value: Type.String(),
    reason: Type.String({ minLength: 1 }),
    source: Type.Optional(Type.String()),
    /** Canonical text: `evil.test`, `*.evil.test`, `203.0.113.7`, `2001:db8::/32`. */
    text: Type.String(),
  },
  { $id: 'BlockListEntry' },
);
export type BlockListEntry = Static<typeof BlockListEntry>;

/**
 * One `allowed-source-writers` entry: a process (exe path, or a basename
 * matched against the exe, argv[0] and an interpreter's script) and/or path
 * globs relative to the workspace. Both given: both must match.
 */
export const SourceWriterRule = Type.Object(
  {
    process: Type.Optional(Type.String({ minLength: 1 })),
    paths: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** Canonical text, for the report and the excused finding. */
    text: Type.String(),
  },
  { $id: 'SourceWriterRule' },
);
export type SourceWriterRule = Static<typeof SourceWriterRule>;

/** The policy a run was enforced with, after flags, policy file and defaults were merged. */
export const EffectivePolicy = Type.Object(
  {
    egressPolicy: EgressMode,
    allowedEndpoints: Type.Array(Endpoint),
    blockList: Type.Array(BlockListEntry),
    dnsUpstream: Type.String(),
    disableFileMonitoring: Type.Boolean(),
    /** Writers and paths whose changes to source are excused (still reported, severity info). Absent in reports from before the key existed. */
    allowedSourceWriters: Type.Optional(Type.Array(SourceWriterRule)),
    /** Where each setting came from, for the report: `flag`, `policy-file:PATH`, `default`. */
    origins: Type.Record(Type.String(), Type.String()),
  },
  { $id: 'EffectivePolicy' },
);
export type EffectivePolicy = Static<typeof EffectivePolicy>;

export const DestinationSummary = Type.Object(
  {
    /** DNS name, or the address when it was reached without a name. */
    name: Type.String(),
    addresses: Type.Array(Type.String()),
    port: Type.Union([Type.Integer(), Type.Null()]),
    protocol: Type.Union([TransportProtocol, Type.Literal('dns')]),
    count: Type.Integer({ minimum: 1 }),
    verdict: Verdict,
    /** Executables that reached it, as `exe` paths or `pid:N` when unknown. */
    processes: Type.Array(Type.String()),
    /** The tool chains that reached it, root first: `npm → node → sh → curl`. */
    chains: Type.Optional(Type.Array(Type.String())),
  },
  { $id: 'DestinationSummary' },
);
export type DestinationSummary = Static<typeof DestinationSummary>;

export const RunSummary = Type.Object(
  {
    destinations: Type.Array(DestinationSummary),
    counts: Type.Object({
      events: Type.Integer(),
      allowed: Type.Integer(),
      blocked: Type.Integer(),
      attackBlocked: Type.Integer(),
      audit: Type.Integer(),
      detections: Type.Integer(),
    }),
    /** The run's overall verdict: the worst one of its events. */
    verdict: Verdict,
  },
  { $id: 'RunSummary' },
);
export type RunSummary = Static<typeof RunSummary>;

export const RecommendedPolicy = Type.Object(
  {
    egressPolicy: Type.Literal('block'),
    allowedEndpoints: Type.Array(Type.String()),
    /** Ready to paste into `allowed-endpoints:` (one entry per line). */
    allowedEndpointsText: Type.String(),
    /** Destinations left out, with why (block-list hits are never recommended). */
    excluded: Type.Array(Type.Object({ destination: Type.String(), reason: Type.String() })),
  },
  { $id: 'RecommendedPolicy' },
);
export type RecommendedPolicy = Static<typeof RecommendedPolicy>;

export const RunMetadata = Type.Object(
  {
    runId: Type.String(),
    surface: Type.Union([Type.Literal('exec'), Type.Literal('agent'), Type.Literal('action')]),
    tool: Type.Object({ name: Type.Literal('runwall'), version: Type.String() }),
    host: Type.String(),
    startedAt: Type.String(),
    endedAt: Type.String(),
    command: Type.Optional(Type.Array(Type.String())),
    /** The workflow job `runwall exec --workflow FILE --job ID` ran. */
    workflow: Type.Optional(Type.Object({ path: Type.String(), name: Type.Optional(Type.String()), job: Type.String() })),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    /** Signal that ended the command, when it was killed. */
    signal: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    ci: Type.Optional(
      Type.Object({
        provider: Type.String(),
        repository: Type.Optional(Type.String()),
        workflow: Type.Optional(Type.String()),
        job: Type.Optional(Type.String()),
        runId: Type.Optional(Type.String()),
        runAttempt: Type.Optional(Type.String()),
        ref: Type.Optional(Type.String()),
        sha: Type.Optional(Type.String()),
      }),
    ),
  },
  { $id: 'RunMetadata' },
);
export type RunMetadata = Static<typeof RunMetadata>;

/** Whether enforcement held for the whole run; a failure in block mode is never silent. */
export const EnforcementStatus = Type.Object(
  {
    enforced: Type.Boolean({ description: 'Block mode held from start to end (always false in audit mode).' }),
    failClosed: Type.Boolean({ description: 'Something failed and the job was left blocked.' }),
    problems: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), time: Type.String() })),
    sandbox: Type.Optional(
      Type.Object({
        droppedCapabilities: Type.Array(Type.String()),
        pidNamespace: Type.Boolean(),
        mountNamespace: Type.Boolean(),
      }),
    ),
  },
  { $id: 'EnforcementStatus' },
);
export type EnforcementStatus = Static<typeof EnforcementStatus>;

/** One step of the run, from its `step` events, with what happened in it. */
export const StepSummary = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    source: Type.Optional(Type.Union([Type.Literal('workflow'), Type.Literal('runner'), Type.Literal('marker')])),
    /** Absent while the step had not ended when the report was written. */
    outcome: Type.Optional(StepOutcome),
    conclusion: Type.Optional(StepOutcome),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    reason: Type.Optional(Type.String()),
    notes: Type.Optional(Type.Array(Type.String())),
    startedAt: Type.Optional(Type.String()),
    endedAt: Type.Optional(Type.String()),
    /** Events attributed to the step (its own begin/end events not counted). */
    events: Type.Integer({ minimum: 0 }),
  },
  { $id: 'StepSummary' },
);
export type StepSummary = Static<typeof StepSummary>;

/** One process of the job, as the process tree of the report lists it. */
export const ProcessNode = Type.Object(
  {
    /** Position in `processes` (a pid can be reused within a run; this cannot). */
    id: Type.Integer({ minimum: 0 }),
    /** `id` of the nearest ancestor in the list; absent for a root of the job's tree. */
    parent: Type.Optional(Type.Integer({ minimum: 0 })),
    pid: Type.Integer(),
    ppid: Type.Optional(Type.Integer()),
    name: Type.Optional(Type.String()),
    exe: Type.Optional(Type.String()),
    argv: Type.Optional(Type.Array(Type.String())),
    cwd: Type.Optional(Type.String()),
    uid: Type.Optional(Type.Integer()),
    /** Time of its (last) exec; absent for a process seen only as an ancestor (a forked shell). */
    startTime: Type.Optional(Type.String()),
    endTime: Type.Optional(Type.String()),
    exitCode: Type.Optional(Type.Integer()),
    step: Type.Optional(Type.String()),
    container: Type.Optional(Type.Object({ cgroup: Type.String(), id: Type.Optional(Type.String()), image: Type.Optional(Type.String()) })),
  },
  { $id: 'ProcessNode' },
);
export type ProcessNode = Static<typeof ProcessNode>;

export const RunReport = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    schemaVersion: Type.Literal(REPORT_SCHEMA_VERSION),
    run: RunMetadata,
    policy: EffectivePolicy,
    enforcement: EnforcementStatus,
    events: Type.Array(RunEvent),
    summary: RunSummary,
    /** The job's process tree, from its process events (absent when no process sensor ran). */
    processes: Type.Optional(Type.Array(ProcessNode)),
    /** The steps of the run in the order they began (skipped ones where they would have run). Absent when the run had no steps. */
    steps: Type.Optional(Type.Array(StepSummary)),
    recommendedPolicy: RecommendedPolicy,
  },
  { $id: 'RunReport', title: 'runwall run report' },
);
export type RunReport = Static<typeof RunReport>;

/** Every schema that the report references, for the generated JSON Schema file. */
export const REPORT_DEFINITIONS = {
  EgressMode,
  Verdict,
  DnsEvent,
  ConnectionEvent,
  HttpEvent,
  ProcessEvent,
  FileEvent,
  StepEvent,
  DetectionEvent,
  AgentEvent,
};
