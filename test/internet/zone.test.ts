// The test internet's DNS answers, as the egress tests rely on them.
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  answerQuery,
  encodeHttpsRdata,
  parseZoneRecords,
  resolve,
  rogueResolve,
  Zone,
  ZoneInputError,
  type Resolution,
} from '../helpers/internet-zone.js';

const zone = new Zone();
const upstream = (name: string, type: string): Resolution => resolve(zone, name, type);

/** [owner, type, data] of each answer, for compact expectations. */
function answersOf(name: string, type: string, z = zone): [string, string, unknown][] {
  return resolve(z, name, type).answers.map(({ name: owner, record }) => [owner, record.type, record.data]);
}

function query(name: string, type: string, options: { id?: number; edns?: boolean } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: options.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    additionals: options.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer] : [],
  });
}

/** dns-packet decodes the rcode but its types do not declare it. */
type Decoded = dnsPacket.DecodedPacket & { rcode?: string };

function decodeResponse(packet: Buffer | undefined): Decoded {
  expect(packet).toBeDefined();
  return dnsPacket.decode(packet!) as Decoded;
}

describe('the fixed zone', () => {
  it('answers every record kind the egress tests use', () => {
    expect(answersOf('allowed.test', 'A')).toEqual([['allowed.test', 'A', '198.51.100.10']]);
    expect(answersOf('allowed.test', 'AAAA')).toEqual([['allowed.test', 'AAAA', '2001:db8::10']]);
    expect(answersOf('allowed.test', 'TXT')).toEqual([['allowed.test', 'TXT', ['v=allowed']]]);
    expect(answersOf('allowed.test', 'HTTPS')).toEqual([
      ['allowed.test', 'HTTPS', { priority: 1, target: '.', ipv4hint: ['198.51.100.10'], ipv6hint: ['2001:db8::10'] }],
    ]);
    for (const name of ['www.allowed.test', 'sub.allowed.test', 'deep.sub.allowed.test']) {
      expect(answersOf(name, 'A')).toEqual([[name, 'A', '198.51.100.12']]);
    }
    expect(answersOf('other.test', 'AAAA')).toEqual([['other.test', 'AAAA', '2001:db8::11']]);
    expect(answersOf('txt.other.test', 'TXT')).toEqual([['txt.other.test', 'TXT', ['secret']]]);
    expect(resolve(zone, 'short.allowed.test', 'A').answers[0]?.record.ttl).toBe(1);
    expect(resolve(zone, 'allowed.test', 'A').answers[0]?.record.ttl).toBe(60);
  });

  it('follows CNAME chains and puts every hop in the answer', () => {
    expect(answersOf('alias.allowed.test', 'A')).toEqual([
      ['alias.allowed.test', 'CNAME', 'edge.cdn.test'],
      ['edge.cdn.test', 'CNAME', 'edge2.cdn.test'],
      ['edge2.cdn.test', 'A', '198.51.100.20'],
    ]);
    expect(answersOf('exfil.evil-cname.test', 'A')).toEqual([
      ['exfil.evil-cname.test', 'CNAME', 'evil.test'],
      ['evil.test', 'A', '203.0.113.66'],
    ]);
    // Asked for the CNAME itself, the chain is not followed.
    expect(answersOf('alias.allowed.test', 'CNAME')).toEqual([['alias.allowed.test', 'CNAME', 'edge.cdn.test']]);
  });

  it('knows names only it was told about: NXDOMAIN otherwise, NODATA for a missing type', () => {
    expect(resolve(zone, 'unknown.test', 'A')).toEqual({ rcode: 'NXDOMAIN', answers: [] });
    expect(resolve(zone, 'allowed.test.example', 'A').rcode).toBe('NXDOMAIN');
    expect(resolve(zone, 'v6only.allowed.test', 'A')).toEqual({ rcode: 'NOERROR', answers: [] });
    expect(answersOf('v6only.allowed.test', 'AAAA')).toEqual([['v6only.allowed.test', 'AAAA', '2001:db8::30']]);
    expect(resolve(zone, 'www.allowed.test', 'AAAA')).toEqual({ rcode: 'NOERROR', answers: [] });
  });

  it('answers every name under evil.test, at any depth', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) => {
        const name = `${labels.join('.')}.evil.test`;
        expect(answersOf(name, 'A')).toEqual([[name, 'A', '203.0.113.66']]);
        expect(answersOf(name, 'AAAA')).toEqual([[name, 'AAAA', '2001:db8::66']]);
      }),
    );
  });

  it('generates nI.gen.test for every I in 0..99999', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999 }), (i) => {
        const [a, aaaa] = resolve(zone, `n${i}.gen.test`, 'ANY').answers.map((answer) => answer.record);
        expect(a).toEqual({ type: 'A', data: `198.51.100.${50 + (i % 150)}`, ttl: 60 });
        // AAAA is 2001:db8:1:: plus I + 1, as a 128-bit number.
        const packed = dnsPacket.encode({
          type: 'response',
          answers: [{ type: 'AAAA', name: 'x', data: aaaa?.data as string }],
        });
        const low = packed.readUInt32BE(packed.length - 4);
        expect(packed.subarray(packed.length - 16, packed.length - 4).toString('hex')).toBe('20010db80001000000000000');
        expect(low).toBe(i + 1);
      }),
    );
    expect(resolve(zone, 'n007.gen.test', 'A').rcode).toBe('NXDOMAIN');
    expect(resolve(zone, 'n100000.gen.test', 'A').rcode).toBe('NXDOMAIN');
  });

  it('matches names case-insensitively', () => {
    const names = ['allowed.test', 'alias.allowed.test', 'n12.gen.test', 'a.evil.test', 'txt.other.test'];
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), (name, upper) => {
        const mixed = [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
        const strip = (r: Resolution): unknown => r.answers.map((answer) => answer.record);
        expect(strip(resolve(zone, mixed, 'ANY'))).toEqual(strip(resolve(zone, name, 'ANY')));
      }),
    );
  });
});

