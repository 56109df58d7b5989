/**
 * `allowed-source-writers`: who may change source during a job (a formatter,
 * a version bump) and where. What it excuses is still reported, at severity
 * info, so an excuse can never hide a change.
 *
 * One entry is written as whitespace-separated tokens, the same in a YAML list
 * item and in a multi-line Action input:
 *   `prettier`                                  a process, by basename
 *   `/usr/local/bin/bump`                       a process, by exe path
 *   `npm path:package.json path:package-lock.json`  that process, those paths only
 *   `path:CHANGELOG.md`                         any process, that path
 * A mapping `{ process: NAME, paths: [GLOB, ...] }` says the same in YAML.
 * Globs are relative to the workspace: `*` and `?` stay inside one path
 * segment, a `**` segment spans any number of them, a trailing `/` means
 * everything below. Brackets and braces are literal.
 */
import { RunwallError, type SourceWriterRule } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';
import { describeValue } from './mode.js';

/** The process that made a change, as the sensors know it (exe may be unknown). */
export interface SourceWriter {
  readonly exe: string | null;
  readonly argv: readonly string[];
}

/** Matches changes against the rules; built once per run. */
export interface SourceWriterMatcher {
  /** The first rule that excuses `writer` changing `path` (relative to the workspace), or null. */
  match(writer: SourceWriter, path: string): SourceWriterRule | null;
}

const PATH_PREFIX = 'path:';
const MAX_ENTRIES = 1000;

function invalid(where: string, message: string): RunwallError {
  return new RunwallError('RW_POLICY_INVALID', `${where}: ${message}`);
}

function checkProcess(process: string, where: string): string {
  if (process.startsWith(PATH_PREFIX)) throw invalid(where, `'${process}' is a path, not a process`);
  if (/\s/.test(process) || process === '') throw invalid(where, `process '${process}' must be one word: an exe path or a basename`);
  if (process.includes('/')) {
    if (!process.startsWith('/')) throw invalid(where, `process '${process}' must be an absolute exe path (starting with /) or a basename without /`);
    if (process.endsWith('/') || process.split('/').some((segment, index) => index > 0 && (segment === '' || segment === '.' || segment === '..'))) {
      throw invalid(where, `process '${process}' is not a plain absolute path`);
    }
  } else if (process === '.' || process === '..') {
    throw invalid(where, `process '${process}' is not a name`);
  }
  return process;
}

/** A relative glob in one canonical form: no `./`, no empty segments; a trailing `/` becomes `/**`. */
function canonicalGlob(glob: string, where: string): string {
  if (glob === '' || /\s/.test(glob)) throw invalid(where, `path '${glob}' must be a non-empty glob without spaces`);
  if (glob.startsWith('/')) throw invalid(where, `path '${glob}' must be relative to the workspace (no leading /)`);
  let text = glob;
  while (text.startsWith('./')) text = text.slice(2);
  if (text.endsWith('/')) text = `${text}**`;
  const segments = text.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') throw invalid(where, `path '${glob}' has an empty, '.' or '..' segment`);
    if (segment.includes('**') && segment !== '**') throw invalid(where, `path '${glob}': '**' must be a whole segment`);
  }
  return segments.join('/');
}

function ruleText(process: string | undefined, paths: readonly string[] | undefined): string {
  return [...(process === undefined ? [] : [process]), ...(paths ?? []).map((path) => `${PATH_PREFIX}${path}`)].join(' ');
}

function rule(process: string | undefined, paths: readonly string[] | undefined, where: string): SourceWriterRule {
  if (process === undefined && (paths === undefined || paths.length === 0)) throw invalid(where, 'an entry needs a process, a path:GLOB, or both');
  return {
    ...(process === undefined ? {} : { process }),
    ...(paths === undefined || paths.length === 0 ? {} : { paths: [...paths] }),
    text: ruleText(process, paths),
  };
}

/** One entry in its text form: `[PROCESS] [path:GLOB ...]`. */
export function parseSourceWriterEntry(text: string, where: string): SourceWriterRule {
  let process: string | undefined;
  const paths: string[] = [];
  for (const token of text.trim().split(/\s+/).filter((t) => t !== '')) {
    if (token.startsWith(PATH_PREFIX)) {
      paths.push(canonicalGlob(token.slice(PATH_PREFIX.length), where));
    } else if (process === undefined) {
      process = checkProcess(token, where);
    } else {
      throw invalid(where, `entry '${text.trim()}' names two processes ('${process}', '${token}'); write one entry per process`);
    }
  }
  return rule(process, paths, where);
}

