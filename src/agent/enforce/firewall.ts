/**
 * The run's nftables table: installed in one atomic batch, fed with addresses
 * from DNS answers before the answers are released, checked for tampering.
 * Admissions go to the kernel as a netlink batch written directly (a few µs);
 * everything else (install, verify, restore) goes through libnftables.
 */
import { isRunwallError } from '../../protocol/index.js';
import { NftSetWriter, type Nftables } from '../platform/index.js';
import { admitCommands, admitOperations, buildRuleset, type AdmitElement, type RulesetConfig } from './ruleset.js';

export interface Admission {
  readonly family: 4 | 6;
  readonly ip: string;
  readonly port: number;
  readonly ttlSeconds: number;
}

/** How the table gets loaded: in-process, or through a helper process when the rules name a cgroup (see agent). */
export type RulesetLoader = (text: string) => void | Promise<void>;

/** Why admissions go through libnftables instead of netlink, when they do. */
export interface AdmissionFallback {
  readonly code: string;
  readonly message: string;
}

export interface FirewallOptions {
  readonly graceSeconds: number;
  readonly load?: RulesetLoader;
  /** How admissions reach the kernel (default netlink; libnftables is the measured baseline, and the fallback). */
  readonly admitVia?: 'netlink' | 'libnftables';
  /** Opens the netlink writer (tests replace it to see the fallback). */
  readonly openSetWriter?: () => NftSetWriter;
}

export class Firewall {
  readonly config: RulesetConfig;
  readonly #nft: Nftables;
  readonly #load: RulesetLoader;
  readonly #graceSeconds: number;
  /** `ip port` -> when its element expires (ms since epoch), so a shorter TTL never cuts a longer one short. */
  readonly #expiry = new Map<string, number>();
  readonly #admitVia: 'netlink' | 'libnftables';
  readonly #openSetWriter: () => NftSetWriter;
  #writer: NftSetWriter | null = null;
  #fallback: AdmissionFallback | null = null;
  #installed = false;

  constructor(nft: Nftables, config: RulesetConfig, options: FirewallOptions) {
    this.#nft = nft;
    this.config = config;
    this.#graceSeconds = options.graceSeconds;
    this.#load = options.load ?? ((text) => nft.run(text));
    this.#admitVia = options.admitVia ?? 'netlink';
    this.#openSetWriter = options.openSetWriter ?? (() => NftSetWriter.open());
  }

  /** Set when the netlink socket could not be opened and admissions go through libnftables: for the run's problems. */
  get admissionFallback(): AdmissionFallback | null {
    return this.#fallback;
  }

  get table(): string {
    return this.config.table;
  }

  /** Loads the table and opens the admission socket in this thread's network namespace, where the table is. */
  async install(): Promise<void> {
    await this.#load(buildRuleset(this.config));
    this.#installed = true;
    this.#expiry.clear();
    if (this.#admitVia === 'netlink' && this.#writer === null && this.#fallback === null) {
      try {
        this.#writer = this.#openSetWriter();
      } catch (error: unknown) {
        // Admissions still work, ~10x slower per fresh DNS answer: said once, by whoever reads admissionFallback.
        this.#fallback = {
          code: isRunwallError(error) ? error.code : 'RW_SETUP_FAILED',
          message: `nftables set updates go through libnftables: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
    }
  }

  /** Adds the addresses of one answer; synchronous (a few µs over netlink), so the answer waits only that long. RW_NFT_FAILED if refused. */
  admit(admissions: readonly Admission[]): void {
    const now = Date.now();
    const batch: AdmitElement[] = [];
    // Recorded only once the kernel has taken the batch: a refused admission is tried again by the next answer.
    const admitted = new Map<string, number>();
    for (const a of admissions) {
      const timeoutSeconds = a.ttlSeconds + this.#graceSeconds;
      const key = `${a.ip} ${a.port}`;
      const until = now + timeoutSeconds * 1000;
      const current = admitted.get(key) ?? this.#expiry.get(key);
      // Refresh only when the element would run out within the new TTL plus half the grace: under
      // repeated queries for one name this re-admits an address every few seconds, not every answer.
      if (current !== undefined && current >= until - (this.#graceSeconds * 1000) / 2) continue;
      batch.push({ family: a.family, ip: a.ip, port: a.port, timeoutSeconds, refresh: current !== undefined && current > now });
      admitted.set(key, until);
    }
    if (batch.length > 0) {
      if (this.#writer !== null) this.#writer.apply(this.config.table, admitOperations(batch));
      else this.#nft.run(admitCommands(this.config.table, batch));
    }
    for (const [key, until] of admitted) this.#expiry.set(key, until);
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
  async restore(): Promise<void> {
    const live = [...this.#expiry].filter(([, until]) => until > Date.now());
    await this.install();
    const now = Date.now();
    const batch = live.map(([key, until]) => {
      const [ipText = '', portText = '0'] = key.split(' ');
      return { family: (ipText.includes(':') ? 6 : 4) as 4 | 6, ip: ipText, port: Number(portText), timeoutSeconds: (until - now) / 1000, refresh: false };
    });
    if (batch.length > 0) this.#nft.run(admitCommands(this.config.table, batch));
    for (const [key, until] of live) this.#expiry.set(key, until);
  }

  /** Closes the admission socket and leaves the table in place. */
  close(): void {
    this.#writer?.close();
    this.#writer = null;
  }

  remove(): void {
    this.close();
    if (!this.#installed) return;
    this.#installed = false;
    try {
      this.#nft.run(`delete table inet ${this.config.table}`);
    } catch {
      // Already removed (by a tamperer, or a crashed run's cleanup).
    }
  }
}
