// A logged packet becomes a connection event whose verdict comes from the rule that logged it and whose
// explanation comes from the policy; repeats of one attempt fold into one event with a count.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionFolder, connectionFromPacket, type ConnectionDraft } from '../../../src/agent/engine/connection-events.js';
import { LOG_PREFIX } from '../../../src/agent/enforce/ruleset.js';
import type { NflogPacket } from '../../../src/agent/platform/index.js';
import { compilePolicy, parseBlockList, parseEndpointList, resolvePolicy } from '../../../src/policy/index.js';

function policy(mode: 'audit' | 'block') {
  return compilePolicy(
    resolvePolicy({
      flags: { egressPolicy: mode, allowedEndpoints: parseEndpointList('allowed.test *.cdn.test:8443', 'test') },
      blockList: parseBlockList('203.0.113.66 C2 server\n', 'test'),
      defaults: { dnsUpstream: '198.51.100.53:53' },
    }),
  );
}

function packet(prefix: string, destination: string, port: number | null, protocol: NflogPacket['protocol'] = 'tcp'): NflogPacket {
  return {
    group: 1, prefix, family: destination.includes(':') ? 6 : 4, protocol, protocolNumber: protocol === 'tcp' ? 6 : 17,
    source: '100.64.0.2', destination, sourcePort: 40_000, destinationPort: port, time: new Date('2026-11-26T12:00:00Z'),
  };
}

describe('connectionFromPacket', () => {
  it('an allowed flow is reported under the name it was resolved from', () => {
    const event = connectionFromPacket(packet(LOG_PREFIX.allowed, '198.51.100.10', 443), policy('block'), ['allowed.test']);
    expect(event).toMatchObject({ verdict: 'allowed', name: 'allowed.test', destination: '198.51.100.10', port: 443, count: 1 });
    expect(event?.rule.entry).toBe('allowed.test:443');
  });

  it('a blocked flow says what to add; a name allowed on another port names the port', () => {
    const direct = connectionFromPacket(packet(LOG_PREFIX.blocked, '198.51.100.11', 443), policy('block'), []);
    expect(direct?.verdict).toBe('blocked');
    expect(direct?.rule.suggestion).toContain('198.51.100.11:443');
    const port = connectionFromPacket(packet(LOG_PREFIX.blocked, '198.51.100.10', 8080), policy('block'), ['allowed.test']);
    expect(port?.rule.suggestion).toContain('allowed.test:8080');
  });

  it('a blocked flow to an address the policy would allow by name says the admission expired', () => {
    const event = connectionFromPacket(packet(LOG_PREFIX.blocked, '198.51.100.10', 443), policy('block'), ['allowed.test']);
    expect(event?.verdict).toBe('blocked');
    expect(event?.rule.explanation).toMatch(/expired/);
  });

  it('block-list hits are attack-blocked with the list reason, DNS bypass is blocked in every mode', () => {
    const attack = connectionFromPacket(packet(LOG_PREFIX.attack, '203.0.113.66', 443), policy('audit'), []);
    expect(attack).toMatchObject({ verdict: 'attack-blocked' });
    expect(attack?.rule.reason).toBe('C2 server');
    const bypass = connectionFromPacket(packet(LOG_PREFIX.dnsBypass, '203.0.113.53', 53, 'udp'), policy('audit'), []);
    expect(bypass).toMatchObject({ verdict: 'blocked', protocol: 'udp' });
    expect(bypass?.rule.entry).toBe('dns-only-through-runwall');
  });

  it('audit-logged flows carry the verdict they would have had, and unknown prefixes are ignored', () => {
    expect(connectionFromPacket(packet(LOG_PREFIX.audit, '198.51.100.11', 443), policy('audit'), [])?.verdict).toBe('audit');
    expect(connectionFromPacket(packet('other', '198.51.100.11', 443), policy('audit'), [])).toBeNull();
  });
});

describe('ConnectionFolder', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('folds repeats of one attempt within the window and keeps different attempts apart', () => {
    const out: ConnectionDraft[] = [];
    const folder = new ConnectionFolder(500, (event) => out.push(event));
    const blocked = connectionFromPacket(packet(LOG_PREFIX.blocked, '198.51.100.11', 443), policy('block'), [])!;
    folder.add(blocked);
    folder.add(blocked);
    folder.add(connectionFromPacket(packet(LOG_PREFIX.blocked, '198.51.100.11', 8443), policy('block'), [])!);
    expect(out).toHaveLength(0);
    vi.advanceTimersByTime(500);
    expect(out.map((e) => [e.port, e.count])).toEqual([
      [443, 2],
      [8443, 1],
    ]);
    folder.add(blocked);
    folder.flush();
    expect(out.at(-1)?.count).toBe(1);
  });
});