function fromMapping(value: Record<string, unknown>, where: string): SourceWriterRule {
  for (const key of Object.keys(value)) {
    if (key !== 'process' && key !== 'paths') throw invalid(where, `unknown key '${key}' in an entry (known: process, paths)`);
  }
  const process = value['process'];
  if (process !== undefined && typeof process !== 'string') throw invalid(where, `process must be text, not ${describeValue(process)}`);
  const rawPaths = value['paths'];
  let paths: string[] | undefined;
  if (typeof rawPaths === 'string') paths = [canonicalGlob(rawPaths, where)];
  else if (Array.isArray(rawPaths) && rawPaths.every((p): p is string => typeof p === 'string')) paths = rawPaths.map((p) => canonicalGlob(p, where));
  else if (rawPaths !== undefined) throw invalid(where, `paths must be a glob or a list of globs, not ${describeValue(rawPaths)}`);
  return rule(process === undefined ? undefined : checkProcess(process, where), paths, where);
}

/**
 * The `allowed-source-writers` value of a policy file or Action input: a list
 * of entries (text or mapping), or a text with one entry per line. Frozen.
 */
export function parseSourceWriters(value: unknown, where: string): readonly SourceWriterRule[] {
  let items: unknown[];
  if (value === null || value === undefined) items = [];
  else if (typeof value === 'string') items = value.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  else if (Array.isArray(value)) items = value;
  else throw invalid(where, `must be a list of entries or a text with one entry per line, not ${describeValue(value)}`);
  if (items.length > MAX_ENTRIES) throw invalid(where, `has ${items.length} entries; at most ${MAX_ENTRIES}`);
  const rules: SourceWriterRule[] = [];
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const at = `${where}[${index}]`;
    let parsed: SourceWriterRule;
    if (typeof item === 'string') parsed = parseSourceWriterEntry(item, at);
    else if (item !== null && typeof item === 'object' && !Array.isArray(item)) parsed = fromMapping(item as Record<string, unknown>, at);
    else throw invalid(at, `an entry must be text or a mapping with process/paths, not ${describeValue(item)}`);
    if (!seen.has(parsed.text)) rules.push(parsed);
    seen.add(parsed.text);
  });
  return deepFreeze(rules);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\*?]/g, '\\$&');
}

/** A canonical glob (see canonicalGlob) as an anchored regular expression over `/`-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  const segments = glob.split('/');
  let source = '';
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '**') {
      // Zero or more whole segments; as the last segment, one or more (everything below).
      source += last ? '.+' : '(?:[^/]+/)*';
      return;
    }
    source += segment
      .split('')
      .map((char) => (char === '*' ? '[^/]*' : char === '?' ? '[^/]' : escapeRegExp(char)))
      .join('');
    if (!last) source += '/';
  });
  return new RegExp(`^${source}$`);
}

function basename(path: string): string {
  const index = path.lastIndexOf('/');
  return index < 0 ? path : path.slice(index + 1);
}

/** An exe path matches exactly; a basename matches the exe, argv[0] or argv[1] (a script run by an interpreter, e.g. `node …/prettier`). */
function processMatches(process: string, writer: SourceWriter): boolean {
  const candidates = [writer.exe, writer.argv[0], writer.argv[1]].filter((c): c is string => typeof c === 'string' && c !== '');
  if (process.startsWith('/')) return candidates.includes(process);
  return candidates.some((candidate) => basename(candidate) === process);
}

export function compileSourceWriters(rules: readonly SourceWriterRule[]): SourceWriterMatcher {
  const compiled = rules.map((r) => ({ rule: r, globs: (r.paths ?? []).map(globToRegExp) }));
  return {
    match(writer, path) {
      for (const { rule: r, globs } of compiled) {
        if (r.process !== undefined && !processMatches(r.process, writer)) continue;
        if (globs.length > 0 && !globs.some((glob) => glob.test(path))) continue;
        return r;
      }
      return null;
    },
  };
}
