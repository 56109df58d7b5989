// The test internet from the point of view of the machine runwall runs on (P-host): what the
// egress tests rely on, checked with the real clients they use (dig, curl, ping, node).
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet, type RunResult } from '../helpers/internet.js';

let internet: Internet;

beforeAll(async () => {
  internet = await createInternet();
});

afterAll(async () => {
  await internet?.destroy();
});

function ok(result: RunResult): string {
  expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
  return result.stdout;
}

interface AnswerLine {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

/** Runs dig in P-host and returns its answer section, one record per line. */
async function dig(server: string, name: string, type: string, transport: 'udp' | 'tcp' = 'udp'): Promise<AnswerLine[]> {
  const argv = ['dig', '+noall', '+answer', '+tries=1', '+time=3', `@${server}`, name, type];
  if (transport === 'tcp') argv.push('+tcp');
  return ok(await internet.runInHost(argv))
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [owner = '', ttl = '', , rtype = '', ...data] = line.split(/\s+/);
      return { name: owner, ttl: Number(ttl), type: rtype, data: data.join(' ') };
    });
}

async function digStatus(server: string, name: string, type: string): Promise<string> {
  const out = ok(await internet.runInHost(['dig', '+tries=1', '+time=3', `@${server}`, name, type]));
  return /status: ([A-Z]+)/.exec(out)?.[1] ?? 'none';
}

const UDP_ECHO_CLIENT = `
const dgram = require('node:dgram');
const [address, port] = process.argv.slice(1);
const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
// A connected socket takes replies only from the address it sent to.
socket.connect(Number(port), address, () => socket.send('ping ' + address));
socket.on('message', (message) => { console.log(message.toString()); process.exit(0); });
setTimeout(() => process.exit(3), 3000);
`;

describe('DNS upstream', () => {
  for (const server of ['198.51.100.53', '2001:db8::53']) {
    for (const transport of ['udp', 'tcp'] as const) {
      it(`answers A, AAAA, CNAME chains, TXT and HTTPS at ${server} over ${transport}`, async () => {
        const [a, aaaa, chain, text, https] = await Promise.all([
          dig(server, 'allowed.test', 'A', transport),
          dig(server, 'allowed.test', 'AAAA', transport),
          dig(server, 'alias.allowed.test', 'A', transport),
          dig(server, 'allowed.test', 'TXT', transport),
          dig(server, 'allowed.test', 'HTTPS', transport),
        ]);
        expect(a).toEqual([{ name: 'allowed.test.', ttl: 60, type: 'A', data: '198.51.100.10' }]);
        expect(aaaa).toEqual([{ name: 'allowed.test.', ttl: 60, type: 'AAAA', data: '2001:db8::10' }]);
        expect(chain.map((r) => [r.name, r.type, r.data])).toEqual([
          ['alias.allowed.test.', 'CNAME', 'edge.cdn.test.'],
          ['edge.cdn.test.', 'CNAME', 'edge2.cdn.test.'],
          ['edge2.cdn.test.', 'A', '198.51.100.20'],
        ]);
        expect(text.map((r) => r.data)).toEqual(['"v=allowed"']);
        expect(https.map((r) => [r.type, r.data])).toEqual([['HTTPS', '1 . ipv4hint=198.51.100.10 ipv6hint=2001:db8::10']]);
      });
    }
  }

  it('answers the generated, wildcard and short-lived names, and NXDOMAIN for the rest', async () => {
    expect((await dig('198.51.100.53', 'n99999.gen.test', 'AAAA')).map((r) => r.data)).toEqual(['2001:db8:1::1:86a0']);
    expect((await dig('198.51.100.53', 'n151.gen.test', 'A')).map((r) => r.data)).toEqual(['198.51.100.51']);
    expect((await dig('198.51.100.53', 'a.b.evil.test', 'A')).map((r) => r.data)).toEqual(['203.0.113.66']);
    expect((await dig('198.51.100.53', 'short.allowed.test', 'A')).map((r) => r.ttl)).toEqual([1]);
    expect(await digStatus('198.51.100.53', 'unknown.test', 'A')).toBe('NXDOMAIN');
    expect(await digStatus('198.51.100.53', 'github.com', 'A')).toBe('NXDOMAIN');
  });

  it('logs each query with its transport, server and client', async () => {
    await internet.dns.clear();
    await dig('198.51.100.53', 'other.test', 'A', 'tcp');
    await dig('2001:db8::53', 'txt.other.test', 'TXT');
    expect(await internet.dns.queries()).toEqual([
      { name: 'other.test', type: 'A', transport: 'tcp', server: '198.51.100.53', from: '203.0.113.254' },
      { name: 'txt.other.test', type: 'TXT', transport: 'udp', server: '2001:db8::53', from: '2001:db8:ffff::2' },
    ]);
    await internet.dns.clear();
    expect(await internet.dns.queries()).toEqual([]);
  });

  it('dns.set changes an answer at run time, and refuses records it does not understand', async () => {
    await internet.dns.set('moved.test', [{ type: 'A', data: '198.51.100.77', ttl: 7 }]);
    expect(await dig('198.51.100.53', 'moved.test', 'A')).toEqual([{ name: 'moved.test.', ttl: 7, type: 'A', data: '198.51.100.77' }]);
    await internet.dns.set('other.test', [{ type: 'AAAA', data: '2001:db8::77' }]);
    expect(await dig('198.51.100.53', 'other.test', 'A')).toEqual([]);
    expect((await dig('198.51.100.53', 'other.test', 'AAAA')).map((r) => r.data)).toEqual(['2001:db8::77']);
    await internet.dns.set('other.test', []);
    expect(await digStatus('198.51.100.53', 'other.test', 'A')).toBe('NXDOMAIN');
    await expect(internet.dns.set('x.test', [{ type: 'MX', data: 'mail.test' }])).rejects.toThrow(/record type must be one of/);
    await expect(internet.dns.set('x.test', [{ type: 'A', data: 'not-an-address' }])).rejects.toThrow(/IPv4/);
  });
});

