/** Writes every event as one JSON line (`--events FILE`), appending, in stream order. */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { RunEvent } from '../../protocol/index.js';

export class JsonlExporter {
  readonly #stream: WriteStream;
  #error: Error | null = null;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', (error) => {
      this.#error = error;
    });
  }

  readonly write = (event: RunEvent): void => {
    if (this.#error) return;
    this.#stream.write(JSON.stringify(event) + '\n');
  };

  /** Flushes and closes; rejects with the first write error, so a lost event stream is never silent. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#stream.end(() => (this.#error ? reject(this.#error) : resolve()));
    });
  }
}
