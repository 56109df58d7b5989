// The DNS proxy against a fake upstream, all on loopback with ephemeral ports.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RunwallError } from '../../../src/protocol/index.js';
import {
  DnsProxy,
  TcpFrameDecoder,
  decodeResponse,
  encodeTcpFrame,
  type DecodedResponse,
  type DnsExchange,
  type DnsGate,
  type DnsQuestionInfo,
  type QueryDecision,
  type ResponseDecision,
} from '../../../src/agent/dns/index.js';
import { FakeUpstream, answerWith, askTcp, askUdp, type SeenQuestion } from './fake-upstream.js';
import { ipv4Bytes, ipv6Bytes, nameBytes, packetQuery, rawQuery, rawResponse, record, svcbData, u16 } from './dns-fixtures.js';

const UPSTREAM_TIMEOUT_MS = 400;

class TestGate implements DnsGate {
  readonly exchanges: DnsExchange[] = [];
  readonly responses: { question: DnsQuestionInfo; response: DecodedResponse }[] = [];
  respond: (question: DnsQuestionInfo, response: DecodedResponse) => ResponseDecision | Promise<ResponseDecision> = () => ({ action: 'release' });

  onQuery(question: DnsQuestionInfo): QueryDecision {
    const allowed = question.name === 'allowed.test' || question.name.endsWith('.allowed.test');
    return allowed ? { action: 'forward' } : { action: 'answer', rcode: 'NXDOMAIN' };
  }

  onResponse(question: DnsQuestionInfo, response: DecodedResponse): ResponseDecision | Promise<ResponseDecision> {
    this.responses.push({ question, response });
    return this.respond(question, response);
  }

  /** Called as each exchange is reported, before the proxy's callback returns. */
  onReported: ((exchange: DnsExchange) => void) | null = null;

  onExchange(exchange: DnsExchange): void {
    this.exchanges.push(exchange);
    this.onReported?.(exchange);
  }

