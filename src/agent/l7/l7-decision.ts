/**
 * Judges the start of a TLS or plain-HTTP flow against the policy and says it
 * as an `http` event. Pure.
 *
 * A flow is allowed iff every name it asks for (the SNI; the Host and an
 * absolute-form target's host) is allowed by the policy on this port, and no
 * name is on the block list. A flow without a name (TLS without SNI, HTTP
 * without Host, or a start that could not be read) is allowed only to an
 * ip/cidr allowed-endpoints network. So an address the firewall admitted for
 * `allowed.test` does not open every other name served from it.
 *
 * The block list is enforced in every mode (attack-blocked); other refusals
 * are `blocked` in block mode and `audit` (let through, recorded) in audit mode.
 */
import type { CompiledPolicy, ConnectionDecision } from '../../policy/index.js';
import { canonicalIp } from '../../policy/index.js';
import type { HttpEvent, RuleRef, Verdict } from '../../protocol/index.js';
import type { StreamStart } from './stream-start.js';
import { withFields } from '../with-fields.js';

export type HttpDraft = Omit<HttpEvent, 'seq'>;

export interface L7Flow {
  readonly destination: string;
  readonly port: number;
}

export interface L7Judgement {
  readonly verdict: Verdict;
  /** Whether the flow may go on (false: it is reset). */
  readonly pass: boolean;
  readonly event: HttpDraft;
}

type NamedStart = Extract<StreamStart, { kind: 'tls' } | { kind: 'http' }>;

interface AskedName {
  readonly name: string;
  /** Where the name came from, for the explanation: `SNI`, `Host`, `request target`. */
  readonly via: string;
}

const SEVERITY: Readonly<Record<Verdict, number>> = { allowed: 0, audit: 1, blocked: 2, 'attack-blocked': 3 };

function endpointText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A name as the policy compares it; address literals are not names (they say nothing the address does not). */
function askedNames(start: NamedStart): AskedName[] {
  const raw: AskedName[] =
    start.kind === 'tls'
      ? start.serverName === null
        ? []
        : [{ name: start.serverName, via: 'SNI' }]
      : [
          ...(start.host === null ? [] : [{ name: start.host, via: 'Host' }]),
          ...(start.targetHost === null ? [] : [{ name: start.targetHost, via: 'request target' }]),
        ];
  const out: AskedName[] = [];
  for (const asked of raw) {
    const name = asked.name.toLowerCase().replace(/\.+$/, '');
    if (name === '' || canonicalIp(name) !== null) continue;
    const same = out.find((other) => other.name === name);
    if (same) out[out.indexOf(same)] = { name, via: `${same.via} and ${asked.via}` };
    else out.push({ name, via: asked.via });
  }
  return out;
}

/** What the address was admitted for: the names learned from DNS that the policy allows on this port. */
function admittedNote(policy: CompiledPolicy, learned: readonly string[], port: number, except: string | null): string {
  const allowed = learned.filter((name) => name !== except && policy.decideName(name).verdict === 'allowed' && policy.decideName(name).ports.includes(port));
  if (allowed.length > 0) {
    const shown = allowed.slice(-3);
    return `the address was admitted for ${shown.join(', ')}${allowed.length > shown.length ? ' and others' : ''}`;
  }
  return 'no allowed name resolved to this address';
}

function modeNote(policy: CompiledPolicy): string {
  return policy.mode === 'block' ? '' : ' (audit mode: let through and recorded, it would be blocked in block mode)';
}

function denyVerdict(policy: CompiledPolicy): Verdict {
  return policy.mode === 'block' ? 'blocked' : 'audit';
}

/**
 * Judges a flow whose start is TLS or HTTP. `learned` are the names the
 * destination address was learned from by DNS (most recent last).
 */
export function judgeFlowStart(policy: CompiledPolicy, flow: L7Flow, start: NamedStart, learned: readonly string[], time: Date): L7Judgement {
  const tls = start.kind === 'tls';
  const protocol = tls ? 'TLS' : 'HTTP';
  const target = endpointText(flow.destination, flow.port);
  const names = askedNames(start);
  const base = {
    kind: 'http' as const,
    time: time.toISOString(),
    destination: flow.destination,
    port: flow.port,
    tls,
    count: 1,
    ...(start.kind === 'http' && start.method !== undefined ? { method: start.method } : {}),
    ...(start.kind === 'http' && start.path !== undefined ? { path: start.path } : {}),
    ...(start.problem ? { error: { code: start.problem.code, message: start.problem.message } } : {}),
  };

  if (names.length === 0) {
    const decision = policy.decideConnection({ ip: flow.destination, port: flow.port, protocol: 'tcp' });
    if (decision.verdict === 'allowed' || decision.verdict === 'attack-blocked') {
      return judgement(decision.verdict, withFields(base, { host: flow.destination, verdict: decision.verdict, rule: decision.rule }));
    }
    const what = start.problem
      ? `whose ${tls ? 'ClientHello' : 'request head'} could not be read (${start.problem.message})`
      : tls
        ? 'without a server name (SNI)'
        : 'without a Host name';
    const rule: RuleRef = {
      source: 'default-deny',
      explanation: `${protocol} to ${target} ${what}; only ip/cidr allowed-endpoints admit ${protocol} without a name, and ${admittedNote(policy, learned, flow.port, null)}${modeNote(policy)}`,
      suggestion: `connect by a name the policy allows, or add \`${target}\` to allowed-endpoints`,
    };
    const verdict = denyVerdict(policy);
    return judgement(verdict, withFields(base, { host: flow.destination, verdict, rule }));
  }

  let worst: { asked: AskedName; decision: ConnectionDecision } | null = null;
  for (const asked of names) {
    const decision = policy.decideConnection({ ip: flow.destination, port: flow.port, protocol: 'tcp', name: asked.name });
    if (worst === null || SEVERITY[decision.verdict] > SEVERITY[worst.decision.verdict]) worst = { asked, decision };
  }
  const { asked, decision } = worst ?? { asked: names[0] as AskedName, decision: policy.decideConnection({ ip: flow.destination, port: flow.port, protocol: 'tcp' }) };
  if (decision.verdict === 'allowed' || decision.verdict === 'attack-blocked') {
    return judgement(decision.verdict, withFields(base, { host: asked.name, verdict: decision.verdict, rule: decision.rule }));
  }
  const nameDecision = policy.decideName(asked.name);
  const otherPorts = nameDecision.verdict === 'allowed' ? nameDecision.ports.filter((port) => port !== flow.port) : [];
  const notAllowed =
    otherPorts.length > 0
      ? `which the policy allows only on port${otherPorts.length === 1 ? '' : 's'} ${otherPorts.join(', ')}`
      : 'which the policy does not allow';
  const rule: RuleRef = {
    source: 'default-deny',
    explanation: `${protocol} to ${target} named ${asked.name} (${asked.via}), ${notAllowed}; ${admittedNote(policy, learned, flow.port, asked.name)}${modeNote(policy)}`,
    suggestion: `add \`${endpointText(asked.name, flow.port)}\` to allowed-endpoints if the job should reach it`,
  };
  const verdict = denyVerdict(policy);
  return judgement(verdict, withFields(base, { host: asked.name, verdict, rule }));
}

function judgement(verdict: Verdict, event: HttpDraft): L7Judgement {
  return { verdict, pass: verdict === 'allowed' || verdict === 'audit', event };
}