describe('records set at run time', () => {
  it('replace a name, make it NXDOMAIN with an empty list, and add new names', () => {
    const z = new Zone();
    z.set('allowed.test', parseZoneRecords([{ type: 'A', data: '198.51.100.99', ttl: 5 }]));
    expect(answersOf('allowed.test', 'A', z)).toEqual([['allowed.test', 'A', '198.51.100.99']]);
    expect(answersOf('allowed.test', 'AAAA', z)).toEqual([]);
    z.set('N5.Gen.Test.', parseZoneRecords([]));
    expect(resolve(z, 'n5.gen.test', 'A').rcode).toBe('NXDOMAIN');
    z.set('new.test', parseZoneRecords([{ type: 'CNAME', data: 'allowed.test' }]));
    expect(answersOf('new.test', 'A', z)).toEqual([
      ['new.test', 'CNAME', 'allowed.test'],
      ['allowed.test', 'A', '198.51.100.99'],
    ]);
    // The shared zone is untouched.
    expect(answersOf('allowed.test', 'A')).toEqual([['allowed.test', 'A', '198.51.100.10']]);
  });

  it('are validated strictly: unknown types and malformed data are refused', () => {
    const bad: unknown[] = [
      'A 1.2.3.4',
      [{ type: 'MX', data: 'mail.test' }],
      [{ type: 'a', data: '198.51.100.1' }],
      [{ type: 'A', data: '2001:db8::1' }],
      [{ type: 'AAAA', data: '198.51.100.1' }],
      [{ type: 'A', data: '198.51.100.1', ttl: -1 }],
      [{ type: 'A', data: '198.51.100.1', ttl: 1.5 }],
      [{ type: 'CNAME', data: 'a.test' }, { type: 'A', data: '198.51.100.1' }],
      [{ type: 'CNAME', data: 'bad name' }],
      [{ type: 'TXT', data: [] }],
      [{ type: 'TXT', data: ['x'.repeat(256)] }],
      [{ type: 'HTTPS', data: { priority: 1, target: '.', ech: 'x' } }],
      [{ type: 'HTTPS', data: { priority: 70000, target: '.' } }],
      [{ type: 'HTTPS', data: { priority: 1, target: '.', ipv4hint: ['2001:db8::1'] } }],
    ];
    for (const input of bad) expect(() => parseZoneRecords(input), JSON.stringify(input)).toThrow(ZoneInputError);
    expect(() => new Zone().set('bad name', [])).toThrow(ZoneInputError);
    expect(parseZoneRecords([{ type: 'TXT', data: 'one' }])).toEqual([{ type: 'TXT', data: ['one'], ttl: 60 }]);
    expect(Object.isFrozen(parseZoneRecords([{ type: 'A', data: '198.51.100.1' }])[0])).toBe(true);
  });
});

