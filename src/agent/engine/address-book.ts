/**
 * Which DNS names an address was learned from during the run, so a connection
 * to 198.51.100.10 is reported as `allowed.test` and judged by its name.
 * Bounded: the oldest entries go first once it holds `limit` addresses.
 */
export class AddressBook {
  readonly #names = new Map<string, string[]>();
  readonly #limit: number;

  constructor(limit = 200_000) {
    this.#limit = limit;
  }

  learn(ip: string, name: string): void {
    const names = this.#names.get(ip);
    if (names) {
      if (names[names.length - 1] === name) return;
      const at = names.indexOf(name);
      if (at >= 0) names.splice(at, 1);
      names.push(name);
      if (names.length > 16) names.shift();
      return;
    }
    if (this.#names.size >= this.#limit) {
      const oldest = this.#names.keys().next().value;
      if (oldest !== undefined) this.#names.delete(oldest);
    }
    this.#names.set(ip, [name]);
  }

  /** Names for the address, most recently learned last. */
  namesOf(ip: string): readonly string[] {
    return this.#names.get(ip) ?? [];
  }
}
