/**
 * Thin reads of /proc for the detector: a process's descriptors, its socket
 * tables, its children. Every read may find the process gone (null / empty);
 * nothing here throws. Parsing is proc-net.ts (pure).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { parseFdLink, parseProcNetSockets, type LinkTarget, type SocketEntry } from './proc-net.js';

/** Descriptors read per process: a relay or a downloader has a handful; a build tool can have thousands. */
const MAX_FDS = 512;

export function fdLink(pid: number, fd: number): LinkTarget | null {
  try {
    return parseFdLink(readlinkSync(`/proc/${pid}/fd/${fd}`));
  } catch {
    return null;
  }
}

export function fdLinks(pid: number): Map<number, LinkTarget> {
  const links = new Map<number, LinkTarget>();
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return links;
  }
  for (const name of names.slice(0, MAX_FDS)) {
    const link = fdLink(pid, Number(name));
    if (link) links.set(Number(name), link);
  }
  return links;
}

/** The TCP and UDP sockets of the network namespace `pid` is in, by inode. */
export function socketTable(pid: number): Map<number, SocketEntry> {
  const table = new Map<number, SocketEntry>();
  for (const [file, protocol] of [
    ['tcp', 'tcp'],
    ['tcp6', 'tcp'],
    ['udp', 'udp'],
    ['udp6', 'udp'],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const entry of parseProcNetSockets(text, protocol)) table.set(entry.inode, entry);
  }
  return table;
}

export function alive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** The pid a process has in its own (innermost) PID namespace, from /proc/PID/status `NSpid`. */
export function innermostPid(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
    const last = line?.trim().split(/\s+/).pop();
    return last !== undefined && /^\d+$/.test(last) ? Number(last) : null;
  } catch {
    return null;
  }
}

/** What /proc still says of a process the process table does not know: exe, argv, parent. */
export function procFacts(pid: number): { exe: string | null; argv: string[]; ppid: number | null } | null {
  let argv: string[];
  let ppid: number | null = null;
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ppid = Number(after[1]);
  } catch {
    return null;
  }
  let exe: string | null = null;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // A kernel thread, or gone between the reads.
  }
  return { exe, argv, ppid: Number.isInteger(ppid) ? ppid : null };
}
