/**
 * The run's nftables table: installed in one atomic batch, fed with addresses
 * from DNS answers before the answers are released, checked for tampering.
 */
import type { Nftables } from '../platform/index.js';
import { admitCommands, buildRuleset, type RulesetConfig } from './ruleset.js';

export interface Admission {
  readonly family: 4 | 6;
  readonly ip: string;
  readonly port: number;
  readonly ttlSeconds: number;
}

/** How the table gets loaded: in-process, or through a helper when the rules name a cgroup (see agent). */
export type RulesetLoader = (text: string) => void;

export class Firewall {
  readonly config: RulesetConfig;
  readonly #nft: Nftables;
  readonly #load: RulesetLoader;
  readonly #graceSeconds: number;
  /** `ip port` -> when its element expires (ms since epoch), so a shorter TTL never cuts a longer one short. */
  readonly #expiry = new Map<string, number>();
  #installed = false;

  constructor(nft: Nftables, config: RulesetConfig, options: { graceSeconds: number; load?: RulesetLoader }) {
    this.#nft = nft;
    this.config = config;
    this.#graceSeconds = options.graceSeconds;
    this.#load = options.load ?? ((text) => nft.run(text));
  }

  get table(): string {
    return this.config.table;
  }

  install(): void {
    this.#load(buildRuleset(this.config));
    this.#installed = true;
    this.#expiry.clear();
  }

  /** Adds the addresses of one answer; synchronous (~0.1 ms in-process), so the answer waits only that long. */
  admit(admissions: readonly Admission[]): void {
    const now = Date.now();
    const batch = [];
    for (const a of admissions) {
      const timeoutSeconds = a.ttlSeconds + this.#graceSeconds;
      const key = `${a.ip} ${a.port}`;
      const until = now + timeoutSeconds * 1000;
      const current = this.#expiry.get(key);
      // Refresh only when the element would run out within the new TTL plus half the grace: under
      // repeated queries for one name this re-admits an address every few seconds, not every answer.
      if (current !== undefined && current >= until - (this.#graceSeconds * 1000) / 2) continue;
      batch.push({ family: a.family, ip: a.ip, port: a.port, timeoutSeconds, refresh: current !== undefined && current > now });
      this.#expiry.set(key, until);
    }
    if (batch.length > 0) this.#nft.run(admitCommands(this.config.table, batch));
    if (this.#expiry.size > 50_000) {
      for (const [key, until] of this.#expiry) if (until < now) this.#expiry.delete(key);
    }
  }

  /** Whether the table is still ours: present with its chains. A missing or emptied table is tampering. */
  verify(): { intact: true } | { intact: false; problem: string } {
    try {
      const listing = this.#nft.runJson(`list chain inet ${this.config.table} job_egress`) as {
        nftables?: Array<Record<string, unknown>>;
      };
      const rules = (listing.nftables ?? []).filter((item) => 'rule' in item).length;
      if (rules === 0) return { intact: false, problem: `chain job_egress of table inet ${this.config.table} was flushed` };
      return { intact: true };
    } catch (error: unknown) {
      return { intact: false, problem: `table inet ${this.config.table} is gone: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /** Puts the table back after tampering, with every admission still in force. */
  restore(): void {
    const now = Date.now();
    const live = [...this.#expiry].filter(([, until]) => until > now);
    this.install();
    const batch = live.map(([key, until]) => {
      const [ipText = '', portText = '0'] = key.split(' ');
      return { family: (ipText.includes(':') ? 6 : 4) as 4 | 6, ip: ipText, port: Number(portText), timeoutSeconds: (until - now) / 1000, refresh: false };
    });
    if (batch.length > 0) this.#nft.run(admitCommands(this.config.table, batch));
    for (const [key, until] of live) this.#expiry.set(key, until);
  }

  remove(): void {
    if (!this.#installed) return;
    this.#installed = false;
    try {
      this.#nft.run(`delete table inet ${this.config.table}`);
    } catch {
      // Already removed (by a tamperer, or a crashed run's cleanup).
    }
  }
}
