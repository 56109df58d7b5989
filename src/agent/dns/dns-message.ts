/**
 * Pure DNS message decoding and the few messages the proxy builds itself.
 * No I/O. Decoders throw only RunwallError RW_DNS_MALFORMED and return frozen values.
 */
import { RunwallError } from '../../protocol/index.js';
import {
  CLASSIC_UDP_PAYLOAD,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  RCODE_NUMBERS,
  TYPE_A,
  TYPE_AAAA,
  TYPE_CNAME,
  TYPE_DNAME,
  TYPE_HTTPS,
  TYPE_OPT,
  TYPE_SVCB,
  characterStringText,
  className,
  formatIpv4,
  formatIpv6,
  malformed,
  rcodeName,
  readName,
  readU16,
  readU32,
  skipName,
  toHex,
  typeName,
} from './dns-wire.js';

export interface DnsQuestionInfo {
  readonly id: number;
  /** Lower-case, no trailing dot, '' for the root. */
  readonly name: string;
  /** 'A', 'AAAA', 'CNAME', 'HTTPS', 'TXT', ... or RFC 3597 'TYPE65534'. */
  readonly qtype: string;
  /** 'IN', 'CH', ... or 'CLASS<n>'. */
  readonly qclass: string;
  readonly recursionDesired: boolean;
}

export interface DnsAnswerRecord {
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /** Address, target name, text, or a stable presentation form (RFC 3597 `\# len hex` for unknown types). */
  readonly data: string;
}

export interface DnsAddress {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly ttl: number;
  /** Owner name of the record the address came from. */
  readonly name: string;
}

export interface DecodedResponse {
  readonly id: number;
  /** 'NOERROR', 'NXDOMAIN', ... (extended by the EDNS OPT record when present). */
  readonly rcode: string;
  readonly truncated: boolean;
  readonly answers: readonly DnsAnswerRecord[];
  /** A/AAAA addresses of the answer section and ipv4hint/ipv6hint of its HTTPS/SVCB records (class IN only). */
  readonly addresses: readonly DnsAddress[];
  /** Every owner name of the answer section and every CNAME/DNAME target, lower-case, in order, once. */
  readonly names: readonly string[];
}

/** What the proxy keeps from a client's query besides the public question. */
export interface ParsedQuery {
  readonly question: DnsQuestionInfo;
  /** Offset just past the question: header + question bytes are what a local answer echoes. */
  readonly questionEnd: number;
  /** Largest UDP answer the client accepts: its EDNS payload size, at least 512. */
  readonly udpPayloadSize: number;
}

function assertMessage(message: Uint8Array): void {
  if (!(message instanceof Uint8Array)) throw malformed('not a byte array');
  if (message.length < HEADER_BYTES) throw malformed(`${message.length} bytes, shorter than a DNS header`);
  if (message.length > MAX_MESSAGE_BYTES) throw malformed(`${message.length} bytes, longer than any DNS message`);
}

/** Offset past a resource record at `offset`; reports an OPT record's class (its UDP payload size) through `onOpt`. */
function skipRecord(message: Uint8Array, offset: number, onOpt?: (klass: number, ttl: number) => void): number {
  const fixed = skipName(message, offset);
  const type = readU16(message, fixed);
  const rdLength = readU16(message, fixed + 8);
  const end = fixed + 10 + rdLength;
  if (end > message.length) throw malformed(`record data at byte ${fixed + 10} runs past the end`);
  if (type === TYPE_OPT && onOpt) onOpt(readU16(message, fixed + 2), readU32(message, fixed + 4));
  return end;
}

/**
 * Parses a client's query strictly: a standard QUERY (QR=0, opcode 0) with exactly
 * one question whose name is plain host-name characters, every counted record
 * present and nothing after them.
 */
export function parseQuery(message: Uint8Array): ParsedQuery {
  assertMessage(message);
  const flags = readU16(message, 2);
  if (flags & 0x8000) throw malformed('a response (QR=1), not a query');
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) throw malformed(`opcode ${opcode}, not a standard QUERY`);
  const questions = readU16(message, 4);
  if (questions !== 1) throw malformed(`${questions} questions; exactly one is accepted`);
  const { name, end } = readName(message, HEADER_BYTES, true);
  const qtype = readU16(message, end);
  const qclass = readU16(message, end + 2);
  const questionEnd = end + 4;
  const records = readU16(message, 6) + readU16(message, 8) + readU16(message, 10);
  let udpPayloadSize = CLASSIC_UDP_PAYLOAD;
  const onOpt = (klass: number): void => {
    udpPayloadSize = Math.max(CLASSIC_UDP_PAYLOAD, klass);
  };
  let cursor = questionEnd;
  for (let index = 0; index < records; index++) cursor = skipRecord(message, cursor, onOpt);
  if (cursor !== message.length) throw malformed(`${message.length - cursor} bytes after the last record`);
  const question: DnsQuestionInfo = Object.freeze({
    id: readU16(message, 0),
    name,
    qtype: typeName(qtype),
    qclass: className(qclass),
    recursionDesired: (flags & 0x0100) !== 0,
  });
  return Object.freeze({ question, questionEnd, udpPayloadSize });
}

