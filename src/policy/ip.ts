/**
 * IPv4 and IPv6 addresses and networks: strict parsing, canonical text
 * (RFC 5952 for IPv6) and prefix containment. Written here because policy is
 * pure and may not use node:net.
 *
 * Addresses are compared as they travel on the wire: an IPv4-mapped IPv6
 * address (::ffff:198.51.100.7) is the IPv4 address, because the kernel sends
 * it as IPv4 and nftables matches it as IPv4.
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** 4 or 16 bytes, network order. */
  readonly bytes: readonly number[];
}

export interface IpNetwork extends IpAddress {
  readonly prefix: number;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Dotted quad with four decimal parts 0-255; leading zeros are refused (some parsers read them as octal). */
export function parseIpv4(text: string): number[] | null {
  if (text.length < 7 || text.length > 15) return null;
  // One pass over the characters: every DNS answer and logged packet comes through here.
  const bytes: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 0x2e; // the end closes the last part like a dot
    if (code === 0x2e) {
      if (digits === 0 || bytes.length === 4) return null;
      bytes.push(value);
      value = 0;
      digits = 0;
    } else if (code >= 0x30 && code <= 0x39) {
      if (digits === 1 && value === 0) return null; // a leading zero
      value = value * 10 + (code - 0x30);
      if (++digits > 3 || value > 255) return null;
    } else {
      return null;
    }
  }
  return bytes.length === 4 ? bytes : null;
}

function parseGroups(part: string, allowIpv4Tail: boolean): number[] | null {
  if (part === '') return [];
  const groups = part.split(':');
  const out: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] ?? '';
    if (allowIpv4Tail && i === groups.length - 1 && group.includes('.')) {
      const v4 = parseIpv4(group);
      if (v4 === null) return null;
      out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    } else if (HEX_GROUP.test(group)) {
      out.push(parseInt(group, 16));
    } else {
      return null;
    }
  }
  return out;
}

