/**
 * Low-level reading of the DNS wire format (RFC 1035, RFC 3597, RFC 9460).
 * Pure: no I/O. Every read is bounds-checked and every failure is a
 * RunwallError RW_DNS_MALFORMED, so callers never see another exception type.
 *
 * Why not dns-packet's decoder here: it reads record data without bounding it
 * by RDLENGTH (an A record with RDLENGTH 0 yields the next 4 bytes as an
 * address, which the engine would then admit to the firewall), joins labels
 * that contain a '.' into an ambiguous name, and does not know HTTPS/SVCB.
 */
import { RunwallError } from '../../protocol/index.js';

export const HEADER_BYTES = 12;
/** Largest DNS message: the TCP length prefix is 16 bits. */
export const MAX_MESSAGE_BYTES = 65_535;
/** Classic UDP payload limit when a query carries no EDNS OPT record (RFC 1035 4.2.1). */
export const CLASSIC_UDP_PAYLOAD = 512;

export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_DNAME = 39;
export const TYPE_OPT = 41;
export const TYPE_AAAA = 28;
export const TYPE_SVCB = 64;
export const TYPE_HTTPS = 65;

const MAX_NAME_WIRE_BYTES = 255;

export function malformed(reason: string): RunwallError {
  return new RunwallError('RW_DNS_MALFORMED', `malformed DNS message: ${reason}`);
}

export function readU16(message: Uint8Array, offset: number): number {
  if (offset + 2 > message.length) throw malformed(`ends inside a 16-bit field at byte ${offset}`);
  return (message[offset]! << 8) | message[offset + 1]!;
}

export function readU32(message: Uint8Array, offset: number): number {
  if (offset + 4 > message.length) throw malformed(`ends inside a 32-bit field at byte ${offset}`);
  return ((message[offset]! << 24) >>> 0) + ((message[offset + 1]! << 16) | (message[offset + 2]! << 8) | message[offset + 3]!);
}

/** Queries are held to host-name characters: see `readName`'s `strict`. */
function isPlainLabelByte(byte: number): boolean {
  return byte > 0x20 && byte < 0x7f && byte !== 0x2e /* . */ && byte !== 0x5c /* \ */;
}

export interface NameRead {
  /** Lower-case, no trailing dot, '' for the root. Odd bytes escaped as \DDD (RFC 1035 5.1). */
  readonly name: string;
  /** Offset just past the name where it was read (not where a pointer led). */
  readonly end: number;
}

/**
 * Reads a possibly compressed domain name at `offset`.
 * `strict` (used for the question of a client's query) refuses compression and
 * any byte that would need escaping, so the name a policy is matched against is
 * exactly the name the upstream resolves: a label "evil.github" cannot pose as
 * two labels ending in an allowed suffix.
 */
export function readName(message: Uint8Array, offset: number, strict: boolean): NameRead {
  let name = '';
  let wireBytes = 0;
  let cursor = offset;
  let end = -1;
  // A pointer must point before the labels it interrupts, so the walk always
  // moves backwards after a jump and terminates.
  let lowestStart = offset;
  for (;;) {
    if (cursor >= message.length) throw malformed(`name at byte ${offset} runs past the end`);
    const length = message[cursor]!;
    if (length === 0) {
      if (end < 0) end = cursor + 1;
      break;
    }
    const kind = length & 0xc0;
    if (kind === 0xc0) {
      if (strict) throw malformed('compressed name in a question');
      const target = readU16(message, cursor) & 0x3fff;
      if (target >= lowestStart) throw malformed(`name pointer at byte ${cursor} does not point backwards`);
      if (end < 0) end = cursor + 2;
      lowestStart = target;
      cursor = target;
      continue;
    }
    if (kind !== 0) throw malformed(`unknown label type 0x${kind.toString(16)} at byte ${cursor}`);
    if (cursor + 1 + length > message.length) throw malformed(`label at byte ${cursor} runs past the end`);
    wireBytes += length + 1;
    if (wireBytes + 1 > MAX_NAME_WIRE_BYTES) throw malformed('name longer than 255 bytes');
    if (name.length > 0) name += '.';
    for (let index = cursor + 1; index <= cursor + length; index++) {
      const byte = message[index]!;
      if (byte >= 0x41 && byte <= 0x5a) name += String.fromCharCode(byte + 0x20);
      else if (isPlainLabelByte(byte)) name += String.fromCharCode(byte);
      else if (strict) throw malformed(`byte 0x${byte.toString(16).padStart(2, '0')} in a question name`);
      else name += `\\${byte.toString().padStart(3, '0')}`;
    }
    cursor += length + 1;
  }
  return { name, end };
}

