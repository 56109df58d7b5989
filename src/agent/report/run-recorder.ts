/**
 * What a run keeps for its report, subscribed to the pipeline: every event
 * goes to the spool file (when a report will be written) and into the digest
 * (summary, steps, process tree, recommended policy). Memory follows what the
 * run touched, not how many events it made; the report is written streaming
 * the events back from the spool.
 */
import type { RunEvent } from '../../protocol/index.js';
import { ReportDigest, type ReportHead, type ReportMetadata } from './build-report.js';
import { EventSpool } from './event-spool.js';
import { writeReportFile } from './write-report-file.js';

export class RunRecorder {
  readonly #digest: ReportDigest;
  readonly #spool: EventSpool | null;
  #sealed = false;

  private constructor(digest: ReportDigest, spool: EventSpool | null) {
    this.#digest = digest;
    this.#spool = spool;
  }

  /** `spoolPath`: where the events wait for the report; null when no report file will be written. */
  static async open(policy: ReportMetadata['policy'], spoolPath: string | null): Promise<RunRecorder> {
    return new RunRecorder(new ReportDigest(policy), spoolPath === null ? null : await EventSpool.open(spoolPath));
  }

  /** The pipeline subscriber. Events after the report was begun are not in it (as before: the report is of the run until stop). */
  readonly record = (event: RunEvent): void => {
    if (this.#sealed) return;
    this.#spool?.add(event);
    this.#digest.add(event);
  };

  /**
   * The report's head (problems of the spool added to the enforcement's);
   * with `path`, the whole report written there, events streamed from the
   * spool. The spool is removed afterwards either way.
   */
  async finish(metadata: ReportMetadata, path: string | null): Promise<ReportHead> {
    this.#sealed = true;
    try {
      const spoolProblems = this.#spool ? await this.#spool.settle() : [];
      const head = this.#digest.head(
        spoolProblems.length === 0 ? metadata : { ...metadata, enforcement: { ...metadata.enforcement, problems: [...metadata.enforcement.problems, ...spoolProblems] } },
      );
      if (path !== null) {
        if (this.#spool === null) throw new Error('RunRecorder: a report file needs a spool (opened without one)');
        await writeReportFile(path, head, this.#spool.lines());
      }
      return head;
    } finally {
      await this.#spool?.remove();
    }
  }

  /** Drops the spool without a report (a run that failed to start). */
  async discard(): Promise<void> {
    this.#sealed = true;
    await this.#spool?.remove();
  }
}
