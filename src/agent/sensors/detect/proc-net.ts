/**
 * Pure readers of what /proc says about a process's descriptors: the socket
 * tables (/proc/PID/net/tcp, tcp6, udp, udp6) and the targets of
 * /proc/PID/fd/N links. The I/O that reads them is in proc-inspect.ts.
 */
import type { Descriptor, DescriptorKind } from '../../../detect/index.js';

export interface SocketEntry {
  readonly protocol: 'tcp' | 'udp';
  readonly inode: number;
  /** `address:port`, `[v6]:port`. */
  readonly local: string;
  /** null when the socket has no peer (listening, unconnected UDP). */
  readonly remote: string | null;
  /** The kernel's state number (1 ESTABLISHED, 2 SYN_SENT, 10 LISTEN, 7 CLOSE). */
  readonly state: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One `ADDR:PORT` of /proc/net/tcp*: the address as the kernel's 32-bit words in host order, the port in hex. */
export function decodeProcAddress(text: string): { address: string; port: number; any: boolean } | null {
  const match = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(text);
  if (!match) return null;
  const hex = match[1] ?? '';
  const port = parseInt(match[2] ?? '0', 16);
  const bytes: number[] = [];
  for (let word = 0; word < hex.length / 8; word++) {
    const chunk = hex.slice(word * 8, word * 8 + 8);
    const wordBytes = [0, 2, 4, 6].map((i) => parseInt(chunk.slice(i, i + 2), 16));
    bytes.push(...(LITTLE_ENDIAN ? wordBytes.reverse() : wordBytes));
  }
  const any = bytes.every((b) => b === 0);
  if (bytes.length === 4) return { address: bytes.join('.'), port, any };
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return { address: bytes.slice(12).join('.'), port, any };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return { address: compressIpv6(groups), port, any };
}

function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The sockets of one /proc/PID/net/{tcp,tcp6,udp,udp6} file. Malformed lines are skipped. */
export function parseProcNetSockets(text: string, protocol: 'tcp' | 'udp'): SocketEntry[] {
  const entries: SocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns.length < 10) continue;
    const local = decodeProcAddress(columns[1] ?? '');
    const remote = decodeProcAddress(columns[2] ?? '');
    const state = parseInt(columns[3] ?? '', 16);
    const inode = Number(columns[9]);
    if (!local || !remote || !Number.isFinite(state) || !Number.isSafeInteger(inode) || inode <= 0) continue;
    entries.push({
      protocol,
      inode,
      local: endpoint(local.address, local.port),
      remote: remote.any && remote.port === 0 ? null : endpoint(remote.address, remote.port),
      state,
    });
  }
  return entries;
}

/** What a /proc/PID/fd/N link points at. */
export type LinkTarget =
  | { readonly kind: 'socket'; readonly inode: number }
  | { readonly kind: 'pipe'; readonly inode: number }
  | { readonly kind: 'tty'; readonly path: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'other'; readonly text: string };

export function parseFdLink(link: string): LinkTarget {
  const special = /^(socket|pipe):\[(\d+)\]$/.exec(link);
  if (special) return { kind: special[1] === 'socket' ? 'socket' : 'pipe', inode: Number(special[2]) };
  if (/^\/dev\/(pts\/\d+|tty\w*|console)$/.test(link)) return { kind: 'tty', path: link };
  if (link.startsWith('/')) return { kind: 'file', path: link };
  return { kind: 'other', text: link };
}

/** A descriptor as the detect rules see it: network sockets resolved through the process's socket tables. */
export function describeDescriptor(fd: number, link: LinkTarget, sockets: ReadonlyMap<number, SocketEntry>): Descriptor {
  let kind: DescriptorKind;
  let remote: string | undefined;
  switch (link.kind) {
    case 'socket': {
      const entry = sockets.get(link.inode);
      kind = entry ? entry.protocol : 'unix'; // not in the inet tables: a unix (or netlink) socket
      remote = entry?.remote ?? undefined;
      break;
    }
    case 'pipe':
      kind = 'pipe';
      break;
    case 'tty':
      kind = 'tty';
      break;
    case 'file':
      kind = 'file';
      break;
    default:
      kind = 'other';
  }
  return remote !== undefined ? { fd, kind, remote } : { fd, kind };
}
