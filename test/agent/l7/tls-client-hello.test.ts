// The pure ClientHello/SNI parser: hand-built hellos (test/helpers/tls-client-hello-encoder.ts),
// a real one from Node's TLS client, malformed input, and properties over arbitrary bytes.
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, looksLikeTls, readClientHello } from '../../../src/agent/l7/tls-client-hello.js';
import { isRunwallError } from '../../../src/protocol/index.js';
import { clientHelloHandshake, clientHelloRecords, extension, sniExtensionData } from '../../helpers/tls-client-hello-encoder.js';

const ALPN = { type: 16, data: Uint8Array.of(0, 3, 2, 0x68, 0x32) };
const KEY_SHARE = { type: 51, data: new Uint8Array(40).fill(3) };

function sni(bytes: Uint8Array): string | null | 'incomplete' {
  const result = readClientHello(bytes);
  return result.complete ? result.serverName : 'incomplete';
}

function malformedMessage(bytes: Uint8Array): string {
  try {
    readClientHello(bytes);
  } catch (error) {
    if (isRunwallError(error) && error.code === 'RW_TLS_MALFORMED') return error.message;
    throw error;
  }
  throw new Error('expected RW_TLS_MALFORMED');
}

/** The first bytes Node's own TLS client sends, captured by a loopback server. */
async function realClientHello(servername: string): Promise<Uint8Array> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const captured = new Promise<Uint8Array>((resolve) => {
      server.once('connection', (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          bytes = Buffer.concat([bytes, chunk]);
          const length = bytes.length >= 5 ? bytes.readUInt16BE(3) : Infinity;
          if (bytes.length >= 5 + length) {
            resolve(new Uint8Array(bytes));
            socket.destroy();
          }
        });
      });
    });
    const client = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    client.on('error', () => undefined);
    const hello = await captured;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

