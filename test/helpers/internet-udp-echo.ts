// UDP echo for the test internet, answering from the address each datagram was sent to.
//
// The internet namespace makes whole ranges local with AnyIP routes, so a wildcard socket
// receives datagrams for thousands of addresses. Node's dgram cannot tell which one a
// datagram was sent to, nor send a reply from it; without that the reply leaves from the
// link address and the client (and any NAT or firewall between) drops it. recvmsg with
// IP_PKTINFO / IPV6_RECVPKTINFO and sendmsg with the same control message do both; koffi
// reaches them, and koffi.node.poll puts the non-blocking socket on Node's event loop.
import koffi from 'koffi';

export interface UdpDatagram {
  /** the address the datagram was sent to (an AnyIP address of the internet) */
  readonly local: string;
  readonly port: number;
  readonly from: string;
  readonly fromPort: number;
  readonly data: Buffer;
}

export interface UdpEchoSocket {
  close(): void;
}

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_IP = 0;
const SOL_IPV6 = 41;
const IP_PKTINFO = 8;
const IP_FREEBIND = 15;
const IPV6_V6ONLY = 26;
const IPV6_RECVPKTINFO = 49;
const IPV6_PKTINFO = 50;
const IPV6_FREEBIND = 78;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
/** datagrams handled per readable wake-up, so one busy socket cannot starve the loop */
const MAX_DATAGRAMS_PER_WAKE = 64;

// x86_64 / aarch64 Linux layouts (LP64).
// The arena pointer itself is what recvmsg/sendmsg receive, so msghdr comes first.
const MSGHDR_OFFSET = 0; // struct msghdr, 56 bytes
const IOV_OFFSET = 64; // struct iovec { void *base; size_t len; }
const NAME_OFFSET = 80; // sockaddr_in6 is 28 bytes
const CONTROL_OFFSET = 112;
const CONTROL_SIZE = 128;
const DATA_OFFSET = 256;
const DATA_SIZE = 65536;
const ARENA_SIZE = DATA_OFFSET + DATA_SIZE;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  recvmsg(fd: number, message: unknown, flags: number): number;
  sendmsg(fd: number, message: unknown, flags: number): number;
  close(fd: number): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    socket: lib.func('int socket(int, int, int)'),
    setsockopt: lib.func('int setsockopt(int, int, int, void *, uint32_t)'),
    bind: lib.func('int bind(int, void *, uint32_t)'),
    recvmsg: lib.func('intptr_t recvmsg(int, void *, int)'),
    sendmsg: lib.func('intptr_t sendmsg(int, void *, int)'),
    close: lib.func('int close(int)'),
  };
  return libc;
}

function check(result: number, what: string): number {
  if (result < 0) throw new Error(`${what} failed: errno ${koffi.errno()}`);
  return result;
}

function intOption(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return buffer;
}

function wildcardAddress(family: 4 | 6, port: number): Buffer {
  const address = Buffer.alloc(family === 4 ? 16 : 28);
  address.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  address.writeUInt16BE(port, 2);
  return address;
}

function formatV6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

/**
 * Opens a non-blocking UDP socket on the wildcard address of one family and echoes every
 * datagram back from the address it was sent to. `onDatagram` sees each one first.
 */
