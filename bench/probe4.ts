import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Type } from '@sinclair/typebox';
import { RunEvent, RunMetadata } from '../src/protocol/index.js';
import { runEventsForProbe } from './server.js';
const Batch = TypeCompiler.Compile(Type.Object({ run: Type.Optional(RunMetadata), events: Type.Array(RunEvent) }, { additionalProperties: false }));
const bodies = Array.from({ length: 50 }, (_, b) => JSON.stringify({ events: runEventsForProbe(b, 1000, Date.now()) }));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
for (let round = 0; round < 2; round++) {
  let c = cpu(); const parsed = bodies.map((b) => JSON.parse(b));
  const tParse = cpu() - c; c = cpu();
  for (const p of parsed) if (!Batch.Check(p)) throw new Error('bad');
  const tCheck = cpu() - c; c = cpu();
  for (const p of parsed) for (const e of p.events) JSON.stringify(e);
  const tStr = cpu() - c;
  console.log(`per 1000 events: parse ${(tParse / 50).toFixed(2)} ms, check ${(tCheck / 50).toFixed(2)} ms, stringify ${(tStr / 50).toFixed(2)} ms`);
}
