// The pure HTTP request-head reader and the stream-start classifier built on it and the TLS parser.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_REQUEST_HEAD_BYTES, looksLikeHttp, readRequestHead } from '../../../src/agent/l7/http-request-head.js';
import { classifyStreamStart } from '../../../src/agent/l7/stream-start.js';
import { isRunwallError } from '../../../src/protocol/index.js';
import { clientHelloRecords } from '../../helpers/tls-client-hello-encoder.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function malformedMessage(head: string): string {
  try {
    readRequestHead(text(head));
  } catch (error) {
    if (isRunwallError(error) && error.code === 'RW_HTTP_MALFORMED') return error.message;
    throw error;
  }
  throw new Error('expected RW_HTTP_MALFORMED');
}

describe('readRequestHead', () => {
  it('reads method, path without its query, and the Host without its port', () => {
    expect(readRequestHead(text('GET /v1/pkg?token=secret HTTP/1.1\r\nHost: Registry.Test:8080\r\nAccept: */*\r\n\r\n'))).toEqual({
      complete: true,
      method: 'GET',
      path: '/v1/pkg',
      host: 'Registry.Test',
      targetHost: null,
    });
  });

  it('takes an IPv6 Host in brackets, bare LF line ends, and HTTP/1.0 without Host', () => {
    expect(readRequestHead(text('HEAD / HTTP/1.1\nhost: [2001:db8::10]:80\n\n'))).toMatchObject({ host: '2001:db8::10' });
    expect(readRequestHead(text('GET / HTTP/1.0\r\n\r\n'))).toMatchObject({ complete: true, host: null });
  });

  it('reads the host of an absolute-form target (which a server prefers over Host) and of CONNECT', () => {
    expect(readRequestHead(text('GET http://user@evil.test:80/x?q HTTP/1.1\r\nHost: allowed.test\r\n\r\n'))).toMatchObject({
      host: 'allowed.test',
      targetHost: 'evil.test',
      path: '/x',
    });
    expect(readRequestHead(text('CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n'))).toMatchObject({ targetHost: 'evil.test', host: 'evil.test' });
  });

  it('is incomplete until the empty line, for every prefix', () => {
    const head = 'POST /upload HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 3\r\n\r\n';
    for (let length = 0; length < head.length; length++) expect(readRequestHead(text(head.slice(0, length))).complete).toBe(false);
    expect(readRequestHead(text(`${head}abc`))).toMatchObject({ complete: true, host: 'allowed.test' });
  });

  it('refuses what a server could read differently', () => {
    expect(malformedMessage('GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: evil.test\r\n\r\n')).toMatch(/two Host headers/);
    expect(malformedMessage('GET / HTTP/1.1\r\nHost : evil.test\r\n\r\n')).toMatch(/bad header name/);
    expect(malformedMessage('GET / HTTP/1.1\r\nX-A: 1\r\n  Host: evil.test\r\n\r\n')).toMatch(/folded/);
    expect(malformedMessage('GET / HTTP/2.0\r\n\r\n')).toMatch(/not HTTP\/1.0 or 1.1/);
    expect(malformedMessage('GET  / HTTP/1.1\r\n\r\n')).toMatch(/parts/);
    expect(malformedMessage('GET / HTTP/1.1\r\nHost: evil.test/x\r\n\r\n')).toMatch(/not host\[:port\]/);
  });

  it('gives up on a head longer than it reads', () => {
    const long = `GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_REQUEST_HEAD_BYTES)}`;
    expect(() => readRequestHead(text(long))).toThrow(/no end of the head/);
  });

  it('on any bytes, answers or throws RW_HTTP_MALFORMED, nothing else', () => {
    const headish = fc.array(fc.constantFrom('GET ', '/', ' HTTP/1.1', '\r\n', '\n', 'Host:', ' h.test', ':80', '[', ']', '\t', ' ', 'x'), { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(headish, fc.string({ maxLength: 200 })), (input) => {
        try {
          readRequestHead(text(input));
        } catch (error) {
          expect(isRunwallError(error) && error.code === 'RW_HTTP_MALFORMED').toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('classifyStreamStart', () => {
  it('tells TLS, HTTP and other protocols apart from their first bytes', () => {
    expect(classifyStreamStart(clientHelloRecords({ serverName: 'allowed.test' }), false)).toMatchObject({ kind: 'tls', serverName: 'allowed.test' });
    expect(classifyStreamStart(text('GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n'), false)).toMatchObject({ kind: 'http', host: 'allowed.test', method: 'GET' });
    expect(classifyStreamStart(text('SSH-2.0-OpenSSH_9.2\r\n'), false)).toEqual({ kind: 'other' });
    expect(classifyStreamStart(text('SET key value\r\n'), false)).toEqual({ kind: 'other' });
  });

  it('judges HTTP/2 with prior knowledge as HTTP without a name (its names are in frames runwall does not read)', () => {
    expect(classifyStreamStart(text('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), false)).toMatchObject({ kind: 'http', host: null, targetHost: null, problem: { code: 'RW_HTTP_MALFORMED' } });
  });

  it('waits on a prefix that may still become TLS or HTTP', () => {
    expect(classifyStreamStart(text('GE'), false)).toEqual({ kind: 'need-more' });
    expect(classifyStreamStart(Uint8Array.of(22, 3), false)).toEqual({ kind: 'need-more' });
    expect(looksLikeHttp(text('PROPF'))).toBe('maybe');
  });

  it('when no more will come, judges an incomplete start as one without a name, with the problem', () => {
    const partial = clientHelloRecords({ serverName: 'allowed.test' }).subarray(0, 40);
    expect(classifyStreamStart(partial, true)).toMatchObject({ kind: 'tls', serverName: null, problem: { code: 'RW_TLS_MALFORMED' } });
    expect(classifyStreamStart(text('GET / HTTP/1.1\r\nHost: allo'), true)).toMatchObject({ kind: 'http', host: null, problem: { code: 'RW_HTTP_MALFORMED' } });
    expect(classifyStreamStart(new Uint8Array(0), true)).toEqual({ kind: 'other' });
  });

  it('turns a malformed hello or head into data, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, final) => {
        const start = classifyStreamStart(bytes, final);
        if (final) expect(start.kind).not.toBe('need-more');
      }),
      { numRuns: 3000 },
    );
  });
});