export function openUdpEcho(family: 4 | 6, port: number, onDatagram: (datagram: UdpDatagram) => void): UdpEchoSocket {
  const c = loadLibc();
  const fd = check(c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), 'socket');
  try {
    if (family === 4) {
      check(c.setsockopt(fd, SOL_IP, IP_PKTINFO, intOption(1), 4), 'IP_PKTINFO');
      check(c.setsockopt(fd, SOL_IP, IP_FREEBIND, intOption(1), 4), 'IP_FREEBIND');
    } else {
      check(c.setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, intOption(1), 4), 'IPV6_V6ONLY');
      check(c.setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, intOption(1), 4), 'IPV6_RECVPKTINFO');
      // Lets sendmsg use an AnyIP source address that is routed locally but not assigned.
      check(c.setsockopt(fd, SOL_IPV6, IPV6_FREEBIND, intOption(1), 4), 'IPV6_FREEBIND');
    }
    const address = wildcardAddress(family, port);
    check(c.bind(fd, address, address.length), `bind udp ${family === 4 ? '0.0.0.0' : '[::]'}:${port}`);
  } catch (error) {
    c.close(fd);
    throw error;
  }

  // One native arena per socket: msghdr, iovec, address, control and data all live in it,
  // so the pointers inside msghdr are plain addresses we write ourselves.
  const arena: unknown = koffi.alloc('uint8_t', ARENA_SIZE);
  const base = koffi.address(arena);
  const bytes = new Uint8Array(koffi.view(arena, ARENA_SIZE));
  const view = new DataView(bytes.buffer);

  const prepare = (nameLength: number, dataLength: number, controlLength: number): void => {
    view.setBigUint64(IOV_OFFSET, base + BigInt(DATA_OFFSET), true);
    view.setBigUint64(IOV_OFFSET + 8, BigInt(dataLength), true);
    view.setBigUint64(MSGHDR_OFFSET, base + BigInt(NAME_OFFSET), true); // msg_name
    view.setUint32(MSGHDR_OFFSET + 8, nameLength, true); // msg_namelen
    view.setBigUint64(MSGHDR_OFFSET + 16, base + BigInt(IOV_OFFSET), true); // msg_iov
    view.setBigUint64(MSGHDR_OFFSET + 24, 1n, true); // msg_iovlen
    view.setBigUint64(MSGHDR_OFFSET + 32, controlLength === 0 ? 0n : base + BigInt(CONTROL_OFFSET), true);
    view.setBigUint64(MSGHDR_OFFSET + 40, BigInt(controlLength), true); // msg_controllen
    view.setInt32(MSGHDR_OFFSET + 48, 0, true); // msg_flags
  };

  const destinationFromControl = (controlLength: number): string | undefined => {
    let offset = 0;
    while (offset + 16 <= controlLength) {
      const length = Number(view.getBigUint64(CONTROL_OFFSET + offset, true));
      const level = view.getInt32(CONTROL_OFFSET + offset + 8, true);
      const type = view.getInt32(CONTROL_OFFSET + offset + 12, true);
      const data = CONTROL_OFFSET + offset + 16;
      if (length < 16) return undefined;
      if (family === 4 && level === SOL_IP && type === IP_PKTINFO) {
        // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: addr is the header destination.
        return Array.from(bytes.subarray(data + 8, data + 12)).join('.');
      }
      if (family === 6 && level === SOL_IPV6 && type === IPV6_PKTINFO) {
        return formatV6(bytes.subarray(data, data + 16));
      }
      offset += (length + 7) & ~7;
    }
    return undefined;
  };

  const writeSourceControl = (local: string): number => {
    bytes.fill(0, CONTROL_OFFSET, CONTROL_OFFSET + CONTROL_SIZE);
    if (family === 4) {
      view.setBigUint64(CONTROL_OFFSET, 16n + 12n, true);
      view.setInt32(CONTROL_OFFSET + 8, SOL_IP, true);
      view.setInt32(CONTROL_OFFSET + 12, IP_PKTINFO, true);
      // ipi_spec_dst chooses the source address of the reply.
      local.split('.').forEach((part, i) => view.setUint8(CONTROL_OFFSET + 16 + 4 + i, Number(part)));
      return 32;
    }
    view.setBigUint64(CONTROL_OFFSET, 16n + 20n, true);
    view.setInt32(CONTROL_OFFSET + 8, SOL_IPV6, true);
    view.setInt32(CONTROL_OFFSET + 12, IPV6_PKTINFO, true);
    bytes.set(v6Bytes(local), CONTROL_OFFSET + 16);
    return 40;
  };

  const nameSize = family === 4 ? 16 : 28;
  const onReadable = (): void => {
    for (let i = 0; i < MAX_DATAGRAMS_PER_WAKE; i++) {
      prepare(nameSize, DATA_SIZE, CONTROL_SIZE);
      const received = c.recvmsg(fd, arena, MSG_DONTWAIT);
      if (received < 0) {
        if (koffi.errno() !== EAGAIN) process.stderr.write(`udp ${port}: recvmsg errno ${koffi.errno()}\n`);
        return;
      }
      const controlLength = Number(view.getBigUint64(MSGHDR_OFFSET + 40, true));
      const local = destinationFromControl(controlLength);
      const fromPort = view.getUint16(NAME_OFFSET + 2, false);
      const from =
        family === 4
          ? Array.from(bytes.subarray(NAME_OFFSET + 4, NAME_OFFSET + 8)).join('.')
          : formatV6(bytes.subarray(NAME_OFFSET + 8, NAME_OFFSET + 24));
      const data = Buffer.from(bytes.subarray(DATA_OFFSET, DATA_OFFSET + received));
      if (local === undefined) continue; // cannot answer from the right address: drop, as a lost datagram
      onDatagram({ local, port, from, fromPort, data });
      // The sender's address is still in msg_name; the data is still in place.
      const controlSent = writeSourceControl(local);
      prepare(nameSize, received, controlSent);
      if (c.sendmsg(fd, arena, MSG_DONTWAIT) < 0) {
        process.stderr.write(`udp ${port}: sendmsg to ${from} errno ${koffi.errno()}\n`);
      }
    }
  };

  const handle = koffi.node.poll(fd, { readable: true }, onReadable);
  let closed = false;
  return {
    close(): void {
      if (closed) return;
      closed = true;
      handle.close();
      c.close(fd);
      koffi.free(arena);
    },
  };
}

function v6Bytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    out[i * 2] = value >> 8;
    out[i * 2 + 1] = value & 0xff;
  });
  return out;
}
