// Raw DNS messages for tests, built byte by byte where dns-packet cannot
// (HTTPS/SVCB, numeric types, compression, broken messages).
import dnsPacket from 'dns-packet';

export function nameBytes(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split('.').filter((part) => part.length > 0)) {
    const bytes = [...Buffer.from(label, 'latin1')];
    out.push(bytes.length, ...bytes);
  }
  out.push(0);
  return out;
}

export function u16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

export function u32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff];
}

export interface RawRecord {
  readonly name: number[];
  readonly type: number;
  readonly klass?: number;
  readonly ttl: number;
  readonly data: number[];
}

export function record(r: RawRecord): number[] {
  return [...r.name, ...u16(r.type), ...u16(r.klass ?? 1), ...u32(r.ttl), ...u16(r.data.length), ...r.data];
}

/** A query with one question of any numeric type. */
export function rawQuery(id: number, name: string, type: number, options: { flags?: number; klass?: number } = {}): Uint8Array {
  return Uint8Array.from([...u16(id), ...u16(options.flags ?? 0x0100), ...u16(1), 0, 0, 0, 0, 0, 0, ...nameBytes(name), ...u16(type), ...u16(options.klass ?? 1)]);
}

/** A response with the given question and answer records (already encoded). */
export function rawResponse(id: number, question: { name: string; type: number } | null, answers: number[][], options: { flags?: number } = {}): Uint8Array {
  const head = [...u16(id), ...u16(options.flags ?? 0x8180), ...u16(question ? 1 : 0), ...u16(answers.length), 0, 0, 0, 0];
  const q = question ? [...nameBytes(question.name), ...u16(question.type), ...u16(1)] : [];
  return Uint8Array.from([...head, ...q, ...answers.flat()]);
}

export function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

export function ipv6Bytes(ip: string): number[] {
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') && tail ? tail.split(':') : [];
  const zeros = 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(ip.includes('::') ? zeros : 0).fill('0'), ...right].map((group) => parseInt(group, 16));
  return groups.flatMap((group) => u16(group));
}

/** HTTPS/SVCB record data (RFC 9460): priority, target, then key/value parameters. */
export function svcbData(priority: number, target: string, params: [number, number[]][]): number[] {
  return [...u16(priority), ...nameBytes(target), ...params.flatMap(([key, value]) => [...u16(key), ...u16(value.length), ...value])];
}

export function packetQuery(id: number, name: string, type: dnsPacket.RecordType, withEdns = false): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    ...(withEdns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as dnsPacket.Answer] } : {}),
  });
}