/** Decodes a client's query; throws RunwallError RW_DNS_MALFORMED on anything but a single-question standard QUERY. */
export function decodeQuery(message: Uint8Array): DnsQuestionInfo {
  return parseQuery(message).question;
}

interface SvcbData {
  readonly text: string;
  readonly v4: string[];
  readonly v6: string[];
}

/** HTTPS/SVCB record data (RFC 9460) in presentation form, with its address hints. */
function decodeSvcb(message: Uint8Array, start: number, end: number): SvcbData {
  const priority = readU16(message, start);
  const target = readName(message, start + 2, false);
  if (target.end > end) throw malformed('SVCB target runs past its record');
  let text = `${priority} ${target.name === '' ? '.' : target.name}`;
  const v4: string[] = [];
  const v6: string[] = [];
  let cursor = target.end;
  while (cursor < end) {
    const key = readU16(message, cursor);
    const length = readU16(message, cursor + 2);
    const from = cursor + 4;
    const to = from + length;
    if (to > end) throw malformed(`SVCB parameter ${key} runs past its record`);
    switch (key) {
      case 0: {
        if (length % 2 !== 0) throw malformed('SVCB mandatory list has an odd length');
        const keys: string[] = [];
        for (let at = from; at < to; at += 2) keys.push(svcParamKeyName(readU16(message, at)));
        text += ` mandatory=${keys.join(',')}`;
        break;
      }
      case 1: {
        const ids: string[] = [];
        for (let at = from; at < to; ) {
          const idLength = message[at]!;
          if (at + 1 + idLength > to) throw malformed('SVCB alpn id runs past its parameter');
          ids.push(characterStringText(message, at + 1, at + 1 + idLength));
          at += 1 + idLength;
        }
        text += ` alpn=${ids.join(',')}`;
        break;
      }
      case 2:
        text += ' no-default-alpn';
        break;
      case 3:
        if (length !== 2) throw malformed('SVCB port is not 2 bytes');
        text += ` port=${readU16(message, from)}`;
        break;
      case 4:
        if (length === 0 || length % 4 !== 0) throw malformed('SVCB ipv4hint is not a list of IPv4 addresses');
        for (let at = from; at < to; at += 4) v4.push(formatIpv4(message, at));
        text += ` ipv4hint=${v4.slice(v4.length - length / 4).join(',')}`;
        break;
      case 6:
        if (length === 0 || length % 16 !== 0) throw malformed('SVCB ipv6hint is not a list of IPv6 addresses');
        for (let at = from; at < to; at += 16) v6.push(formatIpv6(message, at));
        text += ` ipv6hint=${v6.slice(v6.length - length / 16).join(',')}`;
        break;
      case 5:
        text += ` ech=${Buffer.from(message.buffer, message.byteOffset + from, length).toString('base64')}`;
        break;
      default:
        text += ` key${key}=${toHex(message, from, to)}`;
    }
    cursor = to;
  }
  return { text, v4, v6 };
}

function svcParamKeyName(key: number): string {
  return ['mandatory', 'alpn', 'no-default-alpn', 'port', 'ipv4hint', 'ech', 'ipv6hint'][key] ?? `key${key}`;
}

/** A name inside record data: must end inside the record. */
function nameInRecord(message: Uint8Array, offset: number, end: number): { name: string; end: number } {
  const read = readName(message, offset, false);
  if (read.end > end) throw malformed(`name at byte ${offset} runs past its record`);
  return read;
}

function exactly(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw malformed(`${what} record data has ${actual} bytes, not ${expected}`);
}

