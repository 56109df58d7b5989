/**
 * libc's fanotify and file-handle calls, declared for koffi: a sibling of
 * ffi.ts, kept apart so the file sensor's declarations load only when it runs.
 * Nothing here interprets results beyond turning -1 + errno into values.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { RunwallError } from '../../protocol/index.js';
import { sys, type SysResult } from './ffi.js';

export interface FanotifyLibc {
  fanotifyInit(flags: number, eventFlags: number): SysResult;
  fanotifyMark(fd: number, flags: number, mask: bigint, dirfd: number, path: string): SysResult;
  /** Reads into `into` in place; the value is the number of bytes read. */
  read(fd: number, into: Uint8Array): SysResult;
  open(path: string, flags: number): SysResult;
  close(fd: number): SysResult;
  /** Fills `handle` (a struct file_handle whose handle_bytes says its capacity). */
  nameToHandleAt(dirfd: number, path: string, handle: Uint8Array, flags: number): SysResult;
  openByHandleAt(mountFd: number, handle: Uint8Array, flags: number): SysResult;
  /** Fills `into` with a struct statfs (120 bytes on 64-bit Linux). */
  statfs(path: string, into: Uint8Array): SysResult;
}

// fanotify_init flags.
export const FAN_CLOEXEC = 0x1;
export const FAN_NONBLOCK = 0x2;
export const FAN_CLASS_NOTIF = 0x0;
export const FAN_UNLIMITED_QUEUE = 0x10;
export const FAN_REPORT_FID = 0x200;
export const FAN_REPORT_DIR_FID = 0x400;
export const FAN_REPORT_NAME = 0x800;
export const FAN_REPORT_TARGET_FID = 0x1000;
// fanotify_mark flags.
export const FAN_MARK_ADD = 0x1;
export const FAN_MARK_FILESYSTEM = 0x100;
// open(2) and *at(2) values (Linux, x86-64 and arm64 agree on these).
export const O_RDONLY = 0;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const AT_FDCWD = -100;
/** struct file_handle's largest payload (MAX_HANDLE_SZ). */
export const MAX_HANDLE_SZ = 128;
/** Offset of f_fsid in struct statfs on 64-bit Linux (seven 8-byte words precede it). */
export const STATFS_FSID_OFFSET = 56;
export const STATFS_SIZE = 120;

let cached: FanotifyLibc | undefined;

export function fanotifyLibc(): FanotifyLibc {
  if (cached) return cached;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (cause) {
    throw new RunwallError('RW_PLATFORM_MISSING', `cannot load libc.so.6: ${(cause as Error).message}`, {}, { cause });
  }
  const fanotifyInit = lib.func('int fanotify_init(unsigned int flags, unsigned int event_f_flags)');
  const fanotifyMark = lib.func('int fanotify_mark(int fd, unsigned int flags, uint64_t mask, int dirfd, const char *path)');
  const read = lib.func('intptr_t read(int fd, void *buf, size_t count)');
  const open = lib.func('int open(const char *path, int flags)');
  const close = lib.func('int close(int fd)');
  const nameToHandleAt = lib.func('int name_to_handle_at(int dirfd, const char *path, void *handle, _Out_ int *mount_id, int flags)');
  const openByHandleAt = lib.func('int open_by_handle_at(int mount_fd, void *handle, int flags)');
  const statfs = lib.func('int statfs(const char *path, void *buf)');
  cached = {
    fanotifyInit: (flags, eventFlags) => sys(fanotifyInit(flags, eventFlags)),
    fanotifyMark: (fd, flags, mask, dirfd, path) => sys(fanotifyMark(fd, flags, mask, dirfd, path)),
    read: (fd, into) => sys(read(fd, into, into.byteLength)),
    open: (path, flags) => sys(open(path, flags)),
    close: (fd) => sys(close(fd)),
    nameToHandleAt: (dirfd, path, handle, flags) => sys(nameToHandleAt(dirfd, path, handle, [0], flags)),
    openByHandleAt: (mountFd, handle, flags) => sys(openByHandleAt(mountFd, handle, flags)),
    statfs: (path, into) => sys(statfs(path, into)),
  };
  return cached;
}
