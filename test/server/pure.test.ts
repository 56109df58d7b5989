// The server's pure pieces, with examples and fast-check properties: views, cursors, parameters, database URLs, secrets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunEvent, Verdict } from '../../src/protocol/index.js';
import { buildNetworkTree, buildProcessTree, diffEndpoints, parseDatabaseSpec, redact } from '../../src/server/index.js';
import { processTreeFromReport } from '../../src/server/views.js';
import { checkQuery, cursorParam, encodeCursor, intParam, timeParam, verdictParam } from '../../src/server/api/params.js';
import { numberPlaceholders } from '../../src/server/store/postgres-driver.js';
import { hashPassword, newApiKey, parseApiKey, verifyPassword } from '../../src/server/auth/secrets.js';
import { parsePolicyBody, scopeOf } from '../../src/server/api/routes-policies.js';
import { blockListEtag } from '../../src/server/api/routes-blocklist.js';
import { eventDestination, jobKey, verdictRank } from '../../src/server/run-facts.js';

const VERDICTS: Verdict[] = ['allowed', 'audit', 'blocked', 'attack-blocked'];
const arbVerdict = fc.constantFrom(...VERDICTS);
const arbName = fc.stringMatching(/^[a-z]{1,8}\.test$/);

const arbNetworkEvent = fc.record({
  kind: fc.constantFrom('dns', 'connection', 'http'),
  name: arbName,
  verdict: arbVerdict,
  pid: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
  step: fc.option(fc.constantFrom('s1', 's2'), { nil: undefined }),
  count: fc.integer({ min: 1, max: 5 }),
});

function toEvent(e: { kind: string; name: string; verdict: Verdict; pid: number | undefined; step: string | undefined; count: number }, seq: number): RunEvent {
  const common = { seq, time: '2026-11-26T12:00:00.000Z', ...(e.pid ? { process: { pid: e.pid, exe: `/bin/p${e.pid}`, ancestry: [{ pid: 1, exe: '/bin/sh' }] } } : {}), ...(e.step ? { step: e.step } : {}) };
  const rule = { source: 'default-deny' as const, explanation: 'x' };
  if (e.kind === 'dns') return { kind: 'dns', ...common, name: e.name, qtype: 'A', transport: 'udp', client: 'c', verdict: e.verdict, rule, rcode: 'NOERROR', answers: [], admitted: [] };
  if (e.kind === 'connection') return { kind: 'connection', ...common, protocol: 'tcp', family: 4, destination: '198.51.100.1', port: 443, name: e.name, verdict: e.verdict, rule, count: e.count };
  return { kind: 'http', ...common, host: e.name, destination: '198.51.100.1', port: 443, tls: true, verdict: e.verdict, rule };
}

describe('network tree', () => {
  it('accounts for every network event exactly once, with the worst verdict per destination', () => {
    fc.assert(
      fc.property(fc.array(arbNetworkEvent, { maxLength: 60 }), (raw) => {
        const events = raw.map((e, i) => toEvent(e, i + 1));
        const tree = buildNetworkTree(events);
        expect(tree.events).toBe(events.length);
        const expectedWeight = events.reduce((n, e) => n + (e.kind === 'connection' ? e.count : 1), 0);
        let weight = 0;
        for (const step of tree.steps) for (const p of step.processes) for (const d of p.destinations) weight += d.count;
        expect(weight).toBe(expectedWeight);
        for (const step of tree.steps) {
          for (const p of step.processes) {
            for (const d of p.destinations) {
              const mine = events.filter((e) => (e.step ?? null) === step.id && (e.process?.pid ?? null) === p.pid && [eventDestination(e), `${eventDestination(e)}:443`].includes(d.destination));
              expect(verdictRank(d.verdict)).toBe(Math.max(...mine.map((e) => verdictRank((e as { verdict: Verdict }).verdict))));
            }
          }
        }
      }),
    );
  });
});

