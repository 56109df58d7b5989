/**
 * A fanotify group in FID mode with filesystem marks, read from the Node event
 * loop through a libuv poll watcher (nothing blocks while waiting, as the
 * NFLOG reader does). FID mode names every change by directory handle + entry
 * name and by the object's own handle, never by an open fd, so a file that is
 * already gone is still reported and nothing is held open. The queue is
 * unlimited (root), so the kernel drops nothing unless memory runs out; an
 * overflow is still counted and reported, never silent.
 *
 * Filesystem marks are needed because a mount mark cannot report create,
 * delete or rename; the caller filters events to the tree it watches.
 * Decoding is fanotify-event.ts (pure).
 */
import { readlinkSync } from 'node:fs';
import { RunwallError } from '../../protocol/index.js';
import { watchReadable, type FdWatcher } from './ffi.js';
import {
  AT_FDCWD,
  FAN_CLASS_NOTIF,
  FAN_CLOEXEC,
  FAN_MARK_ADD,
  FAN_MARK_FILESYSTEM,
  FAN_NONBLOCK,
  FAN_REPORT_DIR_FID,
  FAN_REPORT_FID,
  FAN_REPORT_NAME,
  FAN_REPORT_TARGET_FID,
  FAN_UNLIMITED_QUEUE,
  MAX_HANDLE_SZ,
  O_CLOEXEC,
  O_DIRECTORY,
  O_LARGEFILE,
  O_PATH,
  O_RDONLY,
  STATFS_FSID_OFFSET,
  STATFS_SIZE,
  fanotifyLibc,
  type FanotifyLibc,
} from './fanotify-ffi.js';
import {
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_DELETE,
  FAN_MODIFY,
  FAN_ONDIR,
  FAN_RENAME,
  decodeFanotifyEvents,
  handleKey,
  type FanotifyDecoded,
} from './fanotify-event.js';

/** What the file sensor asks for: entries created, deleted, renamed; content modified; files closed after writing. */
export const FILE_CHANGE_MASK = FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ONDIR;

/** Room for many events per read; the kernel never splits one event across reads. */
const READ_BUFFER_BYTES = 256 * 1024;
/** Reads per readiness callback, so a flood cannot starve the event loop (poll is level-triggered). */
const READS_PER_WAKEUP = 16;
/** Reads a final drain may take, so a machine that never stops writing cannot hold shutdown. */
const MAX_DRAIN_READS = 4096;

export class FanotifyGroup {
  private closed = false;
  private watcher: FdWatcher | null = null;
  private readonly buffer = new Uint8Array(READ_BUFFER_BYTES);
  private readonly mountFds = new Map<string, number>();

  private constructor(
    private readonly lib: FanotifyLibc,
    private readonly fd: number,
    private readonly onBatch: (batch: FanotifyDecoded) => void,
    private readonly onError: (message: string) => void,
  ) {}

