/** Memory figures of /proc/PID/status. Pure. */

export interface ProcMemory {
  /** Peak resident set size ("high water mark"), bytes. */
  readonly peakRssBytes: number;
  readonly rssBytes: number;
}

function kilobytes(text: string, key: string): number | undefined {
  const match = new RegExp(`^${key}:\\s+([0-9]+) kB$`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** VmHWM and VmRSS; undefined for a process without memory (a kernel thread, a zombie). */
export function parseProcMemory(text: string): ProcMemory | undefined {
  const peak = kilobytes(text, 'VmHWM');
  const rss = kilobytes(text, 'VmRSS');
  if (peak === undefined || rss === undefined) return undefined;
  return Object.freeze({ peakRssBytes: peak, rssBytes: rss });
}
