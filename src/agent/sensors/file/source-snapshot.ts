/**
 * The workspace when monitoring starts: every directory (so changes inside a
 * directory deleted later are still placed), and the source files with their
 * sha256. Source is what `git ls-files` lists when the workspace is in a git
 * work tree, otherwise every file present; never anything under node_modules
 * or .git. Hashing is awaited before the job's first exec, so every "before"
 * hash is the content the job started with (measured in `make bench`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceSnapshot } from './file-activity.js';
import { joinRelative, NEVER_SOURCE_DIRS, parseGitLsFiles } from './workspace-paths.js';

/** Directories indexed at start before the rest are looked up when first named. */
export const MAX_INDEXED_DIRECTORIES = 200_000;
/** Source files hashed at start; more than this is reported, not silently cut. */
export const MAX_SOURCE_FILES = 500_000;
/** Files hashed between two turns of the event loop. */
const FILES_PER_SLICE = 200;
const CHUNK_BYTES = 1024 * 1024;
const GIT_TIMEOUT_MS = 60_000;

export interface TakenSnapshot extends SourceSnapshot {
  readonly kind: 'git' | 'all-files';
  readonly truncated: boolean;
  readonly hashMs: number;
}

/** One directory found by the walk: absolute path, relative path ('' for the workspace) and device. */
export interface WalkedDirectory {
  readonly absolute: string;
  readonly relative: string;
  readonly device: number;
}

export interface WalkResult {
  readonly directories: number;
  readonly truncated: boolean;
  /** Regular files and symlinks outside node_modules/.git (the source when there is no git). */
  readonly files: readonly string[];
}

/**
 * Walks the workspace without following symlinks, calling `onDirectory` for
 * every directory (node_modules and .git included: their deletes must be
 * placed too). Iterative, bounded by MAX_INDEXED_DIRECTORIES.
 */
export function walkWorkspace(workspace: string, onDirectory: (directory: WalkedDirectory) => void): WalkResult {
  const files: string[] = [];
  const stack: { absolute: string; relative: string; never: boolean }[] = [{ absolute: workspace, relative: '', never: false }];
  let directories = 0;
  let truncated = false;
  for (let next = stack.pop(); next; next = stack.pop()) {
    if (directories >= MAX_INDEXED_DIRECTORIES) {
      truncated = true;
      break;
    }
    let device: number;
    let entries;
    try {
      device = lstatSync(next.absolute).dev;
      entries = readdirSync(next.absolute, { withFileTypes: true });
    } catch {
      continue; // vanished or unreadable: its events are looked up when they come
    }
    directories += 1;
    onDirectory({ absolute: next.absolute, relative: next.relative, device });
    for (const entry of entries) {
      const relative = joinRelative(next.relative, entry.name);
      if (entry.isDirectory()) {
        stack.push({ absolute: join(next.absolute, entry.name), relative, never: next.never || NEVER_SOURCE_DIRS.has(entry.name) });
      } else if (!next.never && (entry.isFile() || entry.isSymbolicLink()) && files.length < MAX_SOURCE_FILES) {
        files.push(relative);
      }
    }
  }
  return { directories, truncated, files };
}

/** The tracked files (`git ls-files -z`), or null when the workspace is not in a git work tree (or git is missing). */
export function gitTrackedFiles(workspace: string): Promise<string[] | null> {
  return new Promise((resolve) => {
    // safe.directory: the agent runs as root over a checkout another user owns; git would refuse it.
    execFile(
      'git',
      ['-c', 'safe.directory=*', '-C', workspace, 'ls-files', '-z', '--cached'],
      { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, timeout: GIT_TIMEOUT_MS },
      (error, stdout) => resolve(error ? null : parseGitLsFiles(stdout)),
    );
  });
}

/** One read buffer for every hash: hashing is synchronous, so it is never shared by two at once. */
const chunk = Buffer.allocUnsafe(CHUNK_BYTES);

/**
 * What changes whenever the content at `absolute` could have: inode, size and
 * change time (which no unprivileged call can set back). Null when gone.
 */
export function stampPathSync(absolute: string): string | null {
  try {
    const stat = lstatSync(absolute, { bigint: true });
    return `${stat.ino}:${stat.size}:${stat.ctimeNs}`;
  } catch {
    return null;
  }
}

/** sha256 of what is at `absolute` now: a file's content, a symlink's target text; null when gone or neither. */
export function hashPathSync(absolute: string): string | null {
  try {
    const stat = lstatSync(absolute);
    if (stat.isSymbolicLink()) return createHash('sha256').update(readlinkSync(absolute)).digest('hex');
    if (!stat.isFile()) return null;
    const fd = openSync(absolute, 'r');
    try {
      const hash = createHash('sha256');
      for (let read = readSync(fd, chunk); read > 0; read = readSync(fd, chunk)) hash.update(chunk.subarray(0, read));
      return hash.digest('hex');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * Hashes the source files (relative paths). Synchronous reads are several
 * times faster than promise-based ones for small files; the loop yields
 * between slices so the DNS proxy on the same event loop keeps answering.
 */
export async function snapshotSource(workspace: string, paths: readonly string[], kind: TakenSnapshot['kind'], truncated: boolean): Promise<TakenSnapshot> {
  const started = performance.now();
  const sorted = [...new Set(paths)].sort();
  const hashes = new Map<string, string | null>();
  const stamps = new Map<string, string | null>();
  for (let i = 0; i < sorted.length; i += FILES_PER_SLICE) {
    for (const path of sorted.slice(i, i + FILES_PER_SLICE)) {
      // Stamp first: a change while hashing then shows as a changed stamp at the end.
      stamps.set(path, stampPathSync(join(workspace, path)));
      hashes.set(path, hashPathSync(join(workspace, path)));
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // A tracked path that is not a file (a submodule, a path deleted before the job) is not watched as source.
  const present = sorted.filter((path) => hashes.get(path) !== null);
  return { paths: present, hashes, stamps, kind, truncated, hashMs: performance.now() - started };
}
