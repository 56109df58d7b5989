/**
 * Turns a packet the firewall logged into a `connection` event: its verdict
 * comes from the rule that logged it (the NFLOG prefix), its explanation from
 * the policy. Pure.
 */
import type { CompiledPolicy } from '../../policy/index.js';
import type { ConnectionEvent, RuleRef, Verdict } from '../../protocol/index.js';
import { LOG_PREFIX } from '../enforce/ruleset.js';
import { WindowFolder } from './window-folder.js';
import type { NflogPacket } from '../platform/index.js';

export type ConnectionDraft = Omit<ConnectionEvent, 'seq'>;

function endpointText(host: string, port: number | null): string {
  const shown = host.includes(':') ? `[${host}]` : host;
  return port === null ? shown : `${shown}:${port}`;
}

/**
 * Picks the name a connection is reported under: the first learned name the
 * policy allows for this port, else the most recent one.
 */
function pickName(policy: CompiledPolicy, names: readonly string[], port: number | null): string | undefined {
  for (const name of names) {
    const decision = policy.decideName(name);
    if (decision.verdict === 'allowed' && port !== null && decision.ports.includes(port)) return name;
  }
  return names[names.length - 1];
}

export function connectionFromPacket(
  packet: NflogPacket,
  policy: CompiledPolicy,
  names: readonly string[],
): ConnectionDraft | null {
  const port = packet.destinationPort;
  const name = pickName(policy, names, port);
  const decision = policy.decideConnection({
    ip: packet.destination,
    port,
    protocol: packet.protocol,
    ...(name !== undefined ? { name } : {}),
  });
  let verdict: Verdict;
  let rule: RuleRef = decision.rule;
  const target = endpointText(name ?? packet.destination, port);
  switch (packet.prefix) {
    case LOG_PREFIX.allowed:
      verdict = 'allowed';
      break;
    case LOG_PREFIX.attack:
      verdict = 'attack-blocked';
      break;
    case LOG_PREFIX.audit:
      verdict = 'audit';
      break;
    case LOG_PREFIX.blocked:
      verdict = 'blocked';
      if (decision.verdict === 'allowed') {
        // The policy allows the name, but the firewall had no admission for this address:
        // its DNS answer expired, or the job reached the address without asking runwall's resolver.
        rule = {
          source: 'default-deny',
          explanation: `${endpointText(packet.destination, port)}${name ? ` (${name})` : ''} was not admitted: addresses are admitted only from runwall's own DNS answers, for their TTL${name ? '; this admission had expired' : ''}`,
          suggestion: `resolve ${name ?? 'the name'} through runwall's resolver again, or add ${endpointText(packet.destination, port)} to allowed-endpoints`,
        };
      }
      break;
    case LOG_PREFIX.dnsBypass:
      verdict = 'blocked';
      rule = {
        source: 'builtin',
        entry: 'dns-only-through-runwall',
        explanation: `DNS to ${target} bypasses runwall's resolver; DNS (53) and DNS-over-TLS/QUIC (853) to any other server are dropped in every mode (use the resolver in /etc/resolv.conf: it forwards every allowed name)`,
      };
      break;
    case LOG_PREFIX.host:
      verdict = policy.mode === 'block' ? 'blocked' : 'audit';
      rule = {
        source: 'builtin',
        entry: 'no-host-services',
        explanation: `${target} is a service of the host running runwall; the job may reach only runwall's resolver there`,
      };
      break;
    default:
      return null;
  }
  const event: ConnectionDraft = {
    kind: 'connection',
    time: packet.time.toISOString(),
    protocol: packet.protocol,
    family: packet.family,
    source: packet.source,
    ...(packet.sourcePort !== null ? { sourcePort: packet.sourcePort } : {}),
    destination: packet.destination,
    port,
    verdict,
    rule,
    count: 1,
    ...(name !== undefined ? { name } : {}),
  };
  return event;
}

/** Repeats of one flow attempt (same verdict, protocol, destination, port) folded per window. */
export class ConnectionFolder extends WindowFolder<ConnectionDraft> {
  constructor(windowMs: number, emit: (event: ConnectionDraft) => void) {
    super(windowMs, (event) => `${event.verdict} ${event.protocol} ${event.destination} ${event.port ?? ''}`, emit);
  }
}
