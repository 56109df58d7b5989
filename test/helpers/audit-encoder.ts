// Writes audit records as the kernel does (kernel/audit.c, auditsc.c), for the decoder's tests.
import { encodeNetlinkFrame } from '../../src/agent/platform/netlink-frames.js';
import { parseIpv6 } from '../../src/policy/ip.js';

/** The kernel's rule: hex unless every byte is printable ASCII other than the double quote. */
export function auditValue(bytes: Uint8Array): string {
  const plain = bytes.every((b) => b >= 0x21 && b <= 0x7e && b !== 0x22);
  return plain ? `"${new TextDecoder().decode(bytes)}"` : Buffer.from(bytes).toString('hex').toUpperCase();
}

export function auditString(text: string): string {
  return auditValue(new TextEncoder().encode(text));
}

/** EXECVE records for argv: short arguments inline, long ones as aN_len + aN[k] chunks, spread over records of at most ~7500 bytes. */
export function execveRecords(argv: readonly string[], chunkBytes = 3000): string[] {
  const records: string[] = [];
  let current = `argc=${argv.length}`;
  const push = (field: string): void => {
    if (current.length + field.length + 1 > 7500 && current !== '') {
      records.push(current);
      current = '';
    }
    current = current === '' ? field : `${current} ${field}`;
  };
  argv.forEach((arg, i) => {
    const bytes = new TextEncoder().encode(arg);
    if (bytes.byteLength <= chunkBytes) {
      push(`a${i}=${auditValue(bytes)}`);
      return;
    }
    push(`a${i}_len=${bytes.byteLength}`);
    for (let k = 0, at = 0; at < bytes.byteLength; k++, at += chunkBytes) push(`a${i}[${k}]=${auditValue(bytes.subarray(at, at + chunkBytes))}`);
  });
  if (current !== '') records.push(current);
  return records;
}

export function header(timeMs: number, serial: number): string {
  return `audit(${Math.floor(timeMs / 1000)}.${String(timeMs % 1000).padStart(3, '0')}:${serial}): `;
}

export interface SyscallFields {
  readonly arch?: string;
  readonly syscall: number;
  readonly success: boolean;
  readonly exit?: number;
  readonly pid: number;
  readonly ppid: number;
  readonly uid?: number;
  readonly comm?: string;
  readonly exe?: string;
  readonly key?: string;
}

export function syscallRecord(f: SyscallFields): string {
  return (
    `arch=${f.arch ?? 'c000003e'} syscall=${f.syscall} success=${f.success ? 'yes' : 'no'} exit=${f.exit ?? 0} a0=7ffc a1=5631 a2=5632 a3=8 items=2 ` +
    `ppid=${f.ppid} pid=${f.pid} auid=4294967295 uid=${f.uid ?? 0} gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 ` +
    `comm=${auditString(f.comm ?? 'sh')} exe=${auditString(f.exe ?? '/usr/bin/dash')} key=${f.key === undefined ? '(null)' : auditString(f.key)}`
  );
}

/** A struct sockaddr as hex, as the SOCKADDR record carries it. */
export function sockaddrHex(family: 4 | 6, address: string, port: number): string {
  if (family === 4) {
    const bytes = Buffer.alloc(16);
    bytes.writeUInt16LE(2, 0);
    bytes.writeUInt16BE(port, 2);
    address.split('.').forEach((octet, i) => bytes.writeUInt8(Number(octet), 4 + i));
    return bytes.toString('hex').toUpperCase();
  }
  const bytes = Buffer.alloc(28);
  bytes.writeUInt16LE(10, 0);
  bytes.writeUInt16BE(port, 2);
  ipv6Bytes(address).copy(bytes, 8);
  return bytes.toString('hex').toUpperCase();
}

function ipv6Bytes(address: string): Buffer {
  const bytes = parseIpv6(address);
  if (bytes === null) throw new Error(`not an IPv6 address: ${address}`);
  return Buffer.from(bytes);
}
