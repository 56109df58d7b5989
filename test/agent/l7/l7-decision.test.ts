// Judging a TLS/HTTP flow start against the policy: what a user reads in the `http` event.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HttpFolder } from '../../../src/agent/l7/http-folder.js';
import { judgeFlowStart, type HttpDraft } from '../../../src/agent/l7/l7-decision.js';
import type { StreamStart } from '../../../src/agent/l7/stream-start.js';
import { compilePolicy, parseBlockList, parseEndpointList, resolvePolicy } from '../../../src/policy/index.js';
import { checkRunEvent, type EgressMode } from '../../../src/protocol/index.js';

const TIME = new Date('2026-11-26T12:00:00.000Z');

function policy(endpoints: string, mode: EgressMode = 'block', blockList = '') {
  return compilePolicy(
    resolvePolicy({
      flags: { egressPolicy: mode, allowedEndpoints: parseEndpointList(endpoints, 'test') },
      ...(blockList ? { blockList: parseBlockList(blockList, 'test') } : {}),
      defaults: { dnsUpstream: '127.0.0.1:53' },
    }),
  );
}

const tls = (serverName: string | null, problem?: { code: 'RW_TLS_MALFORMED'; message: string }): Extract<StreamStart, { kind: 'tls' }> => ({
  kind: 'tls',
  serverName,
  encryptedClientHello: false,
  ...(problem ? { problem } : {}),
});
const http = (host: string | null, targetHost: string | null = null): Extract<StreamStart, { kind: 'http' }> => ({
  kind: 'http',
  method: 'GET',
  path: '/',
  host,
  targetHost,
});
const CDN = { destination: '198.51.100.10', port: 443 };

