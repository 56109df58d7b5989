import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunwallError } from '../../../src/protocol/index.js';
import { buildLocalAnswer, decodeQuery, decodeResponse, withId } from '../../../src/agent/dns/index.js';
import { ipv4Bytes, ipv6Bytes, nameBytes, packetQuery, rawQuery, rawResponse, record, svcbData, u16, u32 } from './dns-fixtures.js';

function malformedCode(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return error instanceof RunwallError ? error.code : `not a RunwallError: ${String(error)}`;
  }
  return 'did not throw';
}

describe('decodeQuery', () => {
  it('reads id, lower-cased name, type, class and RD from a dig-like query with EDNS', () => {
    const question = decodeQuery(packetQuery(0x1234, 'GitHub.COM', 'AAAA', true));
    expect(question).toEqual({ id: 0x1234, name: 'github.com', qtype: 'AAAA', qclass: 'IN', recursionDesired: true });
    expect(Object.isFrozen(question)).toBe(true);
  });

  it('names HTTPS and SVCB, and unknown types in RFC 3597 form', () => {
    expect(decodeQuery(rawQuery(1, 'allowed.test', 65)).qtype).toBe('HTTPS');
    expect(decodeQuery(rawQuery(1, 'allowed.test', 64)).qtype).toBe('SVCB');
    expect(decodeQuery(rawQuery(1, 'allowed.test', 65534)).qtype).toBe('TYPE65534');
    expect(decodeQuery(rawQuery(1, 'allowed.test', 1, { klass: 3 })).qclass).toBe('CH');
    expect(decodeQuery(rawQuery(1, 'allowed.test', 1, { klass: 77 })).qclass).toBe('CLASS77');
  });

  it('gives the root as an empty name and RD=0 as false', () => {
    expect(decodeQuery(rawQuery(9, '', 2, { flags: 0 }))).toMatchObject({ name: '', qtype: 'NS', recursionDesired: false });
  });

  it.each([
    ['shorter than a header', Uint8Array.from([1, 2, 3])],
    ['a response (QR=1)', rawQuery(1, 'a.test', 1, { flags: 0x8100 })],
    ['opcode NOTIFY', rawQuery(1, 'a.test', 1, { flags: 0x2000 })],
    ['two questions', Uint8Array.from([...u16(1), ...u16(0x100), ...u16(2), 0, 0, 0, 0, 0, 0, ...nameBytes('a.test'), ...u16(1), ...u16(1), ...nameBytes('b.test'), ...u16(1), ...u16(1)])],
    ['no question', Uint8Array.from([...u16(1), ...u16(0x100), 0, 0, 0, 0, 0, 0, 0, 0])],
    ['cut inside the question', rawQuery(1, 'allowed.test', 1).subarray(0, 20)],
    ['cut before type and class', rawQuery(1, 'allowed.test', 1).subarray(0, 12 + 14)],
    ['an additional record that is not there', Uint8Array.from([...rawQuery(1, 'a.test', 1)].map((byte, index) => (index === 11 ? 1 : byte)))],
    ['trailing bytes', Uint8Array.from([...rawQuery(1, 'a.test', 1), 0, 0])],
    ['a label containing a dot', Uint8Array.from([...u16(1), ...u16(0x100), ...u16(1), 0, 0, 0, 0, 0, 0, 1, 0x78, 11, ...Buffer.from('evil.github'), 3, ...Buffer.from('com'), 0, ...u16(1), ...u16(1)])],
    ['a label with a space', rawQuery(1, 'a b.test', 1)],
    ['a compressed question name', Uint8Array.from([...u16(1), ...u16(0x100), ...u16(1), 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, ...u16(1), ...u16(1)])],
    ['a name longer than 255 bytes', rawQuery(1, Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.'), 1)],
  ])('refuses %s with RW_DNS_MALFORMED', (_label, message) => {
    expect(malformedCode(() => decodeQuery(message))).toBe('RW_DNS_MALFORMED');
  });
});

describe('decodeResponse', () => {
  it('follows a CNAME chain into names and addresses, lower-cased', () => {
    const message = dnsPacket.encode({
      type: 'response',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [{ type: 'A', name: 'WWW.allowed.test' }],
      answers: [
        { type: 'CNAME', name: 'WWW.allowed.test', ttl: 300, data: 'Edge.CDN.test' },
        { type: 'CNAME', name: 'edge.cdn.test', ttl: 60, data: 'pop1.cdn.test' },
        { type: 'A', name: 'pop1.cdn.test', ttl: 30, data: '198.51.100.7' },
        { type: 'A', name: 'pop1.cdn.test', ttl: 30, data: '198.51.100.8' },
      ],
    });
    const response = decodeResponse(message);
    expect(response.id).toBe(7);
    expect(response.rcode).toBe('NOERROR');
    expect(response.truncated).toBe(false);
    expect(response.names).toEqual(['www.allowed.test', 'edge.cdn.test', 'pop1.cdn.test']);
    expect(response.addresses).toEqual([
      { ip: '198.51.100.7', family: 4, ttl: 30, name: 'pop1.cdn.test' },
      { ip: '198.51.100.8', family: 4, ttl: 30, name: 'pop1.cdn.test' },
    ]);
    expect(response.answers[0]).toEqual({ name: 'www.allowed.test', type: 'CNAME', ttl: 300, data: 'edge.cdn.test' });
    expect(Object.isFrozen(response.addresses)).toBe(true);
  });

  it('formats AAAA addresses in RFC 5952 form', () => {
    const message = dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ type: 'AAAA', name: 'v6.test' }],
      answers: [
        { type: 'AAAA', name: 'v6.test', ttl: 5, data: '2001:db8:0:0:0:0:0:1' },
        { type: 'AAAA', name: 'v6.test', ttl: 5, data: '2001:db8:0:1:0:0:0:0' },
        { type: 'AAAA', name: 'v6.test', ttl: 5, data: '2001:db8:1:2:3:4:5:6' },
      ],
    });
    expect(decodeResponse(message).addresses.map((address) => [address.ip, address.family])).toEqual([
      ['2001:db8::1', 6],
      ['2001:db8:0:1::', 6],
      ['2001:db8:1:2:3:4:5:6', 6],
    ]);
  });

  it('takes ipv4hint and ipv6hint of HTTPS records into addresses', () => {
    const data = svcbData(1, '', [
      [1, [2, ...Buffer.from('h2'), 2, ...Buffer.from('h3')]],
      [3, u16(8443)],
      [4, [...ipv4Bytes('203.0.113.10'), ...ipv4Bytes('203.0.113.11')]],
      [6, ipv6Bytes('2001:db8::10')],
    ]);
    const message = rawResponse(3, { name: 'svc.allowed.test', type: 65 }, [record({ name: nameBytes('svc.allowed.test'), type: 65, ttl: 120, data })]);
    const response = decodeResponse(message);
    expect(response.answers[0]).toEqual({
      name: 'svc.allowed.test',
      type: 'HTTPS',
      ttl: 120,
      data: '1 . alpn=h2,h3 port=8443 ipv4hint=203.0.113.10,203.0.113.11 ipv6hint=2001:db8::10',
    });
    expect(response.addresses.map((address) => `${address.ip}/${address.family}/${address.ttl}/${address.name}`)).toEqual([
      '203.0.113.10/4/120/svc.allowed.test',
      '203.0.113.11/4/120/svc.allowed.test',
      '2001:db8::10/6/120/svc.allowed.test',
    ]);
  });

  it('gives MX, SRV, TXT, SOA and unknown types a stable text form', () => {
    const message = rawResponse(4, { name: 'x.test', type: 255 }, [
      record({ name: nameBytes('x.test'), type: 15, ttl: 1, data: [...u16(10), ...nameBytes('Mail.x.test')] }),
      record({ name: nameBytes('x.test'), type: 33, ttl: 1, data: [...u16(1), ...u16(2), ...u16(443), ...nameBytes('srv.x.test')] }),
      record({ name: nameBytes('x.test'), type: 16, ttl: 1, data: [5, ...Buffer.from('hello'), 6, ...Buffer.from(' world')] }),
      record({ name: nameBytes('x.test'), type: 6, ttl: 1, data: [...nameBytes('ns.x.test'), ...nameBytes('admin.x.test'), ...u32(2024), ...u32(1), ...u32(2), ...u32(3), ...u32(4)] }),
      record({ name: nameBytes('x.test'), type: 65534, ttl: 1, data: [0xde, 0xad] }),
    ]);
    expect(decodeResponse(message).answers.map((answer) => `${answer.type} ${answer.data}`)).toEqual([
      'MX 10 mail.x.test',
      'SRV 1 2 443 srv.x.test',
      'TXT hello world',
      'SOA ns.x.test admin.x.test 2024 1 2 3 4',
      'TYPE65534 \\# 2 dead',
    ]);
  });

  it('follows compression pointers', () => {
    // Answer owner is a pointer to the question name at byte 12; the CNAME target reuses its suffix.
    const head = [...u16(5), ...u16(0x8180), ...u16(1), ...u16(2), 0, 0, 0, 0];
    const question = [...nameBytes('a.allowed.test'), ...u16(1), ...u16(1)];
    const cname = [0xc0, 12, ...u16(5), ...u16(1), ...u32(60), ...u16(4), 1, 0x62, 0xc0, 14];
    const cnameTarget = 12 + question.length + 12;
    const a = [0xc0, cnameTarget, ...u16(1), ...u16(1), ...u32(60), ...u16(4), ...ipv4Bytes('198.51.100.1')];
    const response = decodeResponse(Uint8Array.from([...head, ...question, ...cname, ...a]));
    expect(response.names).toEqual(['a.allowed.test', 'b.allowed.test']);
    expect(response.addresses.map((address) => address.ip)).toEqual(['198.51.100.1']);
  });

  it('reads NXDOMAIN and an EDNS-extended rcode', () => {
    expect(decodeResponse(rawResponse(1, { name: 'no.test', type: 1 }, [], { flags: 0x8183 })).rcode).toBe('NXDOMAIN');
    const opt = [0, ...u16(41), ...u16(1232), 1, 0, 0, 0, ...u16(0)]; // extended rcode 1 -> 16 BADVERS
    const message = Uint8Array.from([...rawResponse(1, { name: 'x.test', type: 1 }, [])].map((byte, index) => (index === 11 ? 1 : byte)).concat(opt));
    expect(decodeResponse(message).rcode).toBe('BADVERS');
  });

  it('admits addresses only from class IN records', () => {
    const message = rawResponse(1, { name: 'x.test', type: 1 }, [record({ name: nameBytes('x.test'), type: 1, klass: 3, ttl: 1, data: ipv4Bytes('198.51.100.9') })]);
    expect(decodeResponse(message).addresses).toEqual([]);
  });

  it('returns the complete records of a truncated (TC) answer cut mid-record', () => {
    const full = rawResponse(1, { name: 'big.test', type: 1 }, [
      record({ name: nameBytes('big.test'), type: 1, ttl: 1, data: ipv4Bytes('198.51.100.1') }),
      record({ name: nameBytes('big.test'), type: 1, ttl: 1, data: ipv4Bytes('198.51.100.2') }),
    ], { flags: 0x8380 });
    const response = decodeResponse(full.subarray(0, full.length - 3));
    expect(response.truncated).toBe(true);
    expect(response.addresses.map((address) => address.ip)).toEqual(['198.51.100.1']);
  });

  it.each([
    ['a query (QR=0)', rawQuery(1, 'a.test', 1)],
    ['an A record with 0 data bytes', rawResponse(1, { name: 'a.test', type: 1 }, [record({ name: nameBytes('a.test'), type: 1, ttl: 1, data: [] })])],
    ['an AAAA record with 4 data bytes', rawResponse(1, { name: 'a.test', type: 28 }, [record({ name: nameBytes('a.test'), type: 28, ttl: 1, data: [1, 2, 3, 4] })])],
    ['a record cut short', rawResponse(1, { name: 'a.test', type: 1 }, [record({ name: nameBytes('a.test'), type: 1, ttl: 1, data: [1, 2, 3, 4] })]).subarray(0, 30)],
    ['a self-pointing name', Uint8Array.from([...rawResponse(1, { name: 'a.test', type: 1 }, [])].map((byte, index) => (index === 7 ? 1 : byte)).concat([0xc0, 24, ...u16(1), ...u16(1), ...u32(1), ...u16(4), 1, 2, 3, 4]))],
    ['an ipv4hint of 3 bytes', rawResponse(1, { name: 'a.test', type: 65 }, [record({ name: nameBytes('a.test'), type: 65, ttl: 1, data: svcbData(1, '', [[4, [1, 2, 3]]]) })])],
  ])('refuses %s with RW_DNS_MALFORMED', (_label, message) => {
    expect(malformedCode(() => decodeResponse(message))).toBe('RW_DNS_MALFORMED');
  });
});