describe('network tree chains', () => {
  it('names tools as people do, and lists the candidates when the agent could not tell', () => {
    const rule = { source: 'default-deny' as const, explanation: 'x' };
    const base = { kind: 'connection' as const, time: 't', protocol: 'tcp' as const, family: 4 as const, destination: '198.51.100.1', port: 443, verdict: 'allowed' as const, rule, count: 1 };
    const tree = buildNetworkTree([
      { ...base, seq: 1, name: 'a.test', process: { pid: 7, exe: '/usr/bin/node', name: 'npm', ancestry: [{ pid: 1, exe: '/usr/bin/bash', name: 'bash' }] } },
      { ...base, seq: 2, name: 'b.test', processCandidates: [{ pid: 8, exe: '/usr/bin/curl', name: 'curl' }, { pid: 9, exe: '/usr/bin/wget' }] },
    ]);
    expect(tree.steps[0]?.processes.map((p) => p.chain)).toEqual([['bash', 'npm'], ['one of: /usr/bin/wget, curl']]);
  });
});

describe('process tree', () => {
  it('places every process once and never loops, whatever the parent links say', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 30 })), { maxLength: 60 }), (links) => {
        const events: RunEvent[] = links.map(([pid, ppid], i) => ({ kind: 'process', seq: i + 1, time: 't', action: 'exec', pid, ppid, exe: `/bin/${pid}` }));
        const tree = buildProcessTree(events);
        const seen: number[] = [];
        const walk = (nodes: typeof tree.roots) => nodes.forEach((n) => (seen.push(n.pid), walk(n.children)));
        walk(tree.roots);
        expect(seen.sort((a, b) => a - b)).toEqual([...new Set(links.map(([pid]) => pid))].sort((a, b) => a - b));
      }),
    );
  });
});

describe('process tree from the report', () => {
  it('keeps a reused pid as two processes, and counts network events by pid', () => {
    const tree = processTreeFromReport(
      [
        { id: 0, pid: 10, exe: '/usr/bin/bash', name: 'bash' },
        { id: 1, parent: 0, pid: 20, exe: '/usr/bin/npm', name: 'npm', startTime: 't1' },
        { id: 2, parent: 0, pid: 20, exe: '/usr/bin/curl', name: 'curl', startTime: 't2' },
      ],
      [{ kind: 'connection', seq: 1, time: 't', protocol: 'tcp', family: 4, destination: '198.51.100.1', port: 443, verdict: 'blocked', rule: { source: 'default-deny', explanation: 'x' }, count: 1, process: { pid: 10 } }],
    );
    expect(tree.processes).toBe(3);
    expect(tree.roots[0]?.children.map((c) => c.exe)).toEqual(['/usr/bin/npm', '/usr/bin/curl']);
    expect(tree.roots[0]?.network.blocked).toBe(1);
  });
});

describe('endpoint diff', () => {
  it('splits the union into added, unused and kept without overlap', () => {
    fc.assert(
      fc.property(fc.array(arbName), fc.array(arbName), (force, candidate) => {
        const diff = diffEndpoints(force, candidate);
        const all = new Set([...force, ...candidate]);
        expect(diff.added.length + diff.unused.length + diff.kept.length).toBe(all.size);
        for (const e of diff.added) expect(force).not.toContain(e);
        for (const e of diff.unused) expect(candidate).not.toContain(e);
      }),
    );
  });
});

describe('query parameters', () => {
  it('round-trips every cursor it hands out, and refuses anything else', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), fc.integer({ min: 1, max: 2 ** 50 }), (startedMs, pk) => {
        expect(cursorParam(encodeCursor({ startedMs, pk }))).toEqual({ startedMs, pk });
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        const decoded = Buffer.from(text, 'base64url').toString('utf8');
        if (/^\d{1,16}\.\d{1,16}$/.test(decoded)) return;
        expect(() => cursorParam(text)).toThrow(expect.objectContaining({ code: 'RW_QUERY_INVALID' }));
      }),
    );
  });

  it('accepts exactly the closed set of verdicts', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        if ((VERDICTS as string[]).includes(text)) expect(verdictParam('verdict', text)).toBe(text);
        else expect(() => verdictParam('verdict', text)).toThrow(expect.objectContaining({ code: 'RW_QUERY_INVALID' }));
      }),
    );
  });

  it('refuses unknown and repeated parameters and out-of-range numbers', () => {
    expect(() => checkQuery({ a: '1', b: '2' }, ['a'])).toThrow("unknown query parameter 'b' (known: a)");
    expect(() => checkQuery({ a: ['1', '2'] }, ['a'])).toThrow("query parameter 'a' is given more than once");
    expect(intParam('limit', undefined, 1, 10, 5)).toBe(5);
    for (const bad of ['0', '11', '-1', '1.5', 'x', '']) expect(() => intParam('limit', bad, 1, 10, 5)).toThrow(/limit must be a whole number from 1 to 10/);
    expect(timeParam('from', '2026-11-26')).toBe(Date.parse('2026-11-26'));
    expect(() => timeParam('from', '26/11/2026')).toThrow(/ISO 8601/);
  });
});

