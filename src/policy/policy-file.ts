/**
 * A policy file: a YAML mapping using the GitHub Action's input names, so a
 * workflow's `with:` block can be moved into a file unchanged. Unknown keys
 * and wrong types are errors naming the key and its line.
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { RunwallError, type BlockListEntry, type EgressMode, type Endpoint, type SourceWriterRule } from '../protocol/index.js';
import { blockListFromItems, lineOf } from './block-list.js';
import { parseEndpointList } from './endpoints.js';
import { deepFreeze } from './freeze.js';
import { describeValue, parseEgressMode } from './mode.js';
import { parseSourceWriters } from './source-writers.js';
import { parseDnsUpstream } from './upstream.js';

/** Settings from one source (flags, a policy file, Action inputs): only what that source set. */
export interface PolicySettings {
  readonly egressPolicy?: EgressMode;
  readonly allowedEndpoints?: readonly Endpoint[];
  /** Canonical `ip:port` (see parseDnsUpstream). */
  readonly dnsUpstream?: string;
  readonly disableFileMonitoring?: boolean;
  /** Writers and paths whose changes to source are excused (see source-writers.ts). */
  readonly allowedSourceWriters?: readonly SourceWriterRule[];
  readonly disableSudo?: boolean;
  readonly disableSudoAndContainers?: boolean;
  readonly disableTelemetry?: boolean;
  /** Inline `block-list:` entries of a policy file. */
  readonly blockList?: readonly BlockListEntry[];
}

export const POLICY_FILE_KEYS = [
  'egress-policy',
  'allowed-endpoints',
  'dns-upstream',
  'disable-file-monitoring',
  'allowed-source-writers',
  'disable-sudo',
  'disable-sudo-and-containers',
  'disable-telemetry',
  'block-list',
] as const;
type PolicyFileKey = (typeof POLICY_FILE_KEYS)[number];

const BOOLEAN_KEYS = {
  'disable-file-monitoring': 'disableFileMonitoring',
  'disable-sudo': 'disableSudo',
  'disable-sudo-and-containers': 'disableSudoAndContainers',
  'disable-telemetry': 'disableTelemetry',
} as const;

function policyError(at: string, message: string, details: Record<string, unknown> = {}): RunwallError {
  return new RunwallError('RW_POLICY_INVALID', `${at}: ${message}`, details);
}

function isKnownKey(key: string): key is PolicyFileKey {
  return (POLICY_FILE_KEYS as readonly string[]).includes(key);
}

/** A boolean as YAML writes it, or as the Action passes inputs: the strings 'true' and 'false'. */
function parseFlag(value: unknown, at: string, key: string): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw policyError(at, `${key} must be true or false, not ${describeValue(value)}`, { key });
}

/** Parses and validates a policy file; `path` names it in every error. */
export function parsePolicyFile(text: string, path: string): PolicySettings {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = counter.linePos(syntax.pos[0]);
    throw policyError(`${path}:${pos.line}:${pos.col}`, `not valid YAML: ${syntax.message.split('\n')[0] ?? ''}`, { line: pos.line });
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw policyError(path, `is empty; expected a mapping with keys such as ${POLICY_FILE_KEYS.join(', ')}`);
  }
  if (!isMap(root)) {
    const line = lineOf(counter, root);
    throw policyError(line === undefined ? path : `${path}:${line}`, `is not a mapping of settings (keys: ${POLICY_FILE_KEYS.join(', ')})`);
  }
  const out: {
    -readonly [K in keyof PolicySettings]: PolicySettings[K];
  } = {};
  for (const pair of root.items) {
    const keyLine = lineOf(counter, pair.key);
    const at = keyLine === undefined ? path : `${path}:${keyLine}`;
    const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
    if (typeof key !== 'string') throw policyError(at, `has a key that is not text (${describeValue(key)})`);
    if (!isKnownKey(key)) {
      throw policyError(at, `unknown key '${key}'; known keys: ${POLICY_FILE_KEYS.join(', ')}`, { key });
    }
    // toJS resolves anchors and aliases; the alias limit keeps a hostile file from expanding without bound.
    const value: unknown = isNode(pair.value) ? pair.value.toJS(doc, { maxAliasCount: 100 }) : null;
    const where = `${at}: ${key}`;
    switch (key) {
      case 'egress-policy':
        out.egressPolicy = parseEgressMode(value, where);
        break;
      case 'allowed-endpoints':
        if (value === null) out.allowedEndpoints = deepFreeze([]);
        else if (typeof value === 'string') out.allowedEndpoints = parseEndpointList(value, where);
        else if (Array.isArray(value) && value.every((item): item is string => typeof item === 'string')) {
          // Each item first on its own, so an error names the item's line rather than the key's.
          const nodes = isSeq(pair.value) ? pair.value.items : [];
          value.forEach((item, index) => {
            const line = lineOf(counter, nodes[index]);
            parseEndpointList(item, line === undefined ? where : `${path}:${line}: ${key}`);
          });
          out.allowedEndpoints = parseEndpointList(value, where);
        } else {
          throw policyError(at, `${key} must be a list of entries or a text of entries separated by spaces or new lines, not ${describeValue(value)}`, { key });
        }
        break;
      case 'dns-upstream':
        if (typeof value !== 'string') throw policyError(at, `${key} must be an IP address with an optional port, not ${describeValue(value)}`, { key });
        out.dnsUpstream = parseDnsUpstream(value, where);
        break;
      case 'allowed-source-writers':
        if (Array.isArray(value) && isSeq(pair.value)) {
          // Each item first on its own, so an error names the item's line rather than the key's.
          const nodes = pair.value.items;
          value.forEach((item: unknown, index) => {
            const line = lineOf(counter, nodes[index]);
            parseSourceWriters([item], line === undefined ? where : `${path}:${line}: ${key}`);
          });
        }
        out.allowedSourceWriters = parseSourceWriters(value, where);
        break;
      case 'block-list': {
        if (value === null) {
          out.blockList = deepFreeze([]);
          break;
        }
        if (!Array.isArray(value) || !isNode(pair.value)) {
          throw policyError(at, `${key} must be a list of { entry, reason } items, not ${describeValue(value)}`, { key });
        }
        const node = pair.value;
        const lines = 'items' in node && Array.isArray(node.items) ? node.items.map((item: unknown) => lineOf(counter, item)) : [];
        out.blockList = blockListFromItems(value as unknown[], lines, path, 'block-list');
        break;
      }
      default:
        out[BOOLEAN_KEYS[key]] = parseFlag(value, at, key);
    }
  }
  return deepFreeze(out);
}
