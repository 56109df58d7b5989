/**
 * Event types of the run report, as TypeBox schemas: one definition gives both
 * the TypeScript type and the JSON Schema (schema/run-report.schema.json).
 * Events are one discriminated union on `kind`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const EgressMode = Type.Union([Type.Literal('audit'), Type.Literal('block')], {
  $id: 'EgressMode',
  description: 'audit: record and allow everything but the block list; block: deny what the policy does not allow.',
});
export type EgressMode = Static<typeof EgressMode>;

export const Verdict = Type.Union(
  [Type.Literal('allowed'), Type.Literal('blocked'), Type.Literal('attack-blocked'), Type.Literal('audit')],
  {
    $id: 'Verdict',
    description:
      'allowed: the policy allows it; blocked: the policy denied it; attack-blocked: the global block list denied it (every mode); audit: would have been blocked, let through in audit mode.',
  },
);
export type Verdict = Static<typeof Verdict>;

/** Which rule decided a verdict, and how to change the outcome. */
export const RuleRef = Type.Object(
  {
    source: Type.Union([
      Type.Literal('allowed-endpoints'),
      Type.Literal('block-list'),
      Type.Literal('default-deny'),
      Type.Literal('builtin'),
    ]),
    /** The policy entry that matched, canonical (e.g. `*.example.com:443`). */
    entry: Type.Optional(Type.String()),
    /** Block-list reason, or why a builtin rule exists. */
    reason: Type.Optional(Type.String()),
    /** A sentence a person can read: why this verdict. */
    explanation: Type.String(),
    /** What to add to the policy to allow it (absent for the block list: it cannot be overridden). */
    suggestion: Type.Optional(Type.String()),
  },
  { $id: 'RuleRef' },
);
export type RuleRef = Static<typeof RuleRef>;

export const ProcessRef = Type.Object(
  {
    pid: Type.Integer(),
    ppid: Type.Optional(Type.Integer()),
    exe: Type.Optional(Type.String()),
    argv: Type.Optional(Type.Array(Type.String())),
    /** The tool as a person names it: the script an interpreter runs (`npm`), else the executable's base name. */
    name: Type.Optional(Type.String()),
    /** Ancestors from the parent up to the job's root, nearest first. */
    ancestry: Type.Optional(
      Type.Array(Type.Object({ pid: Type.Integer(), exe: Type.Optional(Type.String()), name: Type.Optional(Type.String()) })),
    ),
  },
  { $id: 'ProcessRef' },
);
export type ProcessRef = Static<typeof ProcessRef>;

const EventBase = {
  /** Position in the run's event stream, from 1, without gaps. */
  seq: Type.Integer({ minimum: 1 }),
  /** ISO 8601 time the sensor saw it. */
  time: Type.String(),
  process: Type.Optional(ProcessRef),
  /**
   * When the process could not be told exactly (several processes reached the
   * same destination within the same moment): every one that could have, and
   * `process` is absent. runwall does not guess.
   */
  processCandidates: Type.Optional(Type.Array(ProcessRef)),
  /** Id of the step it belongs to (a `step` event with this id names it). */
  step: Type.Optional(Type.String()),
  /**
   * How `step` was found: `process-tree` (the event's process descends from the
   * step's process), or `time-window` (the step open at the event's time: an
   * explicit marker step, or no process known for the event).
   */
  stepAttribution: Type.Optional(Type.Union([Type.Literal('process-tree'), Type.Literal('time-window')])),
  /** When decoding or attribution failed, the error as data. */
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
};

export const DnsAnswer = Type.Object({
  name: Type.String(),
  type: Type.String(),
  ttl: Type.Integer(),
  data: Type.String(),
});
export type DnsAnswer = Static<typeof DnsAnswer>;