describe('readClientHello', () => {
  it("reads the SNI of Node's own ClientHello", async () => {
    const hello = await realClientHello('registry.npmjs.org');
    expect(looksLikeTls(hello)).toBe(true);
    expect(readClientHello(hello)).toMatchObject({ complete: true, serverName: 'registry.npmjs.org', encryptedClientHello: false, consumed: hello.length });
  });

  it('reads the SNI among other extensions, and null without one', () => {
    expect(sni(clientHelloRecords({ serverName: 'allowed.test', extensionsBefore: [ALPN], extensionsAfter: [KEY_SHARE] }))).toBe('allowed.test');
    expect(sni(clientHelloRecords({ serverName: null, extensionsBefore: [ALPN] }))).toBeNull();
    expect(sni(clientHelloRecords({ serverName: null, noExtensions: true }))).toBeNull();
  });

  it('reassembles a hello split over several TLS records', () => {
    const split = clientHelloRecords({ serverName: 'deep.sub.allowed.test', extensionsAfter: [KEY_SHARE], recordSizes: [3, 1, 50, 7] });
    expect(sni(split)).toBe('deep.sub.allowed.test');
  });

  it('says incomplete for every strict prefix of a hello', () => {
    const hello = clientHelloRecords({ serverName: 'allowed.test', recordSizes: [20, 30] });
    for (let length = 0; length < hello.length; length++) expect(sni(hello.subarray(0, length))).toBe('incomplete');
    expect(sni(hello)).toBe('allowed.test');
  });

  it('notes Encrypted Client Hello: the SNI is then the outer, public name', () => {
    const hello = clientHelloRecords({ serverName: 'public.cdn.test', extensionsAfter: [{ type: 0xfe0d, data: new Uint8Array(8) }] });
    expect(readClientHello(hello)).toMatchObject({ complete: true, serverName: 'public.cdn.test', encryptedClientHello: true });
  });

  it('refuses what a server could read differently: two SNI extensions, two host names, trailing bytes', () => {
    const twoExtensions = clientHelloRecords({ serverName: 'allowed.test', extensionsAfter: [{ type: 0, data: sniExtensionData('evil.test') }] });
    expect(malformedMessage(twoExtensions)).toMatch(/extension 0 appears twice/);
    const host = (name: string) => {
      const bytes = new TextEncoder().encode(name);
      return Uint8Array.of(0, bytes.length >> 8, bytes.length & 0xff, ...bytes);
    };
    const list = Uint8Array.of(...host('allowed.test'), ...host('evil.test'));
    const twoNames = clientHelloRecords({ serverName: null, extensionsAfter: [{ type: 0, data: Uint8Array.of(list.length >> 8, list.length & 0xff, ...list) }] });
    expect(malformedMessage(twoNames)).toMatch(/two host names/);
    const hello = clientHelloRecords({ serverName: 'allowed.test' });
    const trailing = Uint8Array.of(...hello.subarray(0, 3), (hello.length - 5 + 2) >> 8, (hello.length - 5 + 2) & 0xff, ...hello.subarray(5), 0, 0);
    expect(malformedMessage(trailing)).toMatch(/follow the hello/);
  });

  it('refuses bad names, bad records and other handshake messages', () => {
    expect(malformedMessage(clientHelloRecords({ serverName: 'evil test' }))).toMatch(/byte 0x20/);
    expect(malformedMessage(clientHelloRecords({ serverName: 'évil.test' }))).toMatch(/byte 0xc3/);
    expect(malformedMessage(Uint8Array.of(22, 3, 1, 0, 0))).toMatch(/record length 0/);
    expect(malformedMessage(Uint8Array.of(22, 2, 0, 0, 1, 1))).toMatch(/not TLS/);
    const serverHello = clientHelloRecords({ serverName: 'x.test' });
    serverHello[5] = 2;
    expect(malformedMessage(serverHello)).toMatch(/type 2, not ClientHello/);
    const applicationData = Uint8Array.of(...clientHelloRecords({ serverName: 'x.test', recordSizes: [10] }));
    applicationData[5 + 10] = 23;
    expect(malformedMessage(applicationData)).toMatch(/content type 23/);
    const empty = clientHelloRecords({ serverName: null, extensionsAfter: [{ type: 0, data: Uint8Array.of(0, 0) }] });
    expect(malformedMessage(empty)).toMatch(/empty server name list/);
  });

  it('refuses a declared length beyond what runwall inspects without waiting for it', () => {
    const length = MAX_CLIENT_HELLO_BYTES + 1;
    const head = Uint8Array.of(22, 3, 1, 0, 4, 1, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
    expect(malformedMessage(head)).toMatch(/over the 32768 bytes/);
  });
});

describe('readClientHello properties', () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
  const hostName = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'));
  const otherExtensions = fc.uniqueArray(
    fc.record({ type: fc.integer({ min: 1, max: 0xfffe }), data: fc.uint8Array({ maxLength: 64 }) }),
    { selector: (e) => e.type, maxLength: 6 },
  );

  it('finds the name it was given, however the hello is split into records', () => {
    fc.assert(
      fc.property(hostName, otherExtensions, fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 }), (name, extensions, recordSizes) => {
        const half = Math.floor(extensions.length / 2);
        const hello = clientHelloRecords({ serverName: name, extensionsBefore: extensions.slice(0, half), extensionsAfter: extensions.slice(half), recordSizes });
        expect(sni(hello)).toBe(name);
      }),
    );
  });

  it('on any bytes, answers or throws RW_TLS_MALFORMED, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          readClientHello(bytes);
        } catch (error) {
          expect(isRunwallError(error) && error.code === 'RW_TLS_MALFORMED').toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('on a valid hello with bytes flipped or cut anywhere, answers or throws RW_TLS_MALFORMED', () => {
    fc.assert(
      fc.property(hostName, otherExtensions, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), (name, extensions, at, value, cut) => {
        const hello = clientHelloRecords({ serverName: name, extensionsAfter: extensions });
        hello[at % hello.length] = value;
        const bytes = hello.subarray(0, hello.length - (cut % 8));
        try {
          readClientHello(bytes);
        } catch (error) {
          expect(isRunwallError(error) && error.code === 'RW_TLS_MALFORMED').toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('huge declared lengths inside the hello never read past its end', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 0xfffe }), (claimed, type) => {
        const bad = Uint8Array.of(type >> 8, type & 0xff, claimed >> 8, claimed & 0xff, 1, 2, 3);
        const handshake = clientHelloHandshake({ serverName: 'allowed.test', extensionsAfter: [] });
        // Append a lying extension inside the hello's declared bounds.
        const body = Uint8Array.of(...handshake.subarray(4), ...bad);
        const extLengthAt = body.length - bad.length - extension(0, sniExtensionData('allowed.test')).length - 2;
        const extLength = ((body[extLengthAt] ?? 0) << 8) + (body[extLengthAt + 1] ?? 0) + bad.length;
        body[extLengthAt] = extLength >> 8;
        body[extLengthAt + 1] = extLength & 0xff;
        const record = Uint8Array.of(22, 3, 1, (body.length + 4) >> 8, (body.length + 4) & 0xff, 1, 0, body.length >> 8, body.length & 0xff, ...body);
        const result = (() => {
          try {
            return readClientHello(record);
          } catch (error) {
            expect(isRunwallError(error) && error.code === 'RW_TLS_MALFORMED').toBe(true);
            return 'malformed';
          }
        })();
        if (claimed !== 3) expect(result).toBe('malformed');
      }),
    );
  });
});