describe('rogue resolver', () => {
  it('answers every name with 203.0.113.99 on UDP/TCP 53 and TCP 853, and logs each query', async () => {
    await internet.clearHits();
    await internet.dns.clear();
    expect((await dig('203.0.113.53', 'github.com', 'A')).map((r) => r.data)).toEqual(['203.0.113.99']);
    expect((await dig('203.0.113.53', 'allowed.test', 'A', 'tcp')).map((r) => r.data)).toEqual(['203.0.113.99']);
    const dot = ok(await internet.runInHost(['dig', '+short', '+tcp', '-p', '853', '+tries=1', '+time=3', '@203.0.113.53', 'dot.example']));
    expect(dot.trim()).toBe('203.0.113.99');
    expect(await internet.hits()).toEqual([
      { kind: 'dns-rogue', local: '203.0.113.53', port: 53, from: '203.0.113.254', host: 'github.com' },
      { kind: 'dns-rogue', local: '203.0.113.53', port: 53, from: '203.0.113.254', host: 'allowed.test' },
      { kind: 'dns-rogue', local: '203.0.113.53', port: 853, from: '203.0.113.254', host: 'dot.example' },
    ]);
    // The upstream's log is only the upstream's.
    expect(await internet.dns.queries()).toEqual([]);
  });
});

describe('HTTP servers', () => {
  it('answer on 80, 443 and 8443 at any address, v4 and v6, and log the Host header', async () => {
    await internet.clearHits();
    const targets = [
      { url: 'http://198.51.100.10:80/', local: '198.51.100.10', port: 80 },
      { url: 'http://198.51.100.10:443/', local: '198.51.100.10', port: 443 },
      { url: 'http://203.0.113.66:8443/x', local: '203.0.113.66', port: 8443 },
      { url: 'http://[2001:db8::10]:80/', local: '2001:db8::10', port: 80 },
      { url: 'http://[2001:db8::66]:443/', local: '2001:db8::66', port: 443 },
      { url: 'http://[2001:db8:1::1:86a0]:8443/', local: '2001:db8:1::1:86a0', port: 8443 },
    ];
    for (const target of targets) {
      const body = ok(await internet.runInHost(['curl', '-sS', '-g', '-m', '5', '-H', 'Host: allowed.test', target.url]));
      expect(body).toBe(`ok ${target.local} ${target.port} allowed.test`);
    }
    const from = (local: string): string => (local.includes(':') ? '2001:db8:ffff::2' : '203.0.113.254');
    expect(await internet.hits()).toEqual(
      targets.map((t) => ({ kind: 'http', local: t.local, port: t.port, from: from(t.local), host: 'allowed.test' })),
    );
  });

  it('log the SNI of a TLS client and end its handshake', async () => {
    await internet.clearHits();
    const result = await internet.runInHost([
      'curl', '-sS', '-m', '5', '--resolve', 'allowed.test:443:198.51.100.10', 'https://allowed.test/',
    ]);
    expect(result.code).toBe(35); // TLS handshake failed: the connection itself got through
    expect(await internet.hits()).toEqual([
      { kind: 'tls', local: '198.51.100.10', port: 443, from: '203.0.113.254', host: 'allowed.test' },
    ]);
  });
});

