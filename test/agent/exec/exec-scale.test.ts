// 1,000 fresh names resolved and connected at once: every answer is admitted before the client sees it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { eventsOf, execInHost } from '../../helpers/runwall-cli.js';

const CLIENT = `
const dns = require('node:dns').promises;
const net = require('node:net');
const names = Array.from({ length: 1000 }, (_, i) => 'n' + (5000 + i) + '.gen.test');
const deadline = setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, 50000);
function connect(ip) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port: 443, timeout: 5000 });
    socket.on('connect', () => { socket.destroy(); resolve('ok'); });
    socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
    socket.on('error', (e) => resolve(e.code));
  });
}
(async () => {
  const results = await Promise.all(names.map(async (name) => {
    try { const [ip] = await dns.resolve4(name); return await connect(ip); } catch (e) { return 'dns:' + e.code; }
  }));
  const counts = {};
  for (const r of results) counts[r] = (counts[r] || 0) + 1;
  console.log(JSON.stringify(counts));
  clearTimeout(deadline);
})();
`;

describe('1,000 fresh names at once', () => {
  let internet: Internet;
  beforeAll(async () => {
    internet = await createInternet();
  }, 60_000);
  afterAll(async () => {
    await internet?.destroy();
  });

  it('resolves and connects all of them with zero spurious blocks', async () => {
    const client = join(mkdtempSync(join(tmpdir(), 'runwall-scale-')), 'client.cjs');
    writeFileSync(client, CLIENT);
    const result = await execInHost(internet, ['--allowed-endpoints', '*.gen.test'], `node ${client}`, { timeoutMs: 90_000 });
    const report = result.report!;
    const failures = eventsOf(report, 'dns').filter((e) => e.rcode !== 'NOERROR').map((e) => `${e.name} ${e.rcode} ${e.error?.code ?? ''} ${e.error?.message ?? ''}`);
    expect(result.stdout.trim(), failures.slice(0, 5).join('\n')).toBe(JSON.stringify({ ok: 1000 }));
    expect(eventsOf(report, 'connection').filter((e) => e.verdict !== 'allowed')).toEqual([]);
    expect(eventsOf(report, 'dns').filter((e) => e.verdict === 'allowed').length).toBeGreaterThanOrEqual(1000);
  }, 120_000);
});
