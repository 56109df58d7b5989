import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, bootstrap, buildApp } from '../src/server/index.js';
import { runEventsForProbe, metadataForProbe } from './server.js';
const dir = mkdtempSync(join(tmpdir(), 'rwb-'));
const { store } = await openStore({ kind: 'sqlite', path: join(dir, 'db') });
const first = await bootstrap(store);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
let c = cpu(); let t = performance.now();
const N = 3000;
for (let i = 0; i < N; i++) { const run = metadataForProbe(i, N); await store.ingest(1, { runId: run.runId, metadata: run, events: runEventsForProbe(i, 10, Date.parse(run.startedAt)) }, Date.now()); }
console.log('seed: cpu ms per run', ((cpu() - c) / N).toFixed(3), 'wall ms per run', ((performance.now() - t) / N).toFixed(3));
const { app } = await buildApp({ store });
const url = await app.listen({ port: 0, host: '127.0.0.1' });
const bodies = Array.from({ length: 30 }, (_, b) => JSON.stringify({ events: runEventsForProbe(b, 1000, Date.now()) }));
c = cpu(); t = performance.now();
for (let b = 0; b < 30; b++) { const r = await fetch(`${url}/api/v1/runs/x${b}/events`, { method: 'POST', headers: { authorization: `Bearer ${first!.apiKey}`, 'content-type': 'application/json' }, body: bodies[b] }); if (!r.ok) throw new Error(await r.text()); }
console.log('http ingest: cpu-bound events/s', Math.round(30000 / ((cpu() - c) / 1000)), 'wall events/s', Math.round(30000 / ((performance.now() - t) / 1000)));
c = cpu(); t = performance.now();
for (let i = 0; i < 200; i++) await fetch(`${url}/api/v1/runs?limit=50`, { headers: { authorization: `Bearer ${first!.apiKey}` } }).then((r) => r.text());
console.log('list: cpu ms', ((cpu() - c) / 200).toFixed(2), 'wall ms', ((performance.now() - t) / 200).toFixed(2));
await app.close(); await store.close();
