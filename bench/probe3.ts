import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
for (const variant of ['rowid', 'without', 'rowid', 'without']) {
  const db = new Database(join(mkdtempSync(join(tmpdir(), 'rwb-')), 'db'));
  db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (run_pk INTEGER NOT NULL, seq INTEGER NOT NULL, tenant_id INTEGER NOT NULL, kind TEXT NOT NULL, time_ms INTEGER, verdict TEXT, dest TEXT, body TEXT NOT NULL, PRIMARY KEY (run_pk, seq))${variant === 'without' ? ' WITHOUT ROWID' : ''}`);
  const st = db.prepare('INSERT INTO events VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (run_pk, seq) DO NOTHING');
  const body = JSON.stringify({ kind: 'dns', pad: 'x'.repeat(420) });
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const c = cpu();
  for (let r = 0; r < 200; r++) { db.exec('BEGIN'); for (let s = 1; s <= 1000; s++) st.run(r, s, 1, 'dns', Date.now(), 'allowed', 'h.test', body); db.exec('COMMIT'); }
  console.log(variant, 'cpu µs/row', ((cpu() - c) * 1000 / 200000).toFixed(2));
  db.close();
}
