// `/bytes/N` on the internet's HTTP servers: the body of a bulk download, N bytes exactly.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../helpers/internet.js';
import { bulkResponseHead, bulkTarget, MAX_BULK_BYTES } from '../helpers/internet-http.js';

describe('reading a /bytes/N target', () => {
  it('takes any decimal size up to the bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_BULK_BYTES }), (size) => {
        expect(bulkTarget(`/bytes/${size}`)).toEqual({ kind: 'bytes', size });
      }),
    );
  });

  it('refuses sizes past the bound, signs, leading zeros and trailing text', () => {
    for (const target of [`/bytes/${MAX_BULK_BYTES + 1}`, '/bytes/-1', '/bytes/01', '/bytes/1?x=1', '/bytes/', '/bytes/1e9', '/bytes/99999999999999999999']) {
      expect(bulkTarget(target).kind, target).toBe('invalid');
    }
  });

  it('leaves every other target to the ordinary answer', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (tail) => {
        fc.pre(!`/${tail}`.startsWith('/bytes/'));
        expect(bulkTarget(`/${tail}`)).toEqual({ kind: 'none' });
      }),
    );
  });

  it('announces the size in the head', () => {
    expect(bulkResponseHead(12345).toString()).toBe(
      'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 12345\r\nConnection: close\r\n\r\n',
    );
  });
});

describe('bulk downloads from P-host', () => {
  let internet: Internet;
  beforeAll(async () => {
    internet = await createInternet();
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('streams exactly N bytes on every HTTP port, over IPv4 and IPv6, and HEAD gets the size alone', async () => {
    const fetch = async (url: string, extra: readonly string[] = []): Promise<string> => {
      const result = await internet.runInHost(['curl', '-s', '-m', '20', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', ...extra, url], { timeoutMs: 30_000 });
      return result.stdout;
    };
    expect(await fetch('http://198.51.100.10/bytes/50000000')).toBe('200 50000000');
    expect(await fetch('http://[2001:db8::10]:8443/bytes/3')).toBe('200 3');
    expect(await fetch('http://198.51.100.10:443/bytes/0')).toBe('200 0');
    expect(await fetch('http://198.51.100.10/bytes/1048577')).toBe('200 1048577');
    const head = await internet.runInHost(['curl', '-s', '-m', '5', '-I', 'http://198.51.100.10/bytes/7000000000'], { timeoutMs: 10_000 });
    expect(head.stdout).toMatch(/^Content-Length: 7000000000\r$/m);
    expect(await fetch(`http://198.51.100.10/bytes/${MAX_BULK_BYTES + 1}`)).toMatch(/^400 /);
    expect((await internet.hits()).filter((hit) => hit.kind === 'http')).toHaveLength(6);
  }, 60_000);
});
