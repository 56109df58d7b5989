// The test internet's DNS: the fixed zone, run-time overrides, and the pure function that
// turns a query packet into a response packet. No I/O here; internet-server.ts owns sockets.
import dnsPacket from 'dns-packet';
import { isIPv4, isIPv6 } from 'node:net';

export const DEFAULT_TTL = 60;

export interface HttpsData {
  readonly priority: number;
  /** '.' means the owner name itself (RFC 9460 AliasMode/ServiceMode convention) */
  readonly target: string;
  readonly alpn?: readonly string[];
  readonly port?: number;
  readonly ipv4hint?: readonly string[];
  readonly ipv6hint?: readonly string[];
}

export type ZoneRecord =
  | { readonly type: 'A'; readonly data: string; readonly ttl: number }
  | { readonly type: 'AAAA'; readonly data: string; readonly ttl: number }
  | { readonly type: 'CNAME'; readonly data: string; readonly ttl: number }
  | { readonly type: 'TXT'; readonly data: readonly string[]; readonly ttl: number }
  | { readonly type: 'HTTPS'; readonly data: HttpsData; readonly ttl: number };

export type ZoneRecordType = ZoneRecord['type'];
const ZONE_RECORD_TYPES: readonly ZoneRecordType[] = ['A', 'AAAA', 'CNAME', 'TXT', 'HTTPS'];

export class ZoneInputError extends Error {
  override readonly name = 'ZoneInputError';
}

const LABEL = /^(?:\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/;

/** Lower-cases a DNS name, drops one trailing dot, and checks its shape. */
export function normalizeName(name: string): string {
  const lowered = name.toLowerCase().replace(/\.$/, '');
  if (lowered.length === 0 || lowered.length > 253) throw new ZoneInputError(`bad DNS name ${JSON.stringify(name)}`);
  for (const label of lowered.split('.')) {
    if (!LABEL.test(label)) throw new ZoneInputError(`bad DNS name ${JSON.stringify(name)}`);
  }
  return lowered;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown, what: string, check: (item: string) => boolean): readonly string[] {
  if (!Array.isArray(value) || value.length === 0) throw new ZoneInputError(`${what} must be a non-empty list`);
  return value.map((item) => {
    if (typeof item !== 'string' || !check(item)) throw new ZoneInputError(`${what}: bad item ${JSON.stringify(item)}`);
    return item;
  });
}

function parseHttpsData(value: unknown): HttpsData {
  if (!isRecord(value)) throw new ZoneInputError('HTTPS data must be an object');
  const known = new Set(['priority', 'target', 'alpn', 'port', 'ipv4hint', 'ipv6hint']);
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new ZoneInputError(`HTTPS data: unknown key ${key}`);
  }
  const { priority, target } = value;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 0xffff) {
    throw new ZoneInputError('HTTPS priority must be an integer 0..65535');
  }
  if (typeof target !== 'string') throw new ZoneInputError('HTTPS target must be a name or "."');
  const data: { -readonly [K in keyof HttpsData]: HttpsData[K] } = {
    priority,
    target: target === '.' ? '.' : normalizeName(target),
  };
  if (value.alpn !== undefined) {
    data.alpn = stringList(value.alpn, 'HTTPS alpn', (item) => item.length > 0 && Buffer.byteLength(item) < 256);
  }
  if (value.port !== undefined) {
    const port = value.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new ZoneInputError('HTTPS port must be an integer 0..65535');
    }
    data.port = port;
  }
  if (value.ipv4hint !== undefined) data.ipv4hint = stringList(value.ipv4hint, 'HTTPS ipv4hint', isIPv4);
  if (value.ipv6hint !== undefined) data.ipv6hint = stringList(value.ipv6hint, 'HTTPS ipv6hint', isIPv6);
  return Object.freeze(data);
}