/** Record data in a stable text form; `svcb` receives HTTPS/SVCB hints. */
function recordData(message: Uint8Array, type: number, start: number, end: number, svcb: (data: SvcbData) => void): string {
  switch (type) {
    case TYPE_A:
      exactly(end - start, 4, 'A');
      return formatIpv4(message, start);
    case TYPE_AAAA:
      exactly(end - start, 16, 'AAAA');
      return formatIpv6(message, start);
    case TYPE_CNAME:
    case TYPE_DNAME:
    case 2 /* NS */:
    case 12 /* PTR */: {
      const target = nameInRecord(message, start, end);
      exactly(target.end, end, typeName(type));
      return target.name;
    }
    case 15 /* MX */: {
      const exchange = nameInRecord(message, start + 2, end);
      exactly(exchange.end, end, 'MX');
      return `${readU16(message, start)} ${exchange.name}`;
    }
    case 33 /* SRV */: {
      const target = nameInRecord(message, start + 6, end);
      exactly(target.end, end, 'SRV');
      return `${readU16(message, start)} ${readU16(message, start + 2)} ${readU16(message, start + 4)} ${target.name}`;
    }
    case 6 /* SOA */: {
      const mname = nameInRecord(message, start, end);
      const rname = nameInRecord(message, mname.end, end);
      exactly(end - rname.end, 20, 'SOA counters of the');
      const counters = [0, 4, 8, 12, 16].map((at) => readU32(message, rname.end + at));
      return `${mname.name} ${rname.name} ${counters.join(' ')}`;
    }
    case 16 /* TXT */: {
      let text = '';
      for (let at = start; at < end; ) {
        const length = message[at]!;
        if (at + 1 + length > end) throw malformed('TXT string runs past its record');
        text += characterStringText(message, at + 1, at + 1 + length);
        at += 1 + length;
      }
      return text;
    }
    case 257 /* CAA */: {
      if (end - start < 2) throw malformed('CAA record too short');
      const tagLength = message[start + 1]!;
      if (start + 2 + tagLength > end) throw malformed('CAA tag runs past its record');
      const tag = characterStringText(message, start + 2, start + 2 + tagLength);
      return `${message[start]} ${tag} "${characterStringText(message, start + 2 + tagLength, end)}"`;
    }
    case TYPE_SVCB:
    case TYPE_HTTPS: {
      const data = decodeSvcb(message, start, end);
      svcb(data);
      return data.text;
    }
    default:
      return end === start ? '\\# 0' : `\\# ${end - start} ${toHex(message, start, end)}`;
  }
}

/** RFC 2181 8: a TTL with the top bit set is treated as zero. */
function ttlValue(raw: number): number {
  return raw > 0x7fffffff ? 0 : raw;
}

/**
 * Decodes an upstream's response once for the gate. Throws RW_DNS_MALFORMED on
 * garbage. A truncated (TC) response may end inside a record: what was complete
 * is returned, since the proxy fetches the whole answer over TCP anyway.
 */
export function decodeResponse(message: Uint8Array): DecodedResponse {
  assertMessage(message);
  const flags = readU16(message, 2);
  if (!(flags & 0x8000)) throw malformed('a query (QR=0), not a response');
  const truncated = (flags & 0x0200) !== 0;
  let rcode = flags & 0xf;
  const counts = [readU16(message, 4), readU16(message, 6), readU16(message, 8), readU16(message, 10)] as const;
  let cursor = HEADER_BYTES;
  for (let index = 0; index < counts[0]; index++) {
    cursor = skipName(message, cursor) + 4;
    if (cursor > message.length) throw malformed('question runs past the end');
  }
  const answers: DnsAnswerRecord[] = [];
  const addresses: DnsAddress[] = [];
  const names: string[] = [];
  const addName = (name: string): void => {
    if (!names.includes(name)) names.push(name);
  };
  try {
    for (let index = 0; index < counts[1]; index++) {
      const owner = readName(message, cursor, false);
      const type = readU16(message, owner.end);
      const klass = readU16(message, owner.end + 2);
      const ttl = ttlValue(readU32(message, owner.end + 4));
      const start = owner.end + 10;
      const end = start + readU16(message, owner.end + 8);
      if (end > message.length) throw malformed(`record data at byte ${start} runs past the end`);
      const isInternet = klass === 1;
      const data = recordData(message, type, start, end, (svcb) => {
        if (!isInternet) return;
        for (const ip of svcb.v4) addresses.push(Object.freeze({ ip, family: 4 as const, ttl, name: owner.name }));
        for (const ip of svcb.v6) addresses.push(Object.freeze({ ip, family: 6 as const, ttl, name: owner.name }));
      });
      answers.push(Object.freeze({ name: owner.name, type: typeName(type), ttl, data }));
      addName(owner.name);
      if (type === TYPE_CNAME || type === TYPE_DNAME) addName(data);
      if (isInternet && type === TYPE_A) addresses.push(Object.freeze({ ip: data, family: 4 as const, ttl, name: owner.name }));
      if (isInternet && type === TYPE_AAAA) addresses.push(Object.freeze({ ip: data, family: 6 as const, ttl, name: owner.name }));
      cursor = end;
    }
    for (let index = 0; index < counts[2]; index++) cursor = skipRecord(message, cursor);
    for (let index = 0; index < counts[3]; index++) {
      cursor = skipRecord(message, cursor, (_klass, ttl) => {
        rcode |= (ttl >>> 24) << 4; // RFC 6891 6.1.3: the OPT TTL's top byte extends RCODE.
      });
    }
  } catch (error) {
    if (!truncated) throw error;
  }
  return Object.freeze({
    id: readU16(message, 0),
    rcode: rcodeName(rcode),
    truncated,
    answers: Object.freeze(answers),
    addresses: Object.freeze(addresses),
    names: Object.freeze(names),
  });
}