export const DnsEvent = Type.Object(
  {
    kind: Type.Literal('dns'),
    ...EventBase,
    name: Type.String(),
    qtype: Type.String(),
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp')]),
    /** The client that asked (job side). */
    client: Type.String(),
    verdict: Verdict,
    rule: RuleRef,
    /** DNS response code sent back to the client (NOERROR, NXDOMAIN, SERVFAIL, ...). */
    rcode: Type.String(),
    answers: Type.Array(DnsAnswer),
    /** Addresses admitted to the firewall for this answer, `ip:port`. */
    admitted: Type.Array(Type.String()),
    /** How many identical exchanges this event stands for (repeats folded; absent: 1). Answers and admissions are the first one's. */
    count: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { $id: 'DnsEvent' },
);
export type DnsEvent = Static<typeof DnsEvent>;

export const TransportProtocol = Type.Union([
  Type.Literal('tcp'),
  Type.Literal('udp'),
  Type.Literal('icmp'),
  Type.Literal('icmpv6'),
  Type.Literal('sctp'),
  Type.Literal('other'),
]);
export type TransportProtocol = Static<typeof TransportProtocol>;

export const ConnectionEvent = Type.Object(
  {
    kind: Type.Literal('connection'),
    ...EventBase,
    protocol: TransportProtocol,
    family: Type.Union([Type.Literal(4), Type.Literal(6)]),
    source: Type.Optional(Type.String()),
    /** Source port of the first packet (TCP/UDP): with `source`, it names the socket. */
    sourcePort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    destination: Type.String(),
    port: Nullable(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** Name the destination address was learned from by DNS, when known. */
    name: Type.Optional(Type.String()),
    verdict: Verdict,
    rule: RuleRef,
    /** Identical attempts folded into this event (retransmits of one blocked flow). */
    count: Type.Integer({ minimum: 1 }),
  },
  { $id: 'ConnectionEvent' },
);
export type ConnectionEvent = Static<typeof ConnectionEvent>;

export const HttpEvent = Type.Object(
  {
    kind: Type.Literal('http'),
    ...EventBase,
    host: Type.String(),
    destination: Type.String(),
    port: Type.Integer(),
    tls: Type.Boolean(),
    method: Type.Optional(Type.String()),
    path: Type.Optional(Type.String()),
    status: Type.Optional(Type.Integer()),
    verdict: Verdict,
    rule: RuleRef,
    /** Identical flows folded into this event (same name, address, port and verdict, seen close together); absent: 1. */
    count: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { $id: 'HttpEvent' },
);
export type HttpEvent = Static<typeof HttpEvent>;

export const ProcessEvent = Type.Object(
  {
    kind: Type.Literal('process'),
    ...EventBase,
    action: Type.Union([Type.Literal('exec'), Type.Literal('fork'), Type.Literal('exit')]),
    pid: Type.Integer(),
    ppid: Type.Optional(Type.Integer()),
    exe: Type.Optional(Type.String()),
    argv: Type.Optional(Type.Array(Type.String())),
    cwd: Type.Optional(Type.String()),
    uid: Type.Optional(Type.Integer()),
    exitCode: Type.Optional(Type.Integer()),
    container: Type.Optional(
      Type.Object({
        cgroup: Type.String(),
        /** Container id from the cgroup path (Docker, containerd, Podman), when the process runs in one. */
        id: Type.Optional(Type.String()),
        image: Type.Optional(Type.String()),
      }),
    ),
  },
  { $id: 'ProcessEvent' },
);
export type ProcessEvent = Static<typeof ProcessEvent>;

export const FileEvent = Type.Object(
  {
    kind: Type.Literal('file'),
    ...EventBase,
    action: Type.Union([Type.Literal('create'), Type.Literal('write'), Type.Literal('rename'), Type.Literal('delete')]),
    /** Relative to the watched workspace; a folded event names a directory, ending in `/`. */
    path: Type.String(),
    to: Type.Optional(Type.String()),
    source: Type.Boolean({ description: 'The file is source (tracked when monitoring started).' }),
    /** SHA-256 of a source file's content after the change, as the sensor read it (null: the file is gone). */
    sha256: Type.Optional(Nullable(Type.String())),
    /** Events of this action under the directory `path` folded into this one (non-source files only). */
    count: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { $id: 'FileEvent' },
);
export type FileEvent = Static<typeof FileEvent>;

export const StepOutcome = Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('cancelled'), Type.Literal('skipped')], { $id: 'StepOutcome' });
export type StepOutcome = Static<typeof StepOutcome>;

/**
 * A step boundary. A step that runs has a `begin` (whose `process` is the
 * step's root process when runwall knows it) and an `end`; a skipped step has
 * only an `end` with outcome `skipped` and the reason.
 */
export const StepEvent = Type.Object(
  {
    kind: Type.Literal('step'),
    ...EventBase,
    action: Type.Union([Type.Literal('begin'), Type.Literal('end')]),
    id: Type.String(),
    name: Type.String(),
    /** What found the step: a workflow run by `runwall exec --workflow`, the CI runner's own process tree, or an explicit marker. */
    source: Type.Optional(Type.Union([Type.Literal('workflow'), Type.Literal('runner'), Type.Literal('marker')])),
    outcome: Type.Optional(StepOutcome),
    /** The outcome after `continue-on-error` (a tolerated failure concludes as success). */
    conclusion: Type.Optional(StepOutcome),
    exitCode: Type.Optional(Nullable(Type.Integer())),
    /** Why it was skipped or failed, as a sentence. */
    reason: Type.Optional(Type.String()),
    /** What else a reader should know (secrets that were empty locally, ignored file commands…). */
    notes: Type.Optional(Type.Array(Type.String())),
  },
  { $id: 'StepEvent' },
);
export type StepEvent = Static<typeof StepEvent>;

export const Severity = Type.Union([
  Type.Literal('info'),
  Type.Literal('low'),
  Type.Literal('medium'),
  Type.Literal('high'),
  Type.Literal('critical'),
]);
export type Severity = Static<typeof Severity>;

export const DetectionEvent = Type.Object(
  {
    kind: Type.Literal('detection'),
    ...EventBase,
    id: Type.String({ description: 'Detection id, e.g. `recon-metadata`, `source-tampered`.' }),
    severity: Severity,
    title: Type.String(),
    evidence: Type.Record(Type.String(), Type.Unknown()),
    remedy: Type.String({ description: 'What to do about it.' }),
  },
  { $id: 'DetectionEvent' },
);
export type DetectionEvent = Static<typeof DetectionEvent>;

export const AgentEvent = Type.Object(
  {
    kind: Type.Literal('agent'),
    ...EventBase,
    action: Type.Union([
      Type.Literal('start'),
      Type.Literal('enforcing'),
      Type.Literal('stop'),
      Type.Literal('tamper'),
      Type.Literal('error'),
      Type.Literal('fail-closed'),
      Type.Literal('cleanup'),
      /** A sensor's state: turned off by the policy, or what it saw when it stopped. */
      Type.Literal('sensor'),
    ]),
    message: Type.String(),
    code: Type.Optional(Type.String()),
  },
  { $id: 'AgentEvent' },
);
export type AgentEvent = Static<typeof AgentEvent>;

export const RunEvent = Type.Union([
  DnsEvent,
  ConnectionEvent,
  HttpEvent,
  ProcessEvent,
  FileEvent,
  StepEvent,
  DetectionEvent,
  AgentEvent,
]);
export type RunEvent = Static<typeof RunEvent>;
export type EventKind = RunEvent['kind'];

/** An event before the pipeline gives it its place in the stream. */
export type UnsequencedEvent = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 'seq'> : never) : never;