  /**
   * Opens a group (needs CAP_SYS_ADMIN). RW_NOT_ROOT without the capability;
   * RW_PLATFORM_MISSING when the kernel lacks fanotify or FID reporting (before 5.17).
   */
  static open(onBatch: (batch: FanotifyDecoded) => void, onError: (message: string) => void): FanotifyGroup {
    const lib = fanotifyLibc();
    const flags =
      FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_NOTIF | FAN_UNLIMITED_QUEUE | FAN_REPORT_FID | FAN_REPORT_DIR_FID | FAN_REPORT_NAME | FAN_REPORT_TARGET_FID;
    const opened = lib.fanotifyInit(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (!opened.ok) {
      if (opened.errnoName === 'EPERM') throw new RunwallError('RW_NOT_ROOT', 'fanotify needs CAP_SYS_ADMIN (run as root)');
      if (opened.errnoName === 'ENOSYS' || opened.errnoName === 'EINVAL') {
        throw new RunwallError('RW_PLATFORM_MISSING', `the kernel has no fanotify with FID reporting (fanotify_init: ${opened.errnoName}; needs Linux 5.17 or later)`);
      }
      throw new RunwallError('RW_SETUP_FAILED', `fanotify_init failed: ${opened.errnoName}`);
    }
    const group = new FanotifyGroup(lib, opened.value, onBatch, onError);
    group.watcher = watchReadable(opened.value, (pollError) => {
      if (pollError !== null) group.report(`fanotify: ${pollError}`);
      else group.read(READS_PER_WAKEUP);
    });
    return group;
  }

  /**
   * Watches the whole filesystem that holds `path`, and keeps a descriptor on
   * it so handles on that filesystem can be turned back into paths.
   * RW_PLATFORM_MISSING when the filesystem cannot report file handles
   * (some FUSE and network filesystems).
   */
  markFilesystem(path: string): void {
    const marked = this.lib.fanotifyMark(this.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, BigInt(FILE_CHANGE_MASK), AT_FDCWD, path);
    if (!marked.ok) {
      const unsupported = marked.errnoName === 'ENODEV' || marked.errnoName === 'EXDEV' || marked.errnoName === 'EOPNOTSUPP' || marked.errnoName === 'EINVAL';
      throw new RunwallError(
        unsupported ? 'RW_PLATFORM_MISSING' : 'RW_SETUP_FAILED',
        unsupported
          ? `the filesystem of ${path} cannot be watched by fanotify in FID mode (${marked.errnoName}): it reports no file handles`
          : `fanotify_mark on ${path} failed: ${marked.errnoName}`,
        { path },
      );
    }
    const fsid = filesystemId(this.lib, path);
    if (fsid !== null && !this.mountFds.has(fsid)) {
      // Not O_PATH: open_by_handle_at refuses an O_PATH descriptor (EBADF).
      const mount = this.lib.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (mount.ok) this.mountFds.set(fsid, mount.value);
    }
  }

  /**
   * The current path of an object named by a handle key, or null when it is
   * gone (ESTALE) or on a filesystem this group does not watch. A syscall and
   * a readlink: callers cache.
   */
  pathOfHandle(key: string): string | null {
    const parsed = parseHandleKey(key);
    const mountFd = parsed ? this.mountFds.get(parsed.fsid) : undefined;
    if (!parsed || mountFd === undefined) return null;
    const handle = new Uint8Array(8 + parsed.bytes.length);
    const view = new DataView(handle.buffer);
    view.setUint32(0, parsed.bytes.length, true);
    view.setInt32(4, parsed.type, true);
    handle.set(parsed.bytes, 8);
    const opened = this.lib.openByHandleAt(mountFd, handle, O_PATH | O_CLOEXEC);
    if (!opened.ok) return null;
    try {
      const path = readlinkSync(`/proc/self/fd/${opened.value}`);
      return path.endsWith(' (deleted)') || !path.startsWith('/') ? null : path;
    } catch {
      return null;
    } finally {
      this.lib.close(opened.value);
    }
  }

  /** Reads and delivers everything queued now; call after the writers have stopped, before close(). */
  drain(): void {
    this.read(MAX_DRAIN_READS);
  }

  /** Stops reading and removes every mark (closing the group does). Immediate. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // libuv must stop watching the fd before it is closed.
    this.watcher?.close();
    this.watcher = null;
    this.lib.close(this.fd);
    for (const fd of this.mountFds.values()) this.lib.close(fd);
    this.mountFds.clear();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private read(limit: number): void {
    for (let i = 0; i < limit && !this.closed; i++) {
      const received = this.lib.read(this.fd, this.buffer);
      if (!received.ok) {
        if (received.errnoName === 'EAGAIN' || received.errnoName === 'EWOULDBLOCK') return;
        if (received.errnoName === 'EINTR') continue;
        this.report(`fanotify read failed: ${received.errnoName}`);
        return;
      }
      if (received.value === 0) return;
      const decoded = decodeFanotifyEvents(this.buffer.subarray(0, received.value));
      try {
        this.onBatch(decoded);
      } catch (error) {
        this.report(`the fanotify batch handler threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private report(message: string): void {
    try {
      this.onError(message);
    } catch {
      // An error handler that throws has nowhere further to report to; keep reading.
    }
  }
}

/** fsid of the filesystem holding `path`, as the hex the decoder puts first in a handle key. */
function filesystemId(lib: FanotifyLibc, path: string): string | null {
  const buffer = new Uint8Array(STATFS_SIZE);
  const done = lib.statfs(path, buffer);
  if (!done.ok) return null;
  return Buffer.from(buffer.subarray(STATFS_FSID_OFFSET, STATFS_FSID_OFFSET + 8)).toString('hex');
}

function parseHandleKey(key: string): { fsid: string; type: number; bytes: Uint8Array } | null {
  const [fsid, type, bytes] = key.split('.');
  if (fsid === undefined || type === undefined || bytes === undefined || type.length !== 8) return null;
  return { fsid, type: Buffer.from(type, 'hex').readInt32LE(0), bytes: Uint8Array.from(Buffer.from(bytes, 'hex')) };
}

/** fsid of the filesystem holding `path` (hex, as handle keys start), or null. One statfs: cache it per device. */
export function filesystemIdOf(path: string): string | null {
  return filesystemId(fanotifyLibc(), path);
}

/**
 * The handle key of `path` itself (not following a final symlink), as events
 * name it, given its filesystem's id; null when the path is gone or its
 * filesystem gives no handles. Throws nothing: a tree walk calls it for every directory.
 */
export function handleKeyOfPath(path: string, fsid: string): string | null {
  const handle = new Uint8Array(8 + MAX_HANDLE_SZ);
  const view = new DataView(handle.buffer);
  view.setUint32(0, MAX_HANDLE_SZ, true);
  // Flags 0: name_to_handle_at does not follow a final symlink unless asked to.
  const done = fanotifyLibc().nameToHandleAt(AT_FDCWD, path, handle, 0);
  if (!done.ok) return null;
  const length = view.getUint32(0, true);
  return handleKey(Uint8Array.from(Buffer.from(fsid, 'hex')), view.getInt32(4, true), handle.subarray(8, 8 + length));
}