  /** The exchange for `name`, waiting (bounded) for it to be reported. */
  async exchangeFor(name: string | null, timeoutMs = 2000): Promise<DnsExchange> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.exchanges.find((exchange) => (exchange.question?.name ?? null) === name);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no exchange for ${name} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function bigAnswers(name: string): dnsPacket.Answer[] {
  return Array.from({ length: 30 }, (_, index) => ({ type: 'A' as const, name, ttl: 60, data: `198.51.100.${index + 1}` }));
}

function concurrentAddress(index: number): string {
  return `10.77.${index >> 8}.${index & 0xff}`;
}

let flakyTcpDrops = 0;
let lossyUdpSeen = 0;

function respond(query: Buffer, question: SeenQuestion): Uint8Array[] | 'close' {
  const { name } = question;
  if (name === 'www.allowed.test' || name === 'allowed.test') return [answerWith(query, [{ type: 'A', name, ttl: 300, data: '198.51.100.10' }])];
  if (name === 'v6.allowed.test') return [answerWith(query, [{ type: 'AAAA', name, ttl: 300, data: '2001:db8::6' }])];
  if (name === 'chain.allowed.test') {
    return [
      answerWith(query, [
        { type: 'CNAME', name, ttl: 300, data: 'edge.cdn.test' },
        { type: 'CNAME', name: 'edge.cdn.test', ttl: 300, data: 'pop.cdn.test' },
        { type: 'A', name: 'pop.cdn.test', ttl: 20, data: '198.51.100.20' },
      ]),
    ];
  }
  if (name === 'svc.allowed.test') {
    const data = svcbData(1, '', [[1, [2, 0x68, 0x32]], [4, ipv4Bytes('203.0.113.5')], [6, ipv6Bytes('2001:db8::5')]]);
    return [rawResponse(query.readUInt16BE(0), { name, type: 65 }, [record({ name: nameBytes(name), type: 65, ttl: 90, data })])];
  }
  if (name === 'big.allowed.test') {
    return question.transport === 'udp' ? [answerWith(query, [], { truncated: true })] : [answerWith(query, bigAnswers(name))];
  }
  if (name === 'slow.allowed.test') return [];
  if (name === 'lossy.allowed.test' && question.transport === 'udp') {
    // The first datagram is lost (as in a burst that overflows a buffer); the resent one is answered.
    return lossyUdpSeen++ === 0 ? [] : [answerWith(query, [{ type: 'A', name, ttl: 5, data: '198.51.100.41' }])];
  }
  if (name === 'flaky.allowed.test') {
    // The first TCP connection is dropped under the query; the next one answers.
    if (question.transport === 'tcp' && flakyTcpDrops++ === 0) return 'close';
    return [answerWith(query, [{ type: 'A', name, ttl: 5, data: '198.51.100.40' }])];
  }
  if (name === 'spoof.allowed.test') {
    const real = answerWith(query, [{ type: 'A', name, ttl: 5, data: '198.51.100.30' }]);
    const wrongId = Buffer.from(answerWith(query, [{ type: 'A', name, ttl: 5, data: '203.0.113.66' }]));
    wrongId.writeUInt16BE(wrongId.readUInt16BE(0) ^ 0x5555, 0);
    const wrongQuestion = rawResponse(query.readUInt16BE(0), { name: 'other.allowed.test', type: 1 }, [
      record({ name: nameBytes('other.allowed.test'), type: 1, ttl: 5, data: ipv4Bytes('203.0.113.67') }),
    ]);
    return [wrongId, wrongQuestion, real];
  }
  if (name === 'garbled.allowed.test') {
    // The right id and question, then an A record with 2 bytes of data.
    const garbled = Uint8Array.from([...query, ...record({ name: nameBytes(name), type: 1, ttl: 5, data: [1, 2] })]);
    garbled.set([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0], 2);
    return [garbled];
  }
  const concurrent = /^n(\d+)\.allowed\.test$/.exec(name);
  if (concurrent) return [answerWith(query, [{ type: 'A', name, ttl: 60, data: concurrentAddress(Number(concurrent[1])) }])];
  return [answerWith(query, [], { rcode: 3 })];
}

/** Bytes waiting in the receive queue of this namespace's IPv4 UDP socket bound to 127.0.0.1:`port` (/proc/net/udp). */
function receiveQueueBytes(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local) return parseInt(fields[4]!.split(':')[1]!, 16);
  }
  throw new Error(`no UDP socket on 127.0.0.1:${port}`);
}

/** The rcode read straight from the header (dns-packet's types do not declare it). */
function rcodeOf(answer: Buffer | undefined | null): string {
  if (!answer) return '<no answer>';
  return ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'][answer[3]! & 0xf] ?? 'other';
}

function aRecords(answer: Buffer | null): string[] {
  if (!answer) return ['<no answer>'];
  return (dnsPacket.decode(answer).answers ?? []).flatMap((record) => (record.type === 'A' || record.type === 'AAAA' ? [String(record.data)] : []));
}

let upstream: FakeUpstream;
let gate: TestGate;
let proxy: DnsProxy;
let port4: number;
let port6: number;

beforeAll(async () => {
  upstream = await FakeUpstream.start(respond);
  gate = new TestGate();
  proxy = await DnsProxy.start({
    listen: [
      { address: '127.0.0.1', port: 0 },
      { address: '::1', port: 0 },
    ],
    upstream: { address: '127.0.0.1', port: upstream.port },
    gate,
    upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
  });
  port4 = proxy.addresses[0]!.port;
  port6 = proxy.addresses[1]!.port;
});

afterAll(async () => {
  await proxy?.close();
  await upstream?.close();
});

afterEach(() => {
  gate.respond = () => ({ action: 'release' });
  gate.onReported = null;
});