describe('buildLocalAnswer', () => {
  it('answers NXDOMAIN with the same id and question, RA set, no records', () => {
    const query = packetQuery(0xbeef, 'Evil.test', 'TXT', true);
    const answer = dnsPacket.decode(Buffer.from(buildLocalAnswer(query, 'NXDOMAIN')));
    expect(answer).toMatchObject({ id: 0xbeef, type: 'response', rcode: 'NXDOMAIN', flag_ra: true, flag_rd: true, flag_tc: false });
    expect(answer.questions).toEqual([{ name: 'Evil.test', type: 'TXT', class: 'IN' }]);
    expect(answer.answers).toEqual([]);
    expect(decodeResponse(buildLocalAnswer(query, 'REFUSED')).rcode).toBe('REFUSED');
    expect(decodeResponse(buildLocalAnswer(query, 'SERVFAIL')).rcode).toBe('SERVFAIL');
  });

  it('answers FORMERR to an undecodable message with a header, echoing its id', () => {
    const garbage = Uint8Array.from([0xab, 0xcd, 0x01, 0, 0, 9, 0xff, 0xff, 1, 2, 3, 4, 5]);
    const answer = decodeResponse(buildLocalAnswer(garbage, 'FORMERR'));
    expect(answer).toMatchObject({ id: 0xabcd, rcode: 'FORMERR', answers: [] });
  });

  it('refuses to build anything but FORMERR for an undecodable message', () => {
    expect(malformedCode(() => buildLocalAnswer(Uint8Array.from([1, 2, 3]), 'FORMERR'))).toBe('RW_DNS_MALFORMED');
    expect(malformedCode(() => buildLocalAnswer(rawQuery(1, 'a.test', 1, { flags: 0x8000 }), 'NXDOMAIN'))).toBe('RW_DNS_MALFORMED');
  });
});

