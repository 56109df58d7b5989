// What the internet's TCP servers make of a connection's first bytes.
import fc from 'fast-check';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { classifyStreamStart, httpResponse, MAX_HEAD_BYTES, okBody } from '../helpers/internet-http.js';

/** A real ClientHello from Node's TLS stack, captured from a stream that goes nowhere. */
function clientHello(servername: string | undefined): Promise<Buffer> {
  return new Promise((resolveHello) => {
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        resolveHello(chunk);
        callback();
        setImmediate(() => socket.destroy());
      },
    });
    const socket = tls.connect({ socket: sink, ...(servername !== undefined ? { servername } : {}) });
    socket.on('error', () => undefined);
  });
}

describe('classifying the start of a stream', () => {
  it('reads method, target and Host from a request head, whatever the chunking', () => {
    const head = Buffer.from('GET /path?q=1 HTTP/1.1\r\nUser-Agent: curl\r\nhOsT:  allowed.test:8443 \r\n\r\nbody');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: head.length }), (cut) => {
        const start = classifyStreamStart(head.subarray(0, cut));
        if (cut < head.indexOf('\r\n\r\n') + 4) expect(start).toEqual({ kind: 'need-more' });
        else expect(start).toEqual({ kind: 'http', method: 'GET', target: '/path?q=1', host: 'allowed.test:8443' });
      }),
    );
    expect(classifyStreamStart(Buffer.from('GET / HTTP/1.0\n\n'))).toEqual({ kind: 'http', method: 'GET', target: '/', host: undefined });
  });

  it('refuses garbage and heads that never end', () => {
    expect(classifyStreamStart(Buffer.from('hello\r\n\r\n')).kind).toBe('invalid');
    expect(classifyStreamStart(Buffer.from('GET / HTTP/1.1\r\nno colon\r\n\r\n')).kind).toBe('invalid');
    expect(classifyStreamStart(Buffer.alloc(MAX_HEAD_BYTES + 1, 'a')).kind).toBe('invalid');
  });

  it('reads the SNI of a real ClientHello, and none when the client sends none', async () => {
    const hello = await clientHello('allowed.test');
    expect(classifyStreamStart(hello)).toEqual({ kind: 'tls', serverName: 'allowed.test' });
    expect(classifyStreamStart(hello.subarray(0, hello.length - 1))).toEqual({ kind: 'need-more' });
    expect(classifyStreamStart(await clientHello(undefined))).toEqual({ kind: 'tls', serverName: undefined });
  });

  it('never throws on arbitrary bytes, TLS-looking or not', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 2000 }), (tlsLike, bytes) => {
        const data = Buffer.from(tlsLike ? [0x16, 0x03, 0x01, ...bytes] : bytes);
        expect(['need-more', 'http', 'tls', 'invalid']).toContain(classifyStreamStart(data).kind);
      }),
    );
  });
});

describe('responses', () => {
  it('say where the request arrived and for which host, and close the connection', () => {
    const response = httpResponse(200, okBody('198.51.100.10', 443, 'allowed.test')).toString();
    expect(response.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(response).toContain('Connection: close\r\n');
    expect(response.endsWith('\r\n\r\nok 198.51.100.10 443 allowed.test')).toBe(true);
    expect(okBody('2001:db8::10', 80, undefined)).toBe('ok 2001:db8::10 80 -');
    expect(httpResponse(200, 'ok', 'HEAD').toString().endsWith('Content-Length: 2\r\nConnection: close\r\n\r\n')).toBe(true);
  });
});
