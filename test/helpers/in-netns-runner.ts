// Child side of in-netns.ts: imports a module, calls its default export with the
// input, and writes one marked JSON line. Runs as `node --import tsx` inside a netns.
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const MARK = '@@in-netns-result@@';
const [modulePath, inputJson] = process.argv.slice(2);

function emit(value: unknown): void {
  // Synchronous: process.exit below must not cut an asynchronous pipe write short.
  writeSync(1, `\n${MARK}${JSON.stringify(value)}\n`);
}

try {
  const module = (await import(pathToFileURL(modulePath ?? '').href)) as { default?: (input: unknown) => unknown };
  if (typeof module.default !== 'function') throw new Error(`${modulePath} has no default export function`);
  const result = await module.default(JSON.parse(inputJson ?? 'null'));
  emit({ ok: true, result: result ?? null });
} catch (error) {
  const e = error as { name?: string; message?: string; code?: unknown; details?: unknown; stack?: string };
  emit({ ok: false, error: { name: e.name, message: e.message ?? String(error), code: e.code, details: e.details, stack: e.stack } });
}
// A module that leaves a handle open must not hang the test.
process.exit(0);