describe('DnsProxy', () => {
  it('reports the ports it actually bound', () => {
    expect(proxy.addresses).toEqual([
      { address: '127.0.0.1', port: port4 },
      { address: '::1', port: port6 },
    ]);
    expect(port4).toBeGreaterThan(0);
  });

  it('answers a denied name NXDOMAIN locally and never forwards it', async () => {
    const answer = await askUdp(port4, packetQuery(0x4242, 'exfil-c2VjcmV0.evil.test', 'TXT'));
    expect(dnsPacket.decode(answer!)).toMatchObject({ id: 0x4242, rcode: 'NXDOMAIN', flag_ra: true, answers: [] });
    const exchange = await gate.exchangeFor('exfil-c2vjcmv0.evil.test');
    expect(exchange).toMatchObject({ forwarded: false, rcode: 'NXDOMAIN', transport: 'udp', response: null });
    expect(exchange.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(upstream.seen.some((question) => question.name.includes('evil'))).toBe(false);
  });

  it("answers an allowed name with the upstream's records and the client's id", async () => {
    const answer = await askUdp(port4, packetQuery(0x0102, 'WWW.Allowed.Test', 'A'));
    expect(dnsPacket.decode(answer!).id).toBe(0x0102);
    expect(aRecords(answer)).toEqual(['198.51.100.10']);
    const exchange = await gate.exchangeFor('www.allowed.test');
    expect(exchange).toMatchObject({ forwarded: true, rcode: 'NOERROR', question: { qtype: 'A' } });
    expect(exchange.response?.addresses).toEqual([{ ip: '198.51.100.10', family: 4, ttl: 300, name: 'www.allowed.test' }]);
    expect(exchange.error).toBeUndefined();
  });

  it("forwards the client's bytes unchanged but for the id (EDNS and the DO bit pass)", async () => {
    const query = packetQuery(0x7777, 'allowed.test', 'A', true);
    await askUdp(port4, query);
    const forwarded = upstream.seen.find((question) => question.name === 'allowed.test')!.raw;
    expect([...forwarded.subarray(2)]).toEqual([...query.subarray(2)]);
  });

  it('decodes a CNAME chain into names and addresses for the gate', async () => {
    const answer = await askUdp(port4, packetQuery(1, 'chain.allowed.test', 'A'));
    expect(aRecords(answer)).toEqual(['198.51.100.20']);
    const seen = gate.responses.find((entry) => entry.question.name === 'chain.allowed.test')!;
    expect(seen.response.names).toEqual(['chain.allowed.test', 'edge.cdn.test', 'pop.cdn.test']);
    expect(seen.response.addresses.map((address) => address.ip)).toEqual(['198.51.100.20']);
  });

  it('hands HTTPS record hints to the gate as addresses and passes the record through', async () => {
    const answer = await askUdp(port4, rawQuery(9, 'svc.allowed.test', 65));
    expect(decodeResponse(answer!).answers.map((record) => record.type)).toEqual(['HTTPS']);
    const seen = gate.responses.find((entry) => entry.question.name === 'svc.allowed.test')!;
    expect(seen.question.qtype).toBe('HTTPS');
    expect(seen.response.addresses.map((address) => `${address.ip}/${address.family}`)).toEqual(['203.0.113.5/4', '2001:db8::5/6']);
  });

  it('answers AAAA queries, over IPv6 too', async () => {
    const answer = await askUdp(port6, packetQuery(2, 'v6.allowed.test', 'AAAA'), { address: '::1' });
    expect(aRecords(answer)).toEqual(['2001:db8::6']);
    expect((await gate.exchangeFor('v6.allowed.test')).client).toMatch(/^\[::1\]:\d+$/);
  });

  it('answers TCP clients, including two pipelined queries in one write', async () => {
    const answers = await askTcp(port4, [packetQuery(0x0a0a, 'www.allowed.test', 'A'), packetQuery(0x0b0b, 'v6.allowed.test', 'AAAA')]);
    const byId = new Map(answers.map((answer) => [dnsPacket.decode(answer).id, answer]));
    expect(aRecords(byId.get(0x0a0a) ?? null)).toEqual(['198.51.100.10']);
    expect(aRecords(byId.get(0x0b0b) ?? null)).toEqual(['2001:db8::6']);
    expect(gate.exchanges.some((exchange) => exchange.transport === 'tcp' && exchange.question?.name === 'v6.allowed.test')).toBe(true);
  });

  it('sends a TCP query once more when the upstream drops the connection under it', async () => {
    const [answer] = await askTcp(port4, [packetQuery(0x0c0c, 'flaky.allowed.test', 'A')]);
    expect(aRecords(answer!)).toEqual(['198.51.100.40']);
    expect(upstream.seen.filter((question) => question.name === 'flaky.allowed.test')).toHaveLength(2);
  });

  it('answers a TCP client that half-closes right after its query', async () => {
    const socket = net.connect({ port: port4, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no close within 3 s')), 3000);
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    socket.end(encodeTcpFrame(packetQuery(0x0d0d, 'www.allowed.test', 'A')));
    await closed;
    const frames = new TcpFrameDecoder().push(Buffer.concat(chunks));
    expect(frames.map((frame) => aRecords(Buffer.from(frame)))).toEqual([['198.51.100.10']]);
  });

  it('answers a denied name over TCP locally too', async () => {
    const [answer] = await askTcp(port4, [packetQuery(5, 'evil.test', 'A')]);
    expect(rcodeOf(answer!)).toBe('NXDOMAIN');
    expect(upstream.saw('evil.test')).toBe(false);
  });

  it('fetches a truncated UDP answer again over TCP and returns it whole to a client that can take it', async () => {
    const answer = await askUdp(port4, packetQuery(3, 'big.allowed.test', 'A', true));
    expect(dnsPacket.decode(answer!).flag_tc).toBe(false);
    expect(aRecords(answer)).toHaveLength(30);
    expect(answer!.length).toBeGreaterThan(512);
    const transports = upstream.seen.filter((question) => question.name === 'big.allowed.test').map((question) => question.transport);
    expect(transports.slice(0, 2)).toEqual(['udp', 'tcp']);
    const seen = gate.responses.find((entry) => entry.question.name === 'big.allowed.test')!;
    expect(seen.response.truncated).toBe(false);
    expect(seen.response.addresses).toHaveLength(30);
  });

  it('sends TC to a UDP client whose payload size (no EDNS: 512) is too small for the whole answer', async () => {
    const answer = await askUdp(port4, packetQuery(4, 'big.allowed.test', 'A', false));
    expect(dnsPacket.decode(answer!)).toMatchObject({ id: 4, flag_tc: true, answers: [] });
    expect(answer!.length).toBeLessThanOrEqual(512);
  });

  it('awaits onResponse before the client gets the answer', async () => {
    const order: string[] = [];
    gate.respond = async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      order.push('admitted');
      return { action: 'release' };
    };
    const started = performance.now();
    const answer = await askUdp(port4, packetQuery(6, 'www.allowed.test', 'A'));
    order.push('answered');
    expect(aRecords(answer)).toEqual(['198.51.100.10']);
    expect(order).toEqual(['admitted', 'answered']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it("hands onResponse's decision, with the gate's note, back in the exchange (awaited or not)", async () => {
    gate.respond = () => ({ action: 'release', note: { admitted: 'at once' } });
    await askUdp(port4, packetQuery(0x6161, 'www.allowed.test', 'A'));
    gate.respond = async () => ({ action: 'answer', rcode: 'REFUSED', note: { admitted: 'later' } });
    await askUdp(port4, packetQuery(0x6262, 'www.allowed.test', 'A'));
    const reported = gate.exchanges.filter((exchange) => exchange.question?.name === 'www.allowed.test' && [0x6161, 0x6262].includes(exchange.question.id));
    expect(reported.map((exchange) => exchange.decision)).toEqual([
      { action: 'release', note: { admitted: 'at once' } },
      { action: 'answer', rcode: 'REFUSED', note: { admitted: 'later' } },
    ]);
    // A query answered without asking onResponse has no decision to hand back.
    await askUdp(port4, packetQuery(0x6363, 'nodecision.evil.test', 'A'));
    expect((await gate.exchangeFor('nodecision.evil.test')).decision).toBeNull();
  });

  it("answers what onResponse decides instead of the upstream's answer", async () => {
    gate.respond = () => ({ action: 'answer', rcode: 'REFUSED' });
    const answer = await askUdp(port4, packetQuery(7, 'allowed.test', 'A'));
    expect(dnsPacket.decode(answer!)).toMatchObject({ rcode: 'REFUSED', answers: [] });
  });

  it('fails closed with SERVFAIL when onResponse throws (addresses could not be admitted)', async () => {
    gate.respond = () => Promise.reject(new RunwallError('RW_NFT_FAILED', 'set add refused'));
    const answer = await askUdp(port4, packetQuery(8, 'chain.allowed.test', 'AAAA'));
    expect(rcodeOf(answer!)).toBe('SERVFAIL');
    const exchange = gate.exchanges.filter((entry) => entry.question?.name === 'chain.allowed.test').at(-1)!;
    expect(exchange.error?.code).toBe('RW_NFT_FAILED');
  });

  it('answers SERVFAIL within the upstream timeout when the upstream is silent', async () => {
    const timeoutsBefore = proxy.stats().upstreamTimeouts;
    const started = performance.now();
    const answer = await askUdp(port4, packetQuery(9, 'slow.allowed.test', 'A'));
    const elapsed = performance.now() - started;
    expect(rcodeOf(answer!)).toBe('SERVFAIL');
    expect(elapsed).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(UPSTREAM_TIMEOUT_MS + 250);
    const exchange = await gate.exchangeFor('slow.allowed.test');
    expect(exchange).toMatchObject({ forwarded: true, rcode: 'SERVFAIL', response: null, error: { code: 'RW_DNS_UPSTREAM_FAILED' } });
    expect(proxy.stats().upstreamTimeouts).toBe(timeoutsBefore + 1);
  });

  it('sends a UDP query once more when its first datagram got no answer, within the timeout', async () => {
    const answer = await askUdp(port4, packetQuery(12, 'lossy.allowed.test', 'A'));
    expect(aRecords(answer)).toEqual(['198.51.100.41']);
    expect(lossyUdpSeen).toBe(2);
  });

  it('ignores upstream replies with a wrong id or a wrong question', async () => {
    const answer = await askUdp(port4, packetQuery(10, 'spoof.allowed.test', 'A'));
    expect(aRecords(answer)).toEqual(['198.51.100.30']);
  });

  it('answers SERVFAIL and reports RW_DNS_MALFORMED when the upstream answer cannot be decoded', async () => {
    const answer = await askUdp(port4, packetQuery(11, 'garbled.allowed.test', 'A'));
    expect(rcodeOf(answer!)).toBe('SERVFAIL');
    expect((await gate.exchangeFor('garbled.allowed.test')).error?.code).toBe('RW_DNS_MALFORMED');
  });

  it('survives garbage: FORMERR when an id can be read, nothing for replies or scraps, never a forward', async () => {
    const before = proxy.stats();
    const seenBefore = upstream.seen.length;
    const exchangesBefore = gate.exchanges.length;
    const twoQuestions = Uint8Array.from([...u16(0x2222), ...u16(0x0100), ...u16(2), 0, 0, 0, 0, 0, 0, ...nameBytes('a.allowed.test'), ...u16(1), ...u16(1), ...nameBytes('b.allowed.test'), ...u16(1), ...u16(1)]);
    const cut = packetQuery(0x3333, 'www.allowed.test', 'A').subarray(0, 20);
    const responseShaped = answerWith(packetQuery(0x4444, 'www.allowed.test', 'A'), [{ type: 'A', name: 'www.allowed.test', data: '198.51.100.1' }]);
    const scrap = Uint8Array.from([1, 2, 3, 4, 5]);
    const noise = Uint8Array.from({ length: 64 }, (_, index) => (index * 37 + 11) & 0x7f);

    expect(dnsPacket.decode((await askUdp(port4, twoQuestions))!)).toMatchObject({ id: 0x2222, rcode: 'FORMERR' });
    expect(dnsPacket.decode((await askUdp(port4, cut))!)).toMatchObject({ id: 0x3333, rcode: 'FORMERR' });
    expect(await askUdp(port4, responseShaped, { timeoutMs: 200 })).toBeNull();
    expect(await askUdp(port4, scrap, { timeoutMs: 200 })).toBeNull();
    expect(rcodeOf(await askUdp(port4, noise))).toBe('FORMERR'); // opcode 10: not a standard query
    const [tcpAnswer] = await askTcp(port4, [cut]);
    expect(rcodeOf(tcpAnswer!)).toBe('FORMERR');

    expect(upstream.seen.length).toBe(seenBefore);
    expect(proxy.stats().malformed - before.malformed).toBe(6);
    const reported = gate.exchanges.slice(exchangesBefore).filter((exchange) => exchange.question === null);
    expect(reported).toHaveLength(6);
    expect(reported.every((exchange) => exchange.error?.code === 'RW_DNS_MALFORMED' && !exchange.forwarded)).toBe(true);
    expect(reported.filter((exchange) => exchange.rcode === null)).toHaveLength(2);
    // And it still answers.
    expect(aRecords(await askUdp(port4, packetQuery(12, 'www.allowed.test', 'A')))).toEqual(['198.51.100.10']);
  });

  it('has sent a UDP answer by the time it reports the exchange (recording never delays the answer)', async () => {
    const client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    const clientPort = client.address().port;
    const queuedWhenReported = new Map<string, number>();
    gate.onReported = (exchange) => {
      // The client's socket is read only once the proxy's callback has returned: what is queued now was sent before the report.
      if (exchange.client === `127.0.0.1:${clientPort}`) queuedWhenReported.set(exchange.question?.name ?? '', receiveQueueBytes(clientPort));
    };
    try {
      const answers: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${answers.length} of 2 answered in 3 s`)), 3000);
        client.on('message', (message) => {
          answers.push(message);
          if (answers.length === 2) {
            clearTimeout(timer);
            resolve();
          }
        });
        client.send(packetQuery(0x5151, 'www.allowed.test', 'A'), port4, '127.0.0.1');
        client.send(packetQuery(0x5252, 'sent-first.evil.test', 'A'), port4, '127.0.0.1');
      });
      expect(answers.map(rcodeOf).sort()).toEqual(['NOERROR', 'NXDOMAIN']);
    } finally {
      client.close();
    }
    expect(queuedWhenReported.get('www.allowed.test')).toBeGreaterThan(0);
    expect(queuedWhenReported.get('sent-first.evil.test')).toBeGreaterThan(0);
  });

  it('answers 1,000 concurrent queries for distinct names, each correctly', async () => {
    const socket = dgram.createSocket('udp4');
    socket.setMaxListeners(0);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    socket.setRecvBufferSize(4 * 1024 * 1024);
    const answers = new Map<number, string[]>();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${answers.size} of 1000 answered in 10 s`)), 10_000);
        socket.on('message', (message) => {
          answers.set(message.readUInt16BE(0), aRecords(message));
          if (answers.size === 1000) {
            clearTimeout(timer);
            resolve();
          }
        });
        for (let index = 0; index < 1000; index++) socket.send(packetQuery(index, `n${index}.allowed.test`, 'A'), port4, '127.0.0.1');
      });
    } finally {
      socket.close();
    }
    for (let index = 0; index < 1000; index++) expect(answers.get(index), `answer ${index}`).toEqual([concurrentAddress(index)]);
  });

  it('counts what it did', () => {
    const stats = proxy.stats();
    expect(stats.queries).toBeGreaterThanOrEqual(stats.forwarded + stats.answeredLocally + stats.malformed);
    expect(stats.forwarded).toBeGreaterThan(1000);
    expect(stats.answeredLocally).toBeGreaterThanOrEqual(2);
  });
});

