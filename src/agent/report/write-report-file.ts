/**
 * Writes a RunReport to disk without building it, or any large part of it,
 * as one string: a long run's events can exceed V8's string limit (the report
 * was then lost), and a machine-wide run's summary lists thousands of
 * destinations. The events come as their JSON texts, one per line, from
 * wherever the run kept them (a spool file); the other fields are
 * pretty-printed as JSON.stringify(value, null, 2) would, piece by piece. The
 * file appears whole or not at all (temp file, then rename).
 */
import { open, rename, rm } from 'node:fs/promises';
import type { ReportHead } from './build-report.js';

/** Bytes gathered before a write: few syscalls, bounded memory. */
const CHUNK_CHARS = 1 << 20;
/** Below this depth objects and arrays are written piece by piece; deeper values are small, stringified whole. */
const PIECEWISE_DEPTH = 3;

type Put = (text: string) => Promise<void>;

/** `value` as JSON.stringify(value, null, 2) writes it at `indent`, in pieces. */
async function writeJson(put: Put, value: unknown, indent: string, depth: number): Promise<void> {
  if (depth >= PIECEWISE_DEPTH || value === null || typeof value !== 'object') {
    await put((JSON.stringify(value, null, 2) ?? 'null').replace(/\n/g, `\n${indent}`));
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return put('[]');
    await put('[');
    for (const [index, item] of value.entries()) {
      await put(`${index > 0 ? ',' : ''}\n${inner}`);
      await writeJson(put, item === undefined || typeof item === 'function' ? null : item, inner, depth + 1);
    }
    return put(`\n${indent}]`);
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined && typeof item !== 'function');
  if (entries.length === 0) return put('{}');
  await put('{');
  for (const [index, [key, item]] of entries.entries()) {
    await put(`${index > 0 ? ',' : ''}\n${inner}${JSON.stringify(key)}: `);
    await writeJson(put, item, inner, depth + 1);
  }
  await put(`\n${indent}}`);
}

/**
 * Writes `head` with `events` (each one event's JSON text) as its `events`
 * field, placed after `enforcement` as in a RunReport.
 */
export async function writeReportFile(path: string, head: ReportHead, events: Iterable<string> | AsyncIterable<string>): Promise<void> {
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
    const writeEvents = async (): Promise<void> => {
      let first = true;
      for await (const event of events) {
        await put(`${first ? '[\n' : ',\n'}    ${event}`);
        first = false;
      }
      await put(first ? '[]' : '\n  ]');
    };
    await put('{');
    let index = 0;
    for (const [key, value] of Object.entries(head)) {
      if (value === undefined) continue;
      await put(`${index++ > 0 ? ',' : ''}\n  ${JSON.stringify(key)}: `);
      await writeJson(put, value, '  ', 1);
      if (key === 'enforcement') {
        await put(',\n  "events": ');
        await writeEvents();
      }
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
