/**
 * One object that holds a run's detection state: feed it what the sensors saw
 * (execs, network events, memory accesses, shell descriptors, guarded-file
 * changes) and it returns the detections to emit, each reported once. Pure:
 * no clock, no I/O; times come with the inputs.
 */
import type { ConnectionEvent, DnsEvent, HttpEvent } from '../protocol/index.js';
import { detectAgentSignal, detectGuardedFileChange, detectMemoryAccess, type AgentSignal, type GuardedFileChange, type MemoryAccess } from './access-rules.js';
import { draftOf, type DetectionDraft, type DetectionId, type Finding, type ProcessFacts } from './detection.js';
import { TunnelTracker, type TunnelThresholds } from './dns-tunnel.js';
import { detectExec } from './exec-rules.js';
import { detectRecon, reconKey } from './recon-rules.js';
import { detectPipedProgram, detectReverseShell, type PipedProgram, type ShellStdio } from './shell-rules.js';

export type DetectorInput =
  | { readonly kind: 'exec'; readonly time: string; readonly process: ProcessFacts }
  | { readonly kind: 'network'; readonly event: DnsEvent | ConnectionEvent | HttpEvent; readonly process?: ProcessFacts }
  | { readonly kind: 'memory-access'; readonly time: string; readonly access: MemoryAccess }
  | { readonly kind: 'shell-stdio'; readonly time: string; readonly stdio: ShellStdio }
  | { readonly kind: 'piped-program'; readonly time: string; readonly piped: PipedProgram }
  | { readonly kind: 'guarded-file'; readonly time: string; readonly change: GuardedFileChange }
  | { readonly kind: 'agent-signal'; readonly time: string; readonly signal: AgentSignal };

export interface DetectorOptions {
  /** Detections of one id reported per run; later ones are counted, not emitted, so a noisy build cannot flood the report. */
  readonly maxPerId?: number;
  readonly tunnel?: TunnelThresholds;
}

const DEFAULT_MAX_PER_ID = 50;
/** Distinct keys remembered for de-duplication; beyond this the oldest are forgotten. */
const MAX_KEYS = 20_000;

export class Detector {
  readonly #seen = new Set<string>();
  readonly #counts = new Map<DetectionId, number>();
  readonly #suppressed = new Map<DetectionId, number>();
  readonly #tunnel: TunnelTracker;
  readonly #maxPerId: number;

  constructor(options: DetectorOptions = {}) {
    this.#tunnel = new TunnelTracker(options.tunnel);
    this.#maxPerId = options.maxPerId ?? DEFAULT_MAX_PER_ID;
  }

  observe(input: DetectorInput): DetectionDraft[] {
    return this.#admit(this.#findings(input));
  }

  /** Detections left out because their id reached its limit, by id. */
  get suppressed(): ReadonlyMap<DetectionId, number> {
    return this.#suppressed;
  }

  #findings(input: DetectorInput): Finding[] {
    switch (input.kind) {
      case 'exec':
        return detectExec(input.process, input.time);
      case 'network': {
        const findings = detectRecon(input.event, input.process);
        if (input.event.kind === 'dns') {
          const tunnel = this.#tunnel.observe(input.event, input.process);
          if (tunnel) findings.push(tunnel);
        }
        return findings;
      }
      case 'memory-access':
        return detectMemoryAccess(input.access, input.time);
      case 'shell-stdio':
        return detectReverseShell(input.stdio, input.time);
      case 'piped-program':
        return detectPipedProgram(input.piped, input.time);
      case 'guarded-file':
        return detectGuardedFileChange(input.change, input.time);
      case 'agent-signal':
        return detectAgentSignal(input.signal, input.time);
    }
  }

  #admit(findings: readonly Finding[]): DetectionDraft[] {
    const drafts: DetectionDraft[] = [];
    for (const finding of findings) {
      const key = keyOf(finding);
      if (this.#seen.has(key)) continue;
      if (this.#seen.size >= MAX_KEYS) {
        const oldest = this.#seen.values().next().value;
        if (oldest !== undefined) this.#seen.delete(oldest);
      }
      this.#seen.add(key);
      const count = (this.#counts.get(finding.id) ?? 0) + 1;
      this.#counts.set(finding.id, count);
      if (count > this.#maxPerId) {
        this.#suppressed.set(finding.id, (this.#suppressed.get(finding.id) ?? 0) + 1);
        continue;
      }
      const draft = draftOf(finding);
      drafts.push(
        count === this.#maxPerId
          ? { ...draft, evidence: { ...draft.evidence, note: `the ${this.#maxPerId}th ${finding.id} detection of this run: further ones are counted, not reported` } }
          : draft,
      );
    }
    return drafts;
  }
}

/** What makes two findings the same detection (reported once). */
function keyOf(finding: Finding): string {
  const e = finding.evidence;
  const pid = finding.process?.pid ?? '-';
  switch (finding.id) {
    case 'recon-ip-echo':
    case 'recon-metadata':
      return reconKey(finding);
    case 'dns-tunnelling':
      return `${finding.id}:${String(e['zone'])}`;
    case 'process-memory-read':
      return `${finding.id}:${pid}:${String((e['target'] as { pid?: number } | undefined)?.pid)}`;
    case 'guard-tamper':
      return `${finding.id}:${pid}:${String(e['what'])}:${String(e['path'] ?? '')}`;
    default:
      return `${finding.id}:${pid}`;
  }
}
