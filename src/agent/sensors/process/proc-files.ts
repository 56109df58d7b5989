/**
 * Best-effort reads of /proc for the process sensor: the processes that
 * existed before it started, and the details of a live process when audit
 * cannot give them. A short-lived process is often gone before it is read;
 * every function here returns null then, never throws.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { SeedEntry } from './process-table.js';
import { unifiedCgroupOf } from './tool-name.js';

/** USER_HZ: the unit of /proc/PID/stat's start time (100 on every Linux architecture runwall runs on). */
const CLOCK_TICKS_PER_SECOND = 100;

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): { comm: string; rest: string[] } | null {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  return { comm: stat.slice(open + 1, close), rest: stat.slice(close + 2).split(' ') };
}

/** The inode naming a live process's network namespace (`/proc/PID/ns/net` → `net:[4026531840]`); null when it is gone. */
export function readNetns(pid: number): number | null {
  const target = link(`/proc/${pid}/ns/net`);
  const inode = target === null ? null : /^net:\[(\d+)\]$/.exec(target)?.[1];
  return inode ? Number(inode) : null;
}

export function readPpid(pid: number): number | null {
  const stat = statFields(pid);
  const ppid = stat ? Number(stat.rest[1]) : NaN;
  return Number.isInteger(ppid) ? ppid : null;
}

export function readCgroup(pid: number): string | null {
  const text = read(`/proc/${pid}/cgroup`);
  return text === null ? null : unifiedCgroupOf(text);
}

/** `(deleted)` is appended by the kernel when the file was removed after the exec; the path is still the program's. */
function exePath(pid: number): string | null {
  const exe = link(`/proc/${pid}/exe`);
  return exe === null ? null : exe.replace(/ \(deleted\)$/, '');
}

export interface LiveDetails {
  readonly pid: number;
  readonly ppid: number | null;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly cwd: string | null;
  readonly uid: number | null;
  readonly comm: string | null;
}

export function readLiveDetails(pid: number): LiveDetails | null {
  const stat = statFields(pid);
  if (stat === null) return null;
  const cmdline = read(`/proc/${pid}/cmdline`);
  const status = read(`/proc/${pid}/status`);
  const uid = status === null ? null : Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  const ppid = Number(stat.rest[1]);
  return {
    pid,
    ppid: Number.isInteger(ppid) ? ppid : null,
    exe: exePath(pid),
    argv: cmdline === null || cmdline === '' ? [] : cmdline.replace(/\0$/, '').split('\0'),
    cwd: link(`/proc/${pid}/cwd`),
    uid: uid === null || Number.isNaN(uid) ? null : uid,
    comm: stat.comm,
  };
}

function bootTimeMs(): number {
  const btime = /^btime (\d+)$/m.exec(read('/proc/stat') ?? '');
  return btime ? Number(btime[1]) * 1000 : 0;
}

/** Every user-space process there is now (kernel threads left out), for seeding the table. */
export function scanProcesses(): SeedEntry[] {
  const boot = bootTimeMs();
  const entries: SeedEntry[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return entries;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const stat = statFields(pid);
    if (stat === null) continue;
    const ppid = Number(stat.rest[1]);
    if (pid === 2 || ppid === 2) continue; // kthreadd and its kernel threads
    const details = readLiveDetails(pid);
    const startTicks = Number(stat.rest[19]);
    entries.push({
      pid,
      ppid: Number.isInteger(ppid) ? ppid : 0,
      exe: details?.exe ?? null,
      argv: details?.argv ?? [],
      cwd: details?.cwd ?? null,
      uid: details?.uid ?? null,
      comm: stat.comm,
      startMs: Number.isFinite(startTicks) ? boot + (startTicks * 1000) / CLOCK_TICKS_PER_SECOND : Date.now(),
      cgroup: readCgroup(pid),
    });
  }
  return entries;
}

const imageCache = new Map<string, string | null>();

/**
 * The image of a Docker container, from the engine's own record of it
 * (/var/lib/docker/containers/ID/config.v2.json), when this machine runs that
 * engine; null otherwise.
 */
export function dockerImageOf(containerId: string): string | null {
  if (!/^[0-9a-f]{64}$/.test(containerId)) return null;
  if (imageCache.has(containerId)) return imageCache.get(containerId)!;
  let image: string | null = null;
  const text = read(`/var/lib/docker/containers/${containerId}/config.v2.json`);
  if (text !== null) {
    try {
      const config = JSON.parse(text) as { Config?: { Image?: unknown } };
      image = typeof config.Config?.Image === 'string' ? config.Config.Image : null;
    } catch {
      image = null;
    }
  }
  if (imageCache.size > 1000) imageCache.clear();
  imageCache.set(containerId, image);
  return image;
}
