/**
 * Writes a RunReport to disk without building it as one string: a long run's
 * events can exceed V8's string limit (the report was then lost). Top-level
 * fields are pretty-printed, the events array holds one event per line; the
 * file appears whole or not at all (temp file, then rename).
 */
import { open, rename, rm } from 'node:fs/promises';
import type { RunReport } from '../../protocol/index.js';

/** Bytes gathered before a write: few syscalls, bounded memory. */
const CHUNK_CHARS = 1 << 20;

function field(key: string, value: unknown): string {
  return `  ${JSON.stringify(key)}: ${JSON.stringify(value, null, 2).replace(/\n/g, '\n  ')}`;
}

export async function writeReportFile(path: string, report: RunReport): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w', 0o644);
  try {
    let chunk = '';
    const put = async (text: string): Promise<void> => {
      chunk += text;
      if (chunk.length >= CHUNK_CHARS) {
        await file.write(chunk);
        chunk = '';
      }
    };
    await put('{\n');
    const entries = Object.entries(report).filter(([, value]) => value !== undefined);
    for (const [index, [key, value]] of entries.entries()) {
      if (index > 0) await put(',\n');
      if (key !== 'events') {
        await put(field(key, value));
        continue;
      }
      const events = value as RunReport['events'];
      if (events.length === 0) {
        await put('  "events": []');
        continue;
      }
      await put('  "events": [\n');
      for (const [at, event] of events.entries()) await put(`${at > 0 ? ',\n' : ''}    ${JSON.stringify(event)}`);
      await put('\n  ]');
    }
    await put('\n}\n');
    await file.write(chunk);
    await file.close();
  } catch (error: unknown) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
  await rename(temporary, path);
}