describe('judgeFlowStart', () => {
  it('allows a name the policy allows on this port', () => {
    const j = judgeFlowStart(policy('allowed.test:443'), CDN, tls('Allowed.Test.'), ['allowed.test'], TIME);
    expect(j).toMatchObject({ verdict: 'allowed', pass: true, event: { kind: 'http', host: 'allowed.test', tls: true, destination: '198.51.100.10', port: 443 } });
    expect(j.event.rule.entry).toBe('allowed.test:443');
  });

  it('refuses domain fronting: another name on an address admitted for an allowed one, and says so', () => {
    const j = judgeFlowStart(policy('allowed.test:443'), CDN, tls('evil.test'), ['allowed.test'], TIME);
    expect(j.verdict).toBe('blocked');
    expect(j.pass).toBe(false);
    expect(j.event.host).toBe('evil.test');
    expect(j.event.rule).toEqual({
      source: 'default-deny',
      explanation: 'TLS to 198.51.100.10:443 named evil.test (SNI), which the policy does not allow; the address was admitted for allowed.test',
      suggestion: 'add `evil.test:443` to allowed-endpoints if the job should reach it',
    });
  });

  it('names the ports a name is allowed on when it is used on another', () => {
    const j = judgeFlowStart(policy('api.test:8443'), CDN, tls('api.test'), [], TIME);
    expect(j.event.rule.explanation).toContain('named api.test (SNI), which the policy allows only on port 8443; no allowed name resolved to this address');
  });

  it('judges every name of an HTTP request: Host and an absolute-form target', () => {
    const p = policy('allowed.test:80');
    const port80 = { destination: '198.51.100.10', port: 80 };
    expect(judgeFlowStart(p, port80, http('allowed.test'), ['allowed.test'], TIME).verdict).toBe('allowed');
    const fronted = judgeFlowStart(p, port80, http('allowed.test', 'evil.test'), ['allowed.test'], TIME);
    expect(fronted.verdict).toBe('blocked');
    expect(fronted.event.rule.explanation).toContain('named evil.test (request target)');
    expect(fronted.event).toMatchObject({ tls: false, method: 'GET', path: '/' });
  });

  it('lets a flow without a name through only to an ip/cidr allowed network', () => {
    const byName = policy('allowed.test:443');
    const none = judgeFlowStart(byName, CDN, tls(null), ['allowed.test'], TIME);
    expect(none.verdict).toBe('blocked');
    expect(none.event.host).toBe('198.51.100.10');
    expect(none.event.rule.explanation).toBe(
      'TLS to 198.51.100.10:443 without a server name (SNI); only ip/cidr allowed-endpoints admit TLS without a name, and the address was admitted for allowed.test',
    );
    const byNetwork = policy('198.51.100.0/24:443');
    expect(judgeFlowStart(byNetwork, CDN, tls(null), [], TIME).verdict).toBe('allowed');
    // An allowed network admits any name on it: the user allowed the address, not a name.
    expect(judgeFlowStart(byNetwork, CDN, tls('evil.test'), [], TIME).verdict).toBe('allowed');
    // An address literal in Host is not a name.
    expect(judgeFlowStart(byName, { destination: '198.51.100.10', port: 80 }, http('198.51.100.10'), [], TIME).event.rule.explanation).toContain('without a Host name');
  });

  it('carries a malformed start as data on the event and judges it without a name', () => {
    const j = judgeFlowStart(policy('allowed.test:443'), CDN, tls(null, { code: 'RW_TLS_MALFORMED', message: 'TLS ClientHello: two host names' }), [], TIME);
    expect(j.event.error).toEqual({ code: 'RW_TLS_MALFORMED', message: 'TLS ClientHello: two host names' });
    expect(j.event.rule.explanation).toContain('whose ClientHello could not be read (TLS ClientHello: two host names)');
  });

  it('enforces the block list in every mode; audit mode lets the rest through and records it', () => {
    const blocked = 'evil.test  known exfiltration host';
    for (const mode of ['audit', 'block'] as const) {
      const j = judgeFlowStart(policy('allowed.test:443', mode, blocked), CDN, tls('x.evil.test'), ['allowed.test'], TIME);
      expect(j).toMatchObject({ verdict: 'attack-blocked', pass: false, event: { rule: { source: 'block-list', entry: 'evil.test' } } });
    }
    const audit = judgeFlowStart(policy('allowed.test:443', 'audit'), CDN, tls('other.test'), ['allowed.test'], TIME);
    expect(audit).toMatchObject({ verdict: 'audit', pass: true });
    expect(audit.event.rule.explanation).toContain('audit mode: let through and recorded');
  });

  it('every judgement is an http event the report schema accepts', () => {
    const p = policy('allowed.test:443 *.cdn.test:443 203.0.113.0/25:443', 'block', 'evil.test  known bad');
    const start = fc.oneof(
      fc.option(fc.constantFrom('allowed.test', 'x.cdn.test', 'evil.test', 'other.test', '198.51.100.10', 'a b')).map((name) => tls(name)),
      fc.tuple(fc.option(fc.constantFrom('allowed.test', 'evil.test', '[2001:db8::1]')), fc.option(fc.constantFrom('other.test'))).map(([h, t]) => http(h, t)),
    );
    fc.assert(
      fc.property(start, fc.constantFrom('198.51.100.10', '203.0.113.5', '2001:db8::10'), fc.integer({ min: 1, max: 65535 }), (s, destination, port) => {
        const j = judgeFlowStart(p, { destination, port }, s, ['allowed.test'], TIME);
        expect(checkRunEvent({ ...j.event, seq: 1 })).toEqual([]);
        expect(j.pass).toBe(j.verdict === 'allowed' || j.verdict === 'audit');
      }),
    );
  });
});

describe('HttpFolder', () => {
  it('folds repeats of one flow into one event with a count, and keeps different verdicts apart', async () => {
    const emitted: HttpDraft[] = [];
    const folder = new HttpFolder(20, (event) => emitted.push(event));
    const p = policy('allowed.test:443');
    for (let i = 0; i < 5; i++) folder.add(judgeFlowStart(p, CDN, tls('allowed.test'), [], TIME).event);
    folder.add(judgeFlowStart(p, CDN, tls('evil.test'), [], TIME).event);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(emitted.map((e) => [e.host, e.verdict, e.count])).toEqual([
      ['allowed.test', 'allowed', 5],
      ['evil.test', 'blocked', 1],
    ]);
    folder.add(judgeFlowStart(p, CDN, tls('allowed.test'), [], TIME).event);
    folder.flush();
    expect(emitted).toHaveLength(3);
  });
});