describe('withId', () => {
  it('copies the message with a new id and leaves the original alone', () => {
    const query = packetQuery(1, 'a.test', 'A');
    const copy = withId(query, 0xfffe);
    expect(decodeQuery(copy).id).toBe(0xfffe);
    expect(decodeQuery(query).id).toBe(1);
    expect([...copy.subarray(2)]).toEqual([...query.subarray(2)]);
  });
});

const labelArbitrary = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const nameArbitrary = fc.array(labelArbitrary, { minLength: 0, maxLength: 6 }).map((labels) => labels.join('.'));
const knownTypes: dnsPacket.RecordType[] = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'SOA', 'SRV', 'PTR', 'CAA', 'DS', 'DNSKEY', 'NAPTR', 'TLSA'];

describe('properties', () => {
  it('random bytes make decodeQuery and decodeResponse throw nothing but RW_DNS_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        for (const decode of [decodeQuery, decodeResponse]) {
          try {
            decode(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(RunwallError);
            expect((error as RunwallError).code).toBe('RW_DNS_MALFORMED');
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated real messages make the decoders throw nothing but RW_DNS_MALFORMED', () => {
    const seeds = [
      packetQuery(1, 'www.allowed.test', 'A', true),
      rawResponse(3, { name: 'svc.test', type: 65 }, [record({ name: nameBytes('svc.test'), type: 65, ttl: 1, data: svcbData(1, 'x.test', [[4, ipv4Bytes('203.0.113.1')], [6, ipv6Bytes('2001:db8::1')]]) })]),
      dnsPacket.encode({
        type: 'response',
        questions: [{ type: 'A', name: 'a.test' }],
        answers: [
          { type: 'CNAME', name: 'a.test', data: 'b.test' },
          { type: 'A', name: 'b.test', data: '198.51.100.1' },
          { type: 'TXT', name: 'b.test', data: 'x' },
          { type: 'MX', name: 'b.test', data: { preference: 1, exchange: 'm.test' } },
        ],
      }),
    ];
    const mutation = fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      cut: fc.option(fc.nat()),
    });
    fc.assert(
      fc.property(mutation, ({ seed, edits, cut }) => {
        const bytes = Uint8Array.from(seeds[seed]!);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        const message = cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
        for (const decode of [decodeQuery, decodeResponse]) {
          try {
            decode(message);
          } catch (error) {
            expect((error as RunwallError).code).toBe('RW_DNS_MALFORMED');
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('a query encoded by dns-packet decodes to the same name and type', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), nameArbitrary, fc.constantFrom(...knownTypes), fc.boolean(), (id, name, type, edns) => {
        const question = decodeQuery(packetQuery(id, name, type, edns));
        expect(question).toEqual({ id, name: name.toLowerCase(), qtype: type, qclass: 'IN', recursionDesired: true });
      }),
    );
  });

  it('any numeric query type decodes to its mnemonic or TYPE<n>', () => {
    const mnemonics: Record<number, string> = { 1: 'A', 28: 'AAAA', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY' };
    fc.assert(
      fc.property(nameArbitrary, fc.oneof(fc.constantFrom(1, 28, 64, 65, 255), fc.integer({ min: 258, max: 32767 }), fc.integer({ min: 32770, max: 65535 })), (name, type) => {
        expect(decodeQuery(rawQuery(1, name, type)).qtype).toBe(mnemonics[type] ?? `TYPE${type}`);
      }),
    );
  });

  it('addresses and names of an answer encoded by dns-packet come back out', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((parts) => parts.join('.'));
    fc.assert(
      fc.property(nameArbitrary, fc.array(nameArbitrary, { maxLength: 4 }), fc.array(v4, { minLength: 1, maxLength: 5 }), (first, chain, ips) => {
        const names = [first, ...chain].map((name) => name.toLowerCase());
        const answers: dnsPacket.Answer[] = [];
        for (let index = 0; index + 1 < names.length; index++) answers.push({ type: 'CNAME', name: names[index]!, ttl: 60, data: names[index + 1]! });
        const owner = names[names.length - 1]!;
        for (const ip of ips) answers.push({ type: 'A', name: owner, ttl: 30, data: ip });
        const response = decodeResponse(dnsPacket.encode({ type: 'response', questions: [{ type: 'A', name: first }], answers }));
        expect(response.addresses.map((address) => address.ip)).toEqual(ips);
        expect(response.names).toEqual([...new Set(names)]);
      }),
    );
  });
});
