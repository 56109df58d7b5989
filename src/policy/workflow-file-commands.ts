/**
 * The files a step writes to talk to the runner: `$GITHUB_ENV` and
 * `$GITHUB_OUTPUT` (`NAME=value` lines, or `NAME<<DELIMITER` … `DELIMITER`
 * for several lines) and `$GITHUB_PATH` (one directory a line). Pure.
 */

export interface FileCommands {
  readonly entries: readonly (readonly [string, string])[];
  /** Lines that could not be read, as sentences; the runner fails the step for these. */
  readonly errors: readonly string[];
}

const MAX_ENTRIES = 10_000;

/** Reads `NAME=value` and heredoc entries in order; a later entry of the same name wins when applied. */
export function parseFileCommands(text: string, file: string): FileCommands {
  const entries: (readonly [string, string])[] = [];
  const errors: string[] = [];
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  // A file that ends with a newline has an empty last element; it is not an entry.
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length && entries.length < MAX_ENTRIES; i += 1) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const equals = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (equals > 0 && (heredoc < 0 || equals < heredoc)) {
      entries.push([line.slice(0, equals), line.slice(equals + 1)]);
      continue;
    }
    if (heredoc > 0) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (delimiter === '') {
        errors.push(`${file} line ${i + 1}: '${name}<<' has no delimiter`);
        continue;
      }
      const body: string[] = [];
      let closed = false;
      for (i += 1; i < lines.length; i += 1) {
        if (lines[i] === delimiter) {
          closed = true;
          break;
        }
        body.push(lines[i] ?? '');
      }
      if (!closed) {
        errors.push(`${file}: the value of '${name}' is never closed by its delimiter '${delimiter}'`);
        break;
      }
      entries.push([name, body.join('\n')]);
      continue;
    }
    errors.push(`${file} line ${i + 1}: '${line.slice(0, 60)}' is neither NAME=value nor NAME<<DELIMITER`);
  }
  return { entries, errors };
}

/** `$GITHUB_PATH`: each non-empty line is a directory to put in front of PATH. */
export function parsePathFile(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(0, MAX_ENTRIES);
}
