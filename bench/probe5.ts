import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, bootstrap, buildApp } from '../src/server/index.js';
import { runEventsForProbe, metadataForProbe } from './server.js';
const dir = mkdtempSync(join(tmpdir(), 'rwb-'));
const { store } = await openStore({ kind: 'sqlite', path: join(dir, 'db') });
const first = await bootstrap(store);
const big = metadataForProbe(1, 2);
const ev = runEventsForProbe(1, 20000, Date.parse(big.startedAt));
for (let at = 0; at < ev.length; at += 5000) await store.ingest(1, { runId: 'big', metadata: { ...big, runId: 'big' }, events: ev.slice(at, at + 5000) }, Date.now());
const { app } = await buildApp({ store });
const h = { authorization: `Bearer ${first!.apiKey}` };
for (const path of ['/runs/big', '/runs/big/timeline?buckets=60', '/runs/big/events?kind=http&limit=1000', '/runs/big/events?kind=agent&limit=1000', '/runs/big/network', '/runs/big/processes']) {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) { const t = performance.now(); const r = await app.inject({ url: '/api/v1' + path, headers: h }); if (r.statusCode !== 200) throw new Error(r.body); times.push(performance.now() - t); }
  console.log(path.padEnd(45), times.map((x) => x.toFixed(1)).join(' '));
}
await app.close(); await store.close();
