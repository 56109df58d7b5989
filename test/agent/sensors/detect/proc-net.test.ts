import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeProcAddress, describeDescriptor, parseFdLink, parseProcNetSockets } from '../../../../src/agent/sensors/detect/proc-net.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

/** The kernel prints each 32-bit word of the address in host order (little-endian here). */
function word(bytes: readonly number[]): string {
  return [...bytes].reverse().map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('');
}

describe('/proc/net socket tables', () => {
  it('reads a connected TCP socket and a listener', () => {
    const text = `${HEADER}   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0\n   1: 0200A8C0:D431 4D6433C6:115C 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0\n`;
    expect(parseProcNetSockets(text, 'tcp')).toEqual([
      { protocol: 'tcp', inode: 111, local: '127.0.0.1:631', remote: null, state: 10 },
      { protocol: 'tcp', inode: 222, local: '192.168.0.2:54321', remote: '198.51.100.77:4444', state: 1 },
    ]);
  });

  it('reads IPv6 and IPv4-mapped addresses', () => {
    expect(decodeProcAddress(`${word([0x20, 0x01, 0x0d, 0xb8])}000000000000000001000000:01BB`)).toEqual({ address: '2001:db8::1', port: 443, any: false });
    expect(decodeProcAddress(`0000000000000000FFFF00004D6433C6:115C`)).toEqual({ address: '198.51.100.77', port: 4444, any: false });
  });

  it('decodes any IPv4 address and port it is given (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }), (bytes, port) => {
        const text = `${word(bytes)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
        expect(decodeProcAddress(text)).toMatchObject({ address: bytes.join('.'), port });
      }),
    );
  });

  it('skips lines it cannot read, never throws (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 60 }), { maxLength: 6 }), (lines) => {
        for (const entry of parseProcNetSockets(HEADER + lines.join('\n'), 'udp')) expect(entry.inode).toBeGreaterThan(0);
      }),
    );
  });
});

describe('descriptor links', () => {
  it('tells sockets, pipes, terminals and files apart, and resolves network sockets', () => {
    const sockets = new Map([[222, { protocol: 'tcp' as const, inode: 222, local: '10.0.0.2:1', remote: '198.51.100.77:4444', state: 1 }]]);
    expect(describeDescriptor(0, parseFdLink('socket:[222]'), sockets)).toEqual({ fd: 0, kind: 'tcp', remote: '198.51.100.77:4444' });
    expect(describeDescriptor(1, parseFdLink('socket:[333]'), sockets)).toEqual({ fd: 1, kind: 'unix' });
    expect(describeDescriptor(0, parseFdLink('pipe:[9]'), sockets)).toEqual({ fd: 0, kind: 'pipe' });
    expect(describeDescriptor(2, parseFdLink('/dev/pts/3'), sockets)).toEqual({ fd: 2, kind: 'tty' });
    expect(describeDescriptor(2, parseFdLink('/work/log.txt'), sockets)).toEqual({ fd: 2, kind: 'file' });
    expect(describeDescriptor(3, parseFdLink('anon_inode:[eventfd]'), sockets)).toEqual({ fd: 3, kind: 'other' });
  });
});
