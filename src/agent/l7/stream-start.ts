/**
 * What the first bytes a client sends on a TCP flow say about where it goes:
 * a TLS ClientHello (its SNI), a plain-HTTP request (its Host and target), or
 * another protocol (judged by the address admission alone). Pure.
 *
 * Every allowed TCP port is checked this way, not only 443 and 80: TLS is
 * recognised by its first bytes wherever it runs, HTTP by its method, and
 * anything else (SSH, a database protocol) passes on the address:port the
 * firewall admitted.
 */
import { isRunwallError } from '../../protocol/index.js';
import { looksLikeHttp, readRequestHead } from './http-request-head.js';
import { looksLikeTls, readClientHello } from './tls-client-hello.js';

export interface StreamProblem {
  readonly code: 'RW_TLS_MALFORMED' | 'RW_HTTP_MALFORMED';
  readonly message: string;
}

export type StreamStart =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'other' }
  | {
      readonly kind: 'tls';
      /** The SNI, or null when the client sent none or it could not be read (then `problem` says why). */
      readonly serverName: string | null;
      readonly encryptedClientHello: boolean;
      readonly problem?: StreamProblem;
    }
  | {
      readonly kind: 'http';
      readonly method?: string;
      readonly path?: string;
      /** The Host header's host (no port), or null. */
      readonly host: string | null;
      /** The host of an absolute- or authority-form target (`GET http://name/`, `CONNECT name:443`), or null. */
      readonly targetHost: string | null;
      readonly problem?: StreamProblem;
    };

/**
 * Classifies the stream's first bytes. With `final` (no more bytes will be
 * waited for: time, packet or byte bound reached) an incomplete hello or head
 * is judged as it stands: TLS or HTTP without a name, with the problem.
 */
export function classifyStreamStart(bytes: Uint8Array, final: boolean): StreamStart {
  if (bytes.length === 0) return final ? { kind: 'other' } : { kind: 'need-more' };
  if (looksLikeTls(bytes)) return classifyTls(bytes, final);
  const http = looksLikeHttp(bytes);
  if (http === 'no') return { kind: 'other' };
  if (http === 'maybe' && !final) return { kind: 'need-more' };
  return classifyHttp(bytes, final);
}

function classifyTls(bytes: Uint8Array, final: boolean): StreamStart {
  try {
    const hello = readClientHello(bytes);
    if (hello.complete) return { kind: 'tls', serverName: hello.serverName, encryptedClientHello: hello.encryptedClientHello };
    if (!final) return { kind: 'need-more' };
    return {
      kind: 'tls',
      serverName: null,
      encryptedClientHello: false,
      problem: { code: 'RW_TLS_MALFORMED', message: `TLS ClientHello incomplete: ${bytes.length} bytes arrived before runwall stopped waiting` },
    };
  } catch (error) {
    if (isRunwallError(error) && error.code === 'RW_TLS_MALFORMED') {
      return { kind: 'tls', serverName: null, encryptedClientHello: false, problem: { code: 'RW_TLS_MALFORMED', message: error.message } };
    }
    throw error;
  }
}

function classifyHttp(bytes: Uint8Array, final: boolean): StreamStart {
  try {
    const head = readRequestHead(bytes);
    if (head.complete) return { kind: 'http', method: head.method, path: head.path, host: head.host, targetHost: head.targetHost };
    if (!final) return { kind: 'need-more' };
    return {
      kind: 'http',
      host: null,
      targetHost: null,
      problem: { code: 'RW_HTTP_MALFORMED', message: `HTTP request head incomplete: ${bytes.length} bytes arrived before runwall stopped waiting` },
    };
  } catch (error) {
    if (isRunwallError(error) && error.code === 'RW_HTTP_MALFORMED') {
      return { kind: 'http', host: null, targetHost: null, problem: { code: 'RW_HTTP_MALFORMED', message: error.message } };
    }
    throw error;
  }
}