describe('UDP echo and ICMP', () => {
  it('echo on UDP 443 and 9999 from the address the datagram was sent to', async () => {
    await internet.clearHits();
    const targets = [
      ['198.51.100.10', 443],
      ['203.0.113.66', 9999],
      ['2001:db8::10', 443],
      ['2001:db8:1::2a', 9999],
    ] as const;
    for (const [address, port] of targets) {
      const out = ok(await internet.runInHost(['node', '-e', UDP_ECHO_CLIENT, address, String(port)]));
      expect(out.trim()).toBe(`ping ${address}`);
    }
    expect((await internet.hits()).map((h) => [h.kind, h.local, h.port])).toEqual(targets.map(([a, p]) => ['udp', a, p]));
  });

  it('answer ping at any address of the internet, v4 and v6', async () => {
    ok(await internet.runInHost(['ping', '-c', '1', '-W', '2', '198.51.100.201']));
    ok(await internet.runInHost(['ping', '-c', '1', '-W', '2', '203.0.113.5']));
    ok(await internet.runInHost(['ping', '-c', '1', '-W', '2', '2001:db8::beef']));
  });
});

describe('a container behind a bridge in P-host', () => {
  it('reaches the internet through P-host, masqueraded like Docker', async () => {
    const container = await internet.addContainer();
    expect(container.address).toBe('203.0.113.130');
    const resolved = ok(await container.run(['dig', '+short', '+tries=1', '+time=3', '@198.51.100.53', 'allowed.test']));
    expect(resolved.trim()).toBe('198.51.100.10');
    await internet.clearHits();
    expect(ok(await container.run(['curl', '-sS', '-m', '5', 'http://198.51.100.10/']))).toBe('ok 198.51.100.10 80 198.51.100.10');
    expect(ok(await container.run(['curl', '-sS', '-g', '-m', '5', 'http://[2001:db8::10]:8443/']))).toBe(
      'ok 2001:db8::10 8443 [2001:db8::10]:8443',
    );
    expect((await internet.hits()).map((h) => h.from)).toEqual(['203.0.113.254', '2001:db8:ffff::2']);
    const second = await internet.addContainer();
    expect(second.address).toBe('203.0.113.131');
    ok(await second.run(['ping', '-c', '1', '-W', '2', container.address]));
    const other = await internet.addContainer('br-ci');
    expect(other.address).toBe('203.0.113.194');
    ok(await other.run(['ping', '-c', '1', '-W', '2', '198.51.100.10']));
    await expect(internet.addContainer('this-name-is-too-long')).rejects.toThrow(/bridge name/);
  });
});

describe('running commands in P-host', () => {
  it('runs them in P-host, never in the root namespace, which stays untouched', async () => {
    const hostNet = ok(await internet.runInHost(['readlink', '/proc/self/ns/net'])).trim();
    expect(hostNet).toMatch(/^net:\[\d+\]$/);
    expect(hostNet).not.toBe(readlinkSync('/proc/self/ns/net'));
    const links = ok(await internet.runInHost(['ip', '-o', 'link', 'show'])).split('\n').map((l) => l.split(': ')[1]?.split('@')[0]);
    expect(links).toContain('up0');
    const rootLinks = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(rootLinks).not.toMatch(/: (up0|down0|docker0|vc\d+)[@:]/);
  });

  it('feeds stdin, merges env, and reports exit codes', async () => {
    const result = await internet.runInHost(['sh', '-c', 'cat; echo "$RWT_PROBE" >&2; exit 3'], {
      stdin: 'from stdin',
      env: { RWT_PROBE: 'probe' },
    });
    expect(result).toEqual({ code: 3, signal: null, stdout: 'from stdin', stderr: 'probe\n' });
  });

  it('kills a command, and what it started, when its time is up', async () => {
    const started = Date.now();
    const result = await internet.runInHost(['sh', '-c', 'sleep 30 & sleep 30'], { timeoutMs: 300 });
    expect(result.signal).toBe('SIGKILL');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('spawnInHost hands back the child while it runs', async () => {
    const { child, done } = internet.spawnInHost(['sh', '-c', 'read line; echo "got $line"'], { stdin: 'hello\n' });
    expect(child.pid).toBeGreaterThan(0);
    expect(await done).toMatchObject({ code: 0, stdout: 'got hello\n' });
  });
});