describe('database URLs', () => {
  it('knows sqlite: and postgres:// and nothing else', () => {
    expect(parseDatabaseSpec('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseDatabaseSpec('postgresql://u:p@h/db')).toEqual({ kind: 'postgres', url: 'postgresql://u:p@h/db' });
    for (const bad of ['mysql://h/db', 'sqlite:', 'runwall.db', '']) expect(() => parseDatabaseSpec(bad)).toThrow(expect.objectContaining({ code: 'RW_USAGE' }));
    expect(redact('postgres://runwall:s3cret@db.internal/runwall')).toBe('postgres://runwall:***@db.internal/runwall');
  });

  it('numbers placeholders in order', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', ' ', '?', ','), { maxLength: 40 }), (parts) => {
        const sql = parts.join('');
        const numbered = numberPlaceholders(sql);
        const marks = [...numbered.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
        expect(marks).toEqual(marks.map((_, i) => i + 1));
        expect(marks.length).toBe(parts.filter((p) => p === '?').length);
      }),
    );
  });
});

describe('secrets', () => {
  it('parses every key it makes and no mangled one', () => {
    for (let i = 0; i < 50; i++) {
      const key = newApiKey();
      expect(parseApiKey(key.text)).toMatchObject({ keyId: key.keyId });
      expect(parseApiKey(key.text + 'x')).toBeNull();
      expect(parseApiKey(key.text.replace('rwk_', 'rwx_'))).toBeNull();
    }
  });

  it('verifies a password against its scrypt hash only', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsE', hash)).toBe(false);
    expect(await verifyPassword('x', 'not a hash')).toBe(false);
  });
});

describe('policy bodies and scopes', () => {
  it('takes the Action input names and nothing else', () => {
    expect(parsePolicyBody({ 'egress-policy': 'block', 'allowed-endpoints': 'a.test:443\nb.test', 'disable-sudo': 'true' }, 'p')).toEqual({
      egressPolicy: 'block', allowedEndpoints: ['a.test:443', 'b.test:443'], disableFileMonitoring: false, disableSudo: true, disableSudoAndContainers: false, disableTelemetry: false,
    });
    expect(() => parsePolicyBody({ 'egress-policy': 'block', 'dns-upstream': '1.1.1.1' }, 'p')).toThrow("unknown key 'dns-upstream'");
    expect(() => parsePolicyBody(['egress-policy'], 'p')).toThrow(expect.objectContaining({ code: 'RW_POLICY_INVALID' }));
  });

  it('infers the level and refuses a scope with a gap or a foreign repo', () => {
    expect(scopeOf({ org: 'acme', repo: 'acme/app', workflow: 'ci.yml' }, 'RW_PAYLOAD_INVALID').level).toBe('workflow');
    expect(() => scopeOf({ org: 'acme', job: 'build' }, 'RW_PAYLOAD_INVALID')).toThrow('a job scope needs its workflow');
    expect(() => scopeOf({ org: 'acme', repo: 'app' }, 'RW_QUERY_INVALID')).toThrow("repo must be 'owner/name'");
  });
});

describe('run facts', () => {
  it('keys baselines by repo, workflow and job, and only when all three are known', () => {
    expect(jobKey({ repo: 'a/b', workflow: 'w', job: 'j' })).toBe('["a/b","w","j"]');
    expect(jobKey({ repo: 'a/b', workflow: null, job: 'j' })).toBeNull();
    expect(blockListEtag(7, false)).toBe('"bl-7"');
    expect(blockListEtag(7, true)).toBe('"bl-7-all"');
  });
});