/** RFC 4291 text form: hex groups, at most one `::`, an optional dotted-quad tail. Zone ids (`%eth0`) are refused. */
export function parseIpv6(text: string): number[] | null {
  // The longest form is ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 (45 characters).
  if (text.length < 2 || text.length > 45) return null;
  const double = text.indexOf('::');
  let groups: number[];
  if (double === -1) {
    const all = parseGroups(text, true);
    if (all === null || all.length !== 8) return null;
    groups = all;
  } else {
    if (text.indexOf('::', double + 1) !== -1) return null;
    const head = parseGroups(text.slice(0, double), false);
    const tail = parseGroups(text.slice(double + 2), true);
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  return groups.flatMap((group) => [group >> 8, group & 0xff]);
}

export function parseIp(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(text);
  if (v6 !== null) return { family: 6, bytes: v6 };
  return null;
}

function isMappedIpv4(bytes: readonly number[]): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** The address as it goes on the wire: IPv4-mapped IPv6 becomes IPv4; everything else is unchanged. */
export function wireAddress(address: IpAddress): IpAddress {
  if (address.family === 6 && isMappedIpv4(address.bytes)) return { family: 4, bytes: address.bytes.slice(12) };
  return address;
}

/** A network as it applies on the wire: ::ffff:0:0/96 and narrower become IPv4 networks. */
export function wireNetwork(network: IpNetwork): IpNetwork {
  if (network.family === 6 && network.prefix >= 96 && isMappedIpv4(network.bytes)) {
    return { family: 4, bytes: network.bytes.slice(12), prefix: network.prefix - 96 };
  }
  return network;
}

export function formatIpv4(bytes: readonly number[]): string {
  return bytes.slice(0, 4).join('.');
}

/** RFC 5952: lower-case hex without leading zeros, the longest run (2+) of zero groups as `::` (first on a tie), mapped IPv4 in dotted form. */
export function formatIpv6(bytes: readonly number[]): string {
  if (isMappedIpv4(bytes)) return `::ffff:${formatIpv4(bytes.slice(12))}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((group) => group.toString(16)).join(':');
  if (bestLength < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

export function formatIp(address: IpAddress): string {
  return address.family === 4 ? formatIpv4(address.bytes) : formatIpv6(address.bytes);
}

export function formatCidr(network: IpNetwork): string {
  return `${formatIp(network)}/${network.prefix}`;
}

/** 4 or 6 for a valid address (zone ids refused), else 0. A pure replacement for net.isIP. */
export function ipFamily(value: string): 0 | 4 | 6 {
  return parseIp(value)?.family ?? 0;
}

/** The canonical text of an address (RFC 5952 for IPv6, mapped IPv4 kept as ::ffff:a.b.c.d), or null if it is not one. */
export function canonicalIp(value: string): string | null {
  const address = parseIp(value);
  return address === null ? null : formatIp(address);
}

function maskBytes(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bits = Math.max(0, Math.min(8, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}

export type CidrParse = { readonly network: IpNetwork } | { readonly problem: string };

const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

function splitCidr(text: string): { readonly address: IpAddress; readonly prefix: number } | { readonly problem: string } {
  const slash = text.indexOf('/');
  if (slash === -1) return { problem: 'is not a CIDR (no /prefix)' };
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const address = parseIp(addressText);
  if (address === null) return { problem: `has '${addressText}' before the '/', which is not an IPv4 or IPv6 address` };
  const max = address.family === 4 ? 32 : 128;
  if (!PREFIX.test(prefixText)) return { problem: `has the prefix length '${prefixText}', which is not a decimal number 0-${max}` };
  const prefix = Number(prefixText);
  if (prefix > max) return { problem: `has the prefix length ${prefix}, out of range for IPv${address.family} (0-${max})` };
  return { address, prefix };
}

/** `address/prefix`, with the host bits zero; a network with host bits set is refused, naming the network it probably meant. */
export function parseCidr(text: string): CidrParse {
  const split = splitCidr(text);
  if ('problem' in split) return split;
  const { address, prefix } = split;
  const masked = maskBytes(address.bytes, prefix);
  if (masked.some((byte, index) => byte !== address.bytes[index])) {
    const meant = formatCidr({ family: address.family, bytes: masked, prefix });
    return { problem: `has host bits set after /${prefix}; did you mean ${meant}?` };
  }
  return { network: { family: address.family, bytes: address.bytes, prefix } };
}

/** Whether `address` lies in `network`, comparing wire forms; different families never match. */
export function networkContains(network: IpNetwork, address: IpAddress): boolean {
  const net = wireNetwork(network);
  const ip = wireAddress(address);
  if (net.family !== ip.family) return false;
  const masked = maskBytes(ip.bytes, net.prefix);
  return masked.every((byte, index) => byte === net.bytes[index]);
}

/**
 * Whether `ip` lies in `cidr` (a network, or a bare address meaning /32 or /128).
 * IPv4-mapped IPv6 addresses are compared as IPv4. Anything unparsable is false.
 */
export function cidrContains(cidr: string, ip: string): boolean {
  const address = parseIp(ip);
  if (address === null) return false;
  let network: IpNetwork;
  if (cidr.includes('/')) {
    // A predicate, not a validator: host bits in `cidr` are ignored, as a bit-mask comparison would.
    const split = splitCidr(cidr);
    if ('problem' in split) return false;
    network = { family: split.address.family, bytes: maskBytes(split.address.bytes, split.prefix), prefix: split.prefix };
  } else {
    const bare = parseIp(cidr);
    if (bare === null) return false;
    network = { ...bare, prefix: bare.family === 4 ? 32 : 128 };
  }
  return networkContains(network, address);
}

/** A Map key for a network's first `prefix` bits, used to look an address up per prefix length. */
export function networkKey(family: IpFamily, bytes: readonly number[], prefix: number): string {
  return `${family}/${prefix}/${maskBytes(bytes, prefix).join('.')}`;
}