describe('DnsProxy lifecycle', () => {
  it('fails to start with RW_DNS_BIND_FAILED naming the address, and closes what it had opened', async () => {
    const free = await freePort();
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    const takenPort = taken.address().port;
    const upstreamHere = await FakeUpstream.start(respond);
    try {
      const start = DnsProxy.start({
        listen: [
          { address: '127.0.0.1', port: free },
          { address: '127.0.0.1', port: takenPort },
        ],
        upstream: { address: '127.0.0.1', port: upstreamHere.port },
        gate: new TestGate(),
      });
      await expect(start).rejects.toMatchObject({ code: 'RW_DNS_BIND_FAILED', message: expect.stringContaining(`127.0.0.1:${takenPort}`) });
      // The first address was bound, then released: it binds again on both transports.
      const again = await DnsProxy.start({ listen: [{ address: '127.0.0.1', port: free }], upstream: { address: '127.0.0.1', port: upstreamHere.port }, gate: new TestGate() });
      await again.close();
    } finally {
      taken.close();
      await upstreamHere.close();
    }
  });

  it('refuses an upstream that is not an IP address', async () => {
    const start = DnsProxy.start({ listen: [{ address: '127.0.0.1', port: 0 }], upstream: { address: 'resolver.example', port: 53 }, gate: new TestGate() });
    await expect(start).rejects.toMatchObject({ code: 'RW_UPSTREAM_INVALID' });
  });

  it('close() stops answering, reports queries still pending, and releases its ports', async () => {
    const upstreamHere = await FakeUpstream.start(respond);
    const gateHere = new TestGate();
    const proxyHere = await DnsProxy.start({ listen: [{ address: '127.0.0.1', port: 0 }], upstream: { address: '127.0.0.1', port: upstreamHere.port }, gate: gateHere });
    const { port } = proxyHere.addresses[0]!;
    try {
      const pending = askUdp(port, packetQuery(1, 'slow.allowed.test', 'A'), { timeoutMs: 800 });
      const deadline = Date.now() + 2000;
      while (!upstreamHere.saw('slow.allowed.test') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      await proxyHere.close();
      expect(await pending).toBeNull();
      expect(await gateHere.exchangeFor('slow.allowed.test')).toMatchObject({ forwarded: true, rcode: null, error: { code: 'RW_DNS_UPSTREAM_FAILED' } });
      expect(await askUdp(port, packetQuery(2, 'www.allowed.test', 'A'), { timeoutMs: 200 })).toBeNull();
      // Released: the same port binds again.
      const rebind = net.createServer();
      await new Promise<void>((resolve, reject) => {
        rebind.once('error', reject);
        rebind.listen(port, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => rebind.close(() => resolve()));
    } finally {
      await proxyHere.close();
      await upstreamHere.close();
    }
  });

  it('closes TCP clients beyond maxTcpClients', async () => {
    const upstreamHere = await FakeUpstream.start(respond);
    const proxyHere = await DnsProxy.start({ listen: [{ address: '127.0.0.1', port: 0 }], upstream: { address: '127.0.0.1', port: upstreamHere.port }, gate: new TestGate(), maxTcpClients: 1 });
    const { port } = proxyHere.addresses[0]!;
    const first = net.connect(port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => first.once('connect', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await expect(askTcp(port, [packetQuery(1, 'www.allowed.test', 'A')], 1, 1000)).rejects.toThrow();
      first.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [answer] = await askTcp(port, [packetQuery(1, 'www.allowed.test', 'A')]);
      expect(aRecords(answer!)).toEqual(['198.51.100.10']);
    } finally {
      first.destroy();
      await proxyHere.close();
      await upstreamHere.close();
    }
  });
});

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
