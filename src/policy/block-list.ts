/**
 * The global block list: hosts that are denied in every mode, whatever the
 * allowed endpoints say. Two file forms:
 *   text:       `ENTRY REASON...` per line, `#` comment lines and blank lines ignored;
 *   YAML/JSON:  a list of `{ entry, reason, source? }`, or `{ entries: [...] }`.
 * Entries are hosts without ports: domain, `*.domain`, IP or CIDR.
 */
import { parseDocument, LineCounter, isMap, isScalar, isSeq } from 'yaml';
import { RunwallError, type BlockListEntry } from '../protocol/index.js';
import { deepFreeze } from './freeze.js';
import { parseHostTarget, targetText, type Checked, type HostTarget } from './host.js';
import { describeValue } from './mode.js';

/** A block-list entry's host: like an allowed endpoint's, but a port is an error (a block list blocks whole hosts). */
export function checkBlockTarget(entry: string): Checked<HostTarget> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) return { ok: false, problem: 'is a URL; write the host only' };
  let host = entry;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) return { ok: false, problem: "has '[' without a closing ']'" };
    if (close !== entry.length - 1) return { ok: false, problem: 'has a port; a block list blocks whole hosts, remove it' };
    host = entry.slice(1, close);
    if (!host.includes(':')) return { ok: false, problem: 'has brackets, which are only for IPv6 addresses' };
  } else if (entry.split(':').length === 2) {
    return { ok: false, problem: 'has a port; a block list blocks whole hosts, remove it' };
  }
  return parseHostTarget(host);
}

export interface BlockItem {
  readonly entry: unknown;
  readonly reason: unknown;
  readonly source?: unknown;
}

/** Collects entries, dropping exact repeats and refusing a repeat with another reason. */
class BlockListBuilder {
  private readonly seen = new Map<string, { reason: string; line: number | undefined }>();
  readonly entries: BlockListEntry[] = [];

  /** `where` names the file; `label` the setting inside it (a policy file's `block-list`). */
  constructor(
    private readonly where: string,
    private readonly label = '',
  ) {}

  fail(line: number | undefined, entry: string | undefined, problem: string): never {
    const at = line === undefined ? this.where : `${this.where}:${line}`;
    const label = this.label === '' ? '' : ` ${this.label}:`;
    const what = entry === undefined ? '' : ` entry '${entry}'`;
    throw new RunwallError('RW_BLOCKLIST_INVALID', `${at}:${label}${what} ${problem}`, {
      where: this.where,
      ...(line === undefined ? {} : { line }),
      ...(entry === undefined ? {} : { entry }),
    });
  }

  add(entryText: string, reason: string, source: string | undefined, line: number | undefined): void {
    const target = checkBlockTarget(entryText);
    if (!target.ok) this.fail(line, entryText, target.problem);
    if (reason.trim() === '') this.fail(line, entryText, 'has no reason; every block-list entry says why it is there');
    const text = targetText(target.value);
    const previous = this.seen.get(text);
    if (previous !== undefined) {
      if (previous.reason === reason.trim()) return;
      const earlier = previous.line === undefined ? 'earlier' : `on line ${previous.line}`;
      this.fail(line, entryText, `is listed again with another reason ('${reason.trim()}'; ${earlier}: '${previous.reason}')`);
    }
    this.seen.set(text, { reason: reason.trim(), line });
    this.entries.push({
      kind: target.value.kind,
      value: target.value.value,
      reason: reason.trim(),
      ...(source === undefined ? {} : { source }),
      text,
    });
  }

  addItem(item: unknown, line: number | undefined): void {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      this.fail(line, undefined, `item is ${describeValue(item)}; expected a mapping { entry, reason, source? }`);
    }
    const record = item as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!['entry', 'reason', 'source'].includes(key)) this.fail(line, undefined, `item has the unknown key '${key}' (known: entry, reason, source)`);
    }
    const { entry, reason, source } = record;
    if (entry === undefined) this.fail(line, undefined, "item has no 'entry'");
    if (typeof entry !== 'string') this.fail(line, undefined, `item's 'entry' is ${describeValue(entry)}, not a host`);
    if (reason === undefined || reason === null) this.fail(line, entry, 'has no reason; every block-list entry says why it is there');
    if (typeof reason !== 'string') this.fail(line, entry, `has a reason that is ${describeValue(reason)}, not text`);
    if (source !== undefined && typeof source !== 'string') this.fail(line, entry, `has a source that is ${describeValue(source)}, not text`);
    this.add(entry.trim(), reason, source, line);
  }
}

/** The 1-based line where a YAML node starts, when the node knows its place in the text. */
export function lineOf(counter: LineCounter, node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: readonly number[] }).range;
    if (range?.[0] !== undefined) return counter.linePos(range[0]).line;
  }
  return undefined;
}

/** Entries given as items of a YAML list (block-list files and a policy file's `block-list:`); `lines` are per item. */
export function blockListFromItems(
  items: readonly unknown[],
  lines: readonly (number | undefined)[],
  where: string,
  label = '',
): readonly BlockListEntry[] {
  const builder = new BlockListBuilder(where, label);
  items.forEach((item, index) => builder.addItem(item, lines[index]));
  return deepFreeze(builder.entries);
}

function firstContentLine(text: string): string {
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) return line;
  }
  return '';
}

function parseStructured(text: string, source: string): readonly BlockListEntry[] {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  const builder: BlockListBuilder = new BlockListBuilder(source);
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const line = counter.linePos(syntax.pos[0]).line;
    builder.fail(line, undefined, `is not valid YAML/JSON: ${syntax.message.split('\n')[0] ?? ''}`);
  }
  const root: unknown = doc.contents;
  let seq: unknown = root;
  if (isMap(root)) {
    const keys = root.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key));
    const unknown = keys.find((key) => key !== 'entries');
    if (unknown !== undefined) builder.fail(lineOf(counter, root), undefined, `has the unknown key '${unknown}' (a block list is a list, or a mapping with 'entries')`);
    seq = root.get('entries', true);
  }
  if (!isSeq(seq)) return builder.fail(lineOf(counter, root), undefined, 'is not a list of { entry, reason } items');
  // toJS resolves anchors and aliases; the alias limit keeps a hostile file from expanding without bound.
  const js: unknown = seq.toJS(doc, { maxAliasCount: 100 });
  const items = Array.isArray(js) ? (js as unknown[]) : [];
  const lines = seq.items.map((node: unknown) => lineOf(counter, node));
  return blockListFromItems(items, lines, source);
}

function parseText(text: string, source: string): readonly BlockListEntry[] {
  const builder = new BlockListBuilder(source);
  text.split(/\r\n|\r|\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(\S+)(?:\s+(.*))?$/.exec(line);
    const entry = match?.[1] ?? line;
    const reason = match?.[2] ?? '';
    builder.add(entry, reason, undefined, index + 1);
  });
  return deepFreeze(builder.entries);
}

/** Parses a block-list file of either form; errors are RW_BLOCKLIST_INVALID naming `source`, the line and the entry. */
export function parseBlockList(text: string, source: string): readonly BlockListEntry[] {
  const first = firstContentLine(text);
  // YAML/JSON starts with a list item, a flow mapping, a JSON array of objects, or a `key:`;
  // a text line may start with '[' too (`[2001:db8::1] reason`), so only `[{`, `["` and `[]` count.
  const structured = /^(-|\{|\[\s*[{"\]]|\[\s*$|[A-Za-z_-]+\s*:(\s|$))/.test(first);
  return structured ? parseStructured(text, source) : parseText(text, source);
}