describe('answering packets', () => {
  it('echoes the id and question, sets QR/AA/RA, and logs the question in lower case', () => {
    const answered = answerQuery(query('Allowed.Test', 'A', { id: 777 }), 'udp', upstream);
    expect(answered.question).toEqual({ name: 'allowed.test', type: 'A' });
    const response = decodeResponse(answered.response);
    expect(response.id).toBe(777);
    expect(response.flag_qr && response.flag_aa && response.flag_ra && response.flag_rd).toBe(true);
    expect(response.rcode).toBe('NOERROR');
    expect(response.questions).toEqual([{ name: 'Allowed.Test', type: 'A', class: 'IN' }]);
    expect(response.answers).toMatchObject([{ name: 'Allowed.Test', type: 'A', ttl: 60, data: '198.51.100.10' }]);
  });

  it('puts the SOA in the authority section of a negative answer', () => {
    const response = decodeResponse(answerQuery(query('nothing.test', 'A'), 'udp', upstream).response);
    expect(response.rcode).toBe('NXDOMAIN');
    expect(response.authorities).toMatchObject([{ name: 'test', type: 'SOA' }]);
  });

  it('encodes HTTPS records in RFC 9460 wire form', () => {
    const response = decodeResponse(answerQuery(query('allowed.test', 'UNKNOWN_65'), 'udp', upstream).response);
    expect(response.answers?.[0]?.type).toBe('UNKNOWN_65');
    const rdata = encodeHttpsRdata({ priority: 1, target: '.', ipv4hint: ['198.51.100.10'], ipv6hint: ['2001:db8::10'] });
    expect(rdata.toString('hex')).toBe(
      '0001' + '00' + '0004' + '0004' + 'c633640a' + '0006' + '0010' + '20010db8000000000000000000000010',
    );
    expect(encodeHttpsRdata({ priority: 0, target: 'edge.cdn.test', alpn: ['h2'], port: 8443 }).toString('hex')).toBe(
      '0000' + '0465646765' + '0363646e' + '0474657374' + '00' + '0001' + '0003' + '026832' + '0003' + '0002' + '20fb',
    );
  });

  it('sets TC when a UDP answer does not fit, and answers in full over TCP', () => {
    const z = new Zone();
    z.set('big.test', parseZoneRecords(Array.from({ length: 40 }, (_, i) => ({ type: 'TXT', data: `${i}-${'x'.repeat(40)}` }))));
    const answerer = (name: string, type: string): Resolution => resolve(z, name, type);
    const udp = decodeResponse(answerQuery(query('big.test', 'TXT'), 'udp', answerer).response);
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const edns = answerQuery(query('big.test', 'TXT', { edns: true }), 'udp', answerer).response;
    expect(edns!.length).toBeLessThanOrEqual(1232);
    const tcp = decodeResponse(answerQuery(query('big.test', 'TXT'), 'tcp', answerer).response);
    expect(tcp.flag_tc).toBe(false);
    expect(tcp.answers).toHaveLength(40);
  });

  it('answers every well-formed query with a decodable response for that query', () => {
    const names = fc.constantFrom('allowed.test', 'alias.allowed.test', 'x.evil.test', 'n99999.gen.test', 'nope.test', 'example.com');
    const types = fc.constantFrom('A', 'AAAA', 'CNAME', 'TXT', 'MX', 'ANY', 'UNKNOWN_65', 'SOA');
    fc.assert(
      fc.property(names, types, fc.integer({ min: 0, max: 0xffff }), fc.boolean(), fc.constantFrom('udp' as const, 'tcp' as const), (name, type, id, edns, transport) => {
        const answered = answerQuery(query(name, type, { id, edns }), transport, upstream);
        const response = decodeResponse(answered.response);
        expect(response.id).toBe(id);
        expect(response.type).toBe('response');
        expect(response.questions?.[0]?.name).toBe(name);
        expect(['NOERROR', 'NXDOMAIN']).toContain(response.rcode);
      }),
    );
  });

  it('never throws on arbitrary bytes; a readable header gets FORMERR with its id', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const answered = answerQuery(Buffer.from(bytes), 'udp', upstream);
        if (answered.response) expect(answered.response.readUInt16BE(0)).toBe(bytes.length >= 2 ? Buffer.from(bytes).readUInt16BE(0) : 0);
      }),
    );
    const formerr = decodeResponse(answerQuery(Buffer.from('abcdefghijklmnop'), 'udp', upstream).response);
    expect(formerr.rcode).toBe('FORMERR');
  });

  it('the rogue resolver gives every name 203.0.113.99', () => {
    const response = decodeResponse(answerQuery(query('github.com', 'A'), 'udp', rogueResolve).response);
    expect(response.answers).toMatchObject([{ name: 'github.com', type: 'A', data: '203.0.113.99' }]);
    expect(decodeResponse(answerQuery(query('github.com', 'AAAA'), 'udp', rogueResolve).response).answers).toEqual([]);
  });
});
