/** Reading the files named on the command line: one place, one error code. */
import { readFileSync } from 'node:fs';
import { RunwallError } from '../protocol/index.js';

const MAX_INPUT_BYTES = 16 * 1024 * 1024;

export function readInputFile(path: string, what: string): string {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error: unknown) {
    const reason = error instanceof Error && 'code' in error ? String((error as NodeJS.ErrnoException).code) : 'unreadable';
    throw new RunwallError('RW_FILE_UNREADABLE', `cannot read ${what} '${path}' (${reason})`, { path });
  }
  if (data.length > MAX_INPUT_BYTES) {
    throw new RunwallError('RW_FILE_UNREADABLE', `${what} '${path}' is larger than ${MAX_INPUT_BYTES} bytes`, { path });
  }
  return data.toString('utf8');
}
