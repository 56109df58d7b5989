import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, bootstrap, buildApp } from '../src/server/index.js';
import { runEventsForProbe } from './server.js';
const dir = mkdtempSync(join(tmpdir(), 'rwb-'));
const { store } = await openStore({ kind: 'sqlite', path: join(dir, 'db') });
const first = await bootstrap(store);
const { app } = await buildApp({ store });
const bodies = Array.from({ length: 60 }, (_, b) => JSON.stringify({ events: runEventsForProbe(b, 1000, Date.now()) }));
for (let b = 0; b < 60; b++) { const r = await app.inject({ method: 'POST', url: `/api/v1/runs/x${b}/events`, headers: { authorization: `Bearer ${first!.apiKey}`, 'content-type': 'application/json' }, payload: bodies[b] }); if (r.statusCode >= 300) throw new Error(r.body); }
await app.close(); await store.close();