/** Offset just past the name at `offset`, without building it. */
export function skipName(message: Uint8Array, offset: number): number {
  let cursor = offset;
  for (let labels = 0; labels < 128; labels++) {
    if (cursor >= message.length) throw malformed(`name at byte ${offset} runs past the end`);
    const length = message[cursor]!;
    if (length === 0) return cursor + 1;
    const kind = length & 0xc0;
    if (kind === 0xc0) {
      if (cursor + 2 > message.length) throw malformed(`name pointer at byte ${cursor} runs past the end`);
      return cursor + 2;
    }
    if (kind !== 0) throw malformed(`unknown label type 0x${kind.toString(16)} at byte ${cursor}`);
    cursor += length + 1;
  }
  throw malformed('name longer than 255 bytes');
}

/** Index just past the name of the question at byte 12: the region to compare between a query and its answer. */
export function questionNameEnd(message: Uint8Array): number {
  return skipName(message, HEADER_BYTES);
}

const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'A'], [2, 'NS'], [5, 'CNAME'], [6, 'SOA'], [10, 'NULL'], [12, 'PTR'], [13, 'HINFO'], [15, 'MX'],
  [16, 'TXT'], [17, 'RP'], [18, 'AFSDB'], [24, 'SIG'], [25, 'KEY'], [28, 'AAAA'], [29, 'LOC'], [33, 'SRV'],
  [35, 'NAPTR'], [36, 'KX'], [37, 'CERT'], [39, 'DNAME'], [41, 'OPT'], [42, 'APL'], [43, 'DS'], [44, 'SSHFP'],
  [45, 'IPSECKEY'], [46, 'RRSIG'], [47, 'NSEC'], [48, 'DNSKEY'], [49, 'DHCID'], [50, 'NSEC3'], [51, 'NSEC3PARAM'],
  [52, 'TLSA'], [53, 'SMIMEA'], [55, 'HIP'], [59, 'CDS'], [60, 'CDNSKEY'], [61, 'OPENPGPKEY'], [62, 'CSYNC'],
  [63, 'ZONEMD'], [64, 'SVCB'], [65, 'HTTPS'], [99, 'SPF'], [249, 'TKEY'], [250, 'TSIG'], [251, 'IXFR'],
  [252, 'AXFR'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'],
]);

/** Mnemonic of a record type; RFC 3597 `TYPE<n>` for the rest. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

const CLASS_NAMES: ReadonlyMap<number, string> = new Map([[1, 'IN'], [3, 'CH'], [4, 'HS'], [254, 'NONE'], [255, 'ANY']]);

/** Mnemonic of a class; RFC 3597 `CLASS<n>` for the rest. */
export function className(klass: number): string {
  return CLASS_NAMES.get(klass) ?? `CLASS${klass}`;
}

const RCODE_NAMES: readonly string[] = [
  'NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET',
  'NXRRSET', 'NOTAUTH', 'NOTZONE', 'DSOTYPENI', 'RCODE12', 'RCODE13', 'RCODE14', 'RCODE15',
  'BADVERS', 'BADKEY', 'BADTIME', 'BADMODE', 'BADNAME', 'BADALG', 'BADTRUNC', 'BADCOOKIE',
];

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

export const RCODE_NUMBERS = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export function formatIpv4(message: Uint8Array, offset: number): string {
  return `${message[offset]}.${message[offset + 1]}.${message[offset + 2]}.${message[offset + 3]}`;
}

/** RFC 5952 text form: lower-case hex, leading zeros dropped, the longest run (>= 2) of zero groups as '::'. */
export function formatIpv6(message: Uint8Array, offset: number): string {
  const groups: number[] = [];
  for (let index = 0; index < 8; index++) groups.push((message[offset + 2 * index]! << 8) | message[offset + 2 * index + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let index = 0; index < 8; ) {
    if (groups[index] !== 0) {
      index++;
      continue;
    }
    let runEnd = index;
    while (runEnd < 8 && groups[runEnd] === 0) runEnd++;
    if (runEnd - index > bestLength) {
      bestStart = index;
      bestLength = runEnd - index;
    }
    index = runEnd;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((group) => group.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

export function toHex(message: Uint8Array, from: number, to: number): string {
  let out = '';
  for (let index = from; index < to; index++) out += message[index]!.toString(16).padStart(2, '0');
  return out;
}

/** A DNS <character-string> run as text; bytes outside printable ASCII escaped as \DDD. */
export function characterStringText(message: Uint8Array, from: number, to: number): string {
  let out = '';
  for (let index = from; index < to; index++) {
    const byte = message[index]!;
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += `\\${byte.toString().padStart(3, '0')}`;
  }
  return out;
}
