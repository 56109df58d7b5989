/**
 * Where a run's events wait for the report: one JSON line per event in a
 * file, not objects in memory (a machine-wide agent sees hundreds of
 * thousands of events; held as objects they were most of its memory). Lines
 * are gathered and written in chunks, in order. If the file cannot be written
 * the spool keeps the unwritten lines, and every later one, in memory and
 * says so: no event is lost either way.
 */
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { RunEvent } from '../../protocol/index.js';

/** Characters gathered before a write: few syscalls, a small buffer. */
const CHUNK_CHARS = 64 * 1024;
/** Lines that wait no longer than this for a chunk to fill (a quiet run still reaches the disk). */
const FLUSH_AFTER_MS = 1_000;

export interface SpoolProblem {
  readonly code: 'RW_EVENTS_SPOOL_FAILED';
  readonly message: string;
  readonly time: string;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export class EventSpool {
  readonly #path: string;
  readonly #file: FileHandle | null;
  #chunk: string[] = [];
  #chunkChars = 0;
  #flushTimer: NodeJS.Timeout | null = null;
  /** The writes in flight, in order; never rejects (a failure moves the text to memory). */
  #writing: Promise<void> = Promise.resolve();
  /** Set when the file failed: from then on chunks stay here, in order after the file's. */
  #inMemory: string[] | null = null;
  #problem: SpoolProblem | null = null;
  #count = 0;
  #closed = false;

  private constructor(path: string, file: FileHandle | null) {
    this.#path = path;
    this.#file = file;
  }

  /**
   * Creates (or empties) the spool file, readable by its owner only. If it
   * cannot be created the events are kept in memory, and `problem` says so.
   */
  static async open(path: string): Promise<EventSpool> {
    try {
      return new EventSpool(path, await open(path, 'w', 0o600));
    } catch (error: unknown) {
      const spool = new EventSpool(path, null);
      spool.#failed(error, 'created');
      return spool;
    }
  }

  get count(): number {
    return this.#count;
  }

  /** Why some events are held in memory instead of the file, if they are. */
  get problem(): SpoolProblem | null {
    return this.#problem;
  }

  readonly add = (event: RunEvent): void => {
    if (this.#closed) return;
    this.#count += 1;
    const line = JSON.stringify(event);
    // Through the chunks even once the file has failed: the writes still queued must keep their place in order.
    this.#chunk.push(line);
    this.#chunkChars += line.length + 1;
    if (this.#chunkChars >= CHUNK_CHARS) this.#flush();
    else this.#flushTimer ??= setTimeout(() => this.#flush(), FLUSH_AFTER_MS).unref();
  };

  /** Every event's JSON text, in the order added: the file's lines, then any held in memory. */
  async *lines(): AsyncGenerator<string> {
    this.#flush();
    await this.#writing;
    const cut = (await stat(this.#path).catch(() => ({ size: 0 }))).size < this.#writtenBytes;
    // Only the lines of whole chunks written: a chunk whose write failed may be partly in the file, and is in memory.
    let left = this.#written;
    if (left > 0) {
      const input = createReadStream(this.#path, { encoding: 'utf8' });
      try {
        for await (const line of createInterface({ input, crlfDelay: Infinity })) {
          // A file cut behind our back may end in half a line: only whole events go into the report.
          if (!cut || isJson(line)) yield line;
          if (--left === 0) break;
        }
      } finally {
        input.destroy();
      }
    }
    for (const line of this.#inMemory ?? []) yield line;
  }

  /** Closes and removes the file; later events are not kept. */
  async remove(): Promise<void> {
    this.#closed = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    await this.#writing;
    if (this.#file !== null) {
      await this.#file.close().catch(() => undefined);
      await rm(this.#path, { force: true });
    }
    this.#inMemory = null;
    this.#chunk = [];
  }

  /** Lines in the file, in whole chunks, and their bytes. */
  #written = 0;
  #writtenBytes = 0;

  /**
   * Writes what is gathered and checks that the file still holds it all (a
   * root job on the machine could cut it). Returns what is wrong, for the
   * report's problems, before the report is written.
   */
  async settle(): Promise<SpoolProblem[]> {
    this.#flush();
    await this.#writing;
    const problems = this.#problem ? [this.#problem] : [];
    let size = 0;
    try {
      size = (await stat(this.#path)).size;
    } catch {
      // Removed: nothing of it can be read back.
    }
    if (size < this.#writtenBytes) {
      problems.push({
        code: 'RW_EVENTS_SPOOL_FAILED',
        message: `the events spool ${this.#path} holds ${size} of the ${this.#writtenBytes} bytes written to it (cut or removed behind runwall's back); the events past that point are missing from the report`,
        time: new Date().toISOString(),
      });
    }
    return problems;
  }

  /** From now on events are kept in memory: returns where. */
  #failed(error: unknown, what: 'created' | 'written'): string[] {
    const held: string[] = [];
    this.#inMemory = held;
    this.#problem = {
      code: 'RW_EVENTS_SPOOL_FAILED',
      message: `the events spool ${this.#path} could not be ${what} (${error instanceof Error ? error.message : String(error)}); events from #${this.#written + 1} on were kept in memory instead`,
      time: new Date().toISOString(),
    };
    return held;
  }

  #flush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#chunk.length === 0) return;
    const lines = this.#chunk;
    this.#chunk = [];
    this.#chunkChars = 0;
    this.#writing = this.#writing.then(async () => {
      if (this.#inMemory !== null) {
        this.#inMemory.push(...lines);
        return;
      }
      try {
        // writeFile on a handle writes all of it at the current position (a short write is continued).
        const text = lines.join('\n') + '\n';
        // Opened, or #inMemory would be set.
        await this.#file!.writeFile(text);
        this.#written += lines.length;
        this.#writtenBytes += Buffer.byteLength(text);
      } catch (error: unknown) {
        this.#failed(error, 'written').push(...lines);
      }
    });
  }
}