function parseRecord(value: unknown): ZoneRecord {
  if (!isRecord(value)) throw new ZoneInputError('a record must be an object { type, data, ttl? }');
  const { type, data } = value;
  const ttl = value.ttl ?? DEFAULT_TTL;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) {
    throw new ZoneInputError('ttl must be an integer 0..2147483647');
  }
  if (typeof type !== 'string' || !(ZONE_RECORD_TYPES as readonly string[]).includes(type)) {
    throw new ZoneInputError(`record type must be one of ${ZONE_RECORD_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  }
  switch (type as ZoneRecordType) {
    case 'A':
      if (typeof data !== 'string' || !isIPv4(data)) throw new ZoneInputError(`A data must be an IPv4 address`);
      return { type: 'A', data, ttl };
    case 'AAAA':
      if (typeof data !== 'string' || !isIPv6(data)) throw new ZoneInputError(`AAAA data must be an IPv6 address`);
      return { type: 'AAAA', data, ttl };
    case 'CNAME':
      if (typeof data !== 'string') throw new ZoneInputError('CNAME data must be a name');
      return { type: 'CNAME', data: normalizeName(data), ttl };
    case 'TXT': {
      const strings = typeof data === 'string' ? [data] : data;
      const list = stringList(strings, 'TXT data', (item) => Buffer.byteLength(item) < 256);
      return { type: 'TXT', data: Object.freeze([...list]), ttl };
    }
    case 'HTTPS':
      return { type: 'HTTPS', data: parseHttpsData(data), ttl };
  }
}

/** Validates records given to `internet.dns.set` (JSON from the test). A CNAME must stand alone. */
export function parseZoneRecords(input: unknown): readonly ZoneRecord[] {
  if (!Array.isArray(input)) throw new ZoneInputError('records must be a list');
  if (input.length > 1000) throw new ZoneInputError('at most 1000 records per name');
  const records = input.map(parseRecord);
  if (records.some((r) => r.type === 'CNAME') && records.length > 1) {
    throw new ZoneInputError('a CNAME must be the only record of its name');
  }
  return Object.freeze(records.map((r) => Object.freeze(r)));
}

const a = (data: string, ttl = DEFAULT_TTL): ZoneRecord => ({ type: 'A', data, ttl });
const aaaa = (data: string, ttl = DEFAULT_TTL): ZoneRecord => ({ type: 'AAAA', data, ttl });
const cname = (data: string): ZoneRecord => ({ type: 'CNAME', data, ttl: DEFAULT_TTL });
const txt = (...data: string[]): ZoneRecord => ({ type: 'TXT', data, ttl: DEFAULT_TTL });

const FIXED_ZONE: ReadonlyMap<string, readonly ZoneRecord[]> = new Map<string, readonly ZoneRecord[]>([
  [
    'allowed.test',
    [
      a('198.51.100.10'),
      aaaa('2001:db8::10'),
      {
        type: 'HTTPS',
        data: { priority: 1, target: '.', ipv4hint: ['198.51.100.10'], ipv6hint: ['2001:db8::10'] },
        ttl: DEFAULT_TTL,
      },
      txt('v=allowed'),
    ],
  ],
  ['www.allowed.test', [a('198.51.100.12')]],
  ['sub.allowed.test', [a('198.51.100.12')]],
  ['deep.sub.allowed.test', [a('198.51.100.12')]],
  ['alias.allowed.test', [cname('edge.cdn.test')]],
  ['edge.cdn.test', [cname('edge2.cdn.test')]],
  ['edge2.cdn.test', [a('198.51.100.20')]],
  ['other.test', [a('198.51.100.11'), aaaa('2001:db8::11')]],
  ['evil.test', [a('203.0.113.66'), aaaa('2001:db8::66')]],
  ['short.allowed.test', [a('198.51.100.30', 1)]],
  ['v6only.allowed.test', [aaaa('2001:db8::30')]],
  ['exfil.evil-cname.test', [cname('evil.test')]],
  ['txt.other.test', [txt('secret')]],
]);

const GENERATED = /^n(0|[1-9][0-9]{0,4})\.gen\.test$/;

/** `nI.gen.test`: A 198.51.100.(50 + I % 150), AAAA 2001:db8:1:: plus (I + 1). */
export function generatedRecords(index: number): readonly ZoneRecord[] {
  const low = index + 1; // at most 100000, so it spans the last two 16-bit groups
  const high = low >>> 16;
  const v6 = high === 0 ? `2001:db8:1::${low.toString(16)}` : `2001:db8:1::${high.toString(16)}:${(low & 0xffff).toString(16)}`;
  return [a(`198.51.100.${50 + (index % 150)}`), aaaa(v6)];
}

/** A name's records in the fixed zone, or undefined when the name does not exist. */
function fixedLookup(name: string): readonly ZoneRecord[] | undefined {
  const fixed = FIXED_ZONE.get(name);
  if (fixed) return fixed;
  const generated = GENERATED.exec(name);
  if (generated?.[1] !== undefined) return generatedRecords(Number(generated[1]));
  if (name.endsWith('.evil.test')) return FIXED_ZONE.get('evil.test');
  return undefined;
}

/** The zone with the overrides a test has set. Names are normalized before use. */
export class Zone {
  readonly #overrides = new Map<string, readonly ZoneRecord[]>();

  /** Replaces every record of `name`; an empty list makes the name not exist (NXDOMAIN). */
  set(name: string, records: readonly ZoneRecord[]): void {
    this.#overrides.set(normalizeName(name), records);
  }

  lookup(name: string): readonly ZoneRecord[] | undefined {
    const override = this.#overrides.get(name);
    if (override) return override.length === 0 ? undefined : override;
    return fixedLookup(name);
  }
}

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'FORMERR' | 'NOTIMP';
const RCODE_NUMBERS: Readonly<Record<Rcode, number>> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 };

export interface ResolvedRecord {
  readonly name: string;
  readonly record: ZoneRecord;
}

export interface Resolution {
  readonly rcode: Rcode;
  readonly answers: readonly ResolvedRecord[];
}

const MAX_CNAME_HOPS = 8;

/**
 * Resolves like a recursive resolver in front of an authoritative zone: CNAME chains are
 * followed and every hop is in the answer; a chain into a missing name is NXDOMAIN with the
 * chain kept. `type` is a record type name as dns-packet spells it ('A', 'ANY', 'HTTPS').
 */
export function resolve(zone: Zone, queryName: string, type: string): Resolution {
  const answers: ResolvedRecord[] = [];
  let owner = queryName;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const records = zone.lookup(owner.toLowerCase().replace(/\.$/, ''));
    if (!records) return { rcode: 'NXDOMAIN', answers };
    const alias = records.find((r) => r.type === 'CNAME');
    if (alias && type !== 'CNAME' && type !== 'ANY') {
      answers.push({ name: owner, record: alias });
      owner = alias.data as string;
      continue;
    }
    for (const record of records) {
      if (type === 'ANY' || record.type === type) answers.push({ name: owner, record });
    }
    return { rcode: 'NOERROR', answers };
  }
  return { rcode: 'SERVFAIL', answers: [] };
}

const HTTPS_TYPE = 65;
const SVCB_TYPE = 64;

/** Record type names for the query log: dns-packet's names, HTTPS/SVCB, else RFC 3597 `TYPEn`. */
export function typeName(type: string): string {
  const unknown = /^UNKNOWN_(\d+)$/.exec(type);
  if (!unknown) return type;
  const number = Number(unknown[1]);
  if (number === HTTPS_TYPE) return 'HTTPS';
  if (number === SVCB_TYPE) return 'SVCB';
  return `TYPE${number}`;
}

function encodeName(name: string): Buffer {
  if (name === '.' || name === '') return Buffer.from([0]);
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])), Buffer.from([0])]);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const out = Buffer.alloc(16);
  [...headGroups, ...fill, ...tailGroups].forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

/** RFC 9460 wire form; dns-packet has no HTTPS type, so it goes out as opaque RDATA. */
export function encodeHttpsRdata(data: HttpsData): Buffer {
  const params: [number, Buffer][] = [];
  if (data.alpn) {
    params.push([1, Buffer.concat(data.alpn.map((id) => Buffer.concat([Buffer.from([Buffer.byteLength(id)]), Buffer.from(id)])))]);
  }
  if (data.port !== undefined) {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(data.port);
    params.push([3, port]);
  }
  if (data.ipv4hint) params.push([4, Buffer.concat(data.ipv4hint.map(ipv4Bytes))]);
  if (data.ipv6hint) params.push([6, Buffer.concat(data.ipv6hint.map(ipv6Bytes))]);
  const priority = Buffer.alloc(2);
  priority.writeUInt16BE(data.priority);
  const encodedParams = params.map(([key, value]) => {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(key, 0);
    header.writeUInt16BE(value.length, 2);
    return Buffer.concat([header, value]);
  });
  return Buffer.concat([priority, encodeName(data.target), ...encodedParams]);
}

function toAnswer({ name, record }: ResolvedRecord): dnsPacket.Answer {
  const base = { name, ttl: record.ttl, class: 'IN' as const };
  switch (record.type) {
    case 'A':
    case 'AAAA':
    case 'CNAME':
      return { ...base, type: record.type, data: record.data };
    case 'TXT':
      return { ...base, type: 'TXT', data: [...record.data] };
    case 'HTTPS':
      // dns-packet writes unknown types as raw RDATA; its types do not list them.
      return { ...base, type: `UNKNOWN_${HTTPS_TYPE}`, data: encodeHttpsRdata(record.data) } as unknown as dnsPacket.Answer;
  }
}

const SOA: dnsPacket.Answer = {
  name: 'test',
  type: 'SOA',
  ttl: DEFAULT_TTL,
  class: 'IN',
  data: {
    mname: 'ns.test',
    rname: 'hostmaster.test',
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: DEFAULT_TTL,
  },
};

export interface AnsweredQuery {
  /** undefined when the packet is too broken to answer at all (it is dropped, as servers do) */
  readonly response: Buffer | undefined;
  readonly question?: { readonly name: string; readonly type: string };
}

const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;
const CLASSIC_UDP_LIMIT = 512;
const EDNS_UDP_LIMIT = 1232;

/**
 * Answers one DNS query packet. `answerer` decides the resolution for the question (the
 * upstream zone, or the rogue resolver); UDP answers over the client's size limit are
 * truncated (TC) so the client retries over TCP.
 */
export function answerQuery(
  packet: Buffer,
  transport: 'udp' | 'tcp',
  answerer: (name: string, type: string) => Resolution,
): AnsweredQuery {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(packet);
  } catch {
    if (packet.length < 12) return { response: undefined };
    // Header readable, body not: FORMERR with the id echoed.
    const header = Buffer.alloc(12);
    packet.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8000 | RCODE_NUMBERS.FORMERR, 2);
    return { response: header };
  }
  if (query.type !== 'query') return { response: undefined };
  const [question] = query.questions ?? [];
  const rd = query.flags !== undefined && (query.flags & FLAG_RD) !== 0 ? FLAG_RD : 0;
  const opt = (query.additionals ?? []).find((r) => r.type === 'OPT');
  const additionals: dnsPacket.Answer[] = opt ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_LIMIT } as dnsPacket.Answer] : [];
  const reply = (rcode: Rcode, answers: dnsPacket.Answer[], authorities: dnsPacket.Answer[], tc = 0): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: FLAG_AA | FLAG_RA | rd | tc | RCODE_NUMBERS[rcode],
      questions: query.questions ?? [],
      answers,
      authorities,
      additionals,
    });
  if (!question || (query.questions ?? []).length !== 1 || (question.class ?? 'IN') !== 'IN') {
    return { response: reply('FORMERR', [], []) };
  }
  const type = typeName(question.type);
  const logged = { name: question.name.toLowerCase().replace(/\.$/, ''), type };
  const resolution = answerer(question.name, type);
  const answers = resolution.answers.map(toAnswer);
  const negative = resolution.rcode === 'NXDOMAIN' || (resolution.rcode === 'NOERROR' && answers.length === 0);
  const authorities = negative && (logged.name === 'test' || logged.name.endsWith('.test')) ? [SOA] : [];
  let response = reply(resolution.rcode, answers, authorities);
  if (transport === 'udp') {
    const limit = opt ? Math.max(CLASSIC_UDP_LIMIT, Math.min(EDNS_UDP_LIMIT, (opt as { udpPayloadSize?: number }).udpPayloadSize ?? 0)) : CLASSIC_UDP_LIMIT;
    if (response.length > limit) response = reply(resolution.rcode, [], [], FLAG_TC);
  }
  return { response, question: logged };
}

/** The rogue resolver: every name is 203.0.113.99 (A); other types have no data. */
export function rogueResolve(name: string, type: string): Resolution {
  const record: ZoneRecord = { type: 'A', data: '203.0.113.99', ttl: DEFAULT_TTL };
  return { rcode: 'NOERROR', answers: type === 'A' || type === 'ANY' ? [{ name, record }] : [] };
}