export type LocalRcode = 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL' | 'FORMERR';

function rcodeNumber(rcode: string): number {
  if (!Object.prototype.hasOwnProperty.call(RCODE_NUMBERS, rcode)) {
    throw new RunwallError('RW_INTERNAL', `dns: '${rcode}' is not an rcode the proxy answers with`);
  }
  return RCODE_NUMBERS[rcode as keyof typeof RCODE_NUMBERS];
}

/**
 * An answer made from a query's header and question: QR and RA set, RD and CD
 * copied, no records. `questionEnd` 12 means no question (qdcount 0).
 */
export function answerFromQuery(query: Uint8Array, questionEnd: number, id: number, rcode: number, truncated: boolean): Uint8Array {
  const answer = new Uint8Array(questionEnd);
  answer.set(query.subarray(HEADER_BYTES, questionEnd), HEADER_BYTES);
  answer[0] = (id >> 8) & 0xff;
  answer[1] = id & 0xff;
  answer[2] = 0x80 | (query[2]! & 0x79) | (truncated ? 0x02 : 0); // QR, opcode and RD from the query, TC
  answer[3] = 0x80 | (query[3]! & 0x10) | (rcode & 0xf); // RA, CD from the query
  answer[5] = questionEnd > HEADER_BYTES ? 1 : 0;
  return answer;
}

/**
 * The proxy's own answer to `query`: same id and question, RA set, no answers.
 * For FORMERR to a query that cannot be decoded but has a header, only the
 * header comes back with its id echoed; other rcodes need a decodable query.
 */
export function buildLocalAnswer(query: Uint8Array, rcode: LocalRcode): Uint8Array {
  const number = rcodeNumber(rcode);
  let parsed: ParsedQuery;
  try {
    parsed = parseQuery(query);
  } catch (error) {
    if (rcode === 'FORMERR' && query instanceof Uint8Array && query.length >= HEADER_BYTES) {
      return answerFromQuery(query, HEADER_BYTES, readU16(query, 0), number, false);
    }
    throw error;
  }
  return answerFromQuery(query, parsed.questionEnd, parsed.question.id, number, false);
}

/** A copy of `message` with its 16-bit id replaced. */
export function withId(message: Uint8Array, id: number): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new RangeError(`dns: id ${id} is not a 16-bit integer`);
  if (message.length < 2) throw malformed(`${message.length} bytes, no room for an id`);
  const copy = new Uint8Array(message.length);
  copy.set(message);
  copy[0] = id >> 8;
  copy[1] = id & 0xff;
  return copy;
}

/**
 * Whether `response` answers the question of `query` (whose question ends at
 * `questionEnd`): same name bytes ignoring ASCII case, same type and class.
 * A response without a question is accepted only with an error rcode, as
 * some servers send FORMERR/SERVFAIL/REFUSED that way.
 */
export function answersQuestion(query: Uint8Array, questionEnd: number, response: Uint8Array): boolean {
  if (response.length < HEADER_BYTES) return false;
  const questions = (response[4]! << 8) | response[5]!;
  if (questions === 0) return (response[3]! & 0xf) !== 0;
  if (questions !== 1 || response.length < questionEnd) return false;
  const nameEnd = questionEnd - 4;
  for (let index = HEADER_BYTES; index < nameEnd; index++) {
    let a = query[index]!;
    let b = response[index]!;
    if (a >= 0x41 && a <= 0x5a) a += 0x20;
    if (b >= 0x41 && b <= 0x5a) b += 0x20;
    if (a !== b) return false;
  }
  for (let index = nameEnd; index < questionEnd; index++) if (query[index] !== response[index]) return false;
  return true;
}
