/**
 * Every foreign-function declaration runwall makes, in one place: libc's socket
 * calls (netlink) and libnftables. Nothing here interprets results beyond
 * turning C conventions (-1 + errno, NULL) into values; callers decide what an
 * error means. Libraries are loaded on first use, once per thread.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { RunwallError } from '../../protocol/index.js';

/** An opaque C pointer as koffi 3 hands it back. */
export type NativePointer = bigint;

/** The result of a libc call that sets errno: the value, or the errno name and number. */
export type SysResult = { ok: true; value: number } | { ok: false; errno: number; errnoName: string };

export interface Libc {
  socket(domain: number, type: number, protocol: number): SysResult;
  bind(fd: number, address: Uint8Array): SysResult;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): SysResult;
  send(fd: number, data: Uint8Array, flags: number): SysResult;
  /** Reads into `into` in place; the value is the datagram's length (with MSG_TRUNC, its full length). */
  recv(fd: number, into: Uint8Array, flags: number): SysResult;
  close(fd: number): SysResult;
  /** flock(2) on a descriptor Node opened: advisory, released when the process dies. */
  flock(fd: number, operation: number): SysResult;
  /** glibc's mallopt(3): 1 when the setting was taken, 0 when refused. */
  mallopt(parameter: number, value: number): number;
}

export interface Libnftables {
  ctxNew(flags: number): NativePointer | null;
  ctxFree(ctx: NativePointer): void;
  bufferOutput(ctx: NativePointer): number;
  bufferError(ctx: NativePointer): number;
  getOutputBuffer(ctx: NativePointer): string;
  getErrorBuffer(ctx: NativePointer): string;
  outputGetFlags(ctx: NativePointer): number;
  outputSetFlags(ctx: NativePointer, flags: number): void;
  runCmdFromBuffer(ctx: NativePointer, commands: string): number;
}

/** A libuv poll watcher on the Node event loop: readiness without a thread. */
export interface FdWatcher {
  close(): void;
}

// libc constants (Linux, every architecture runwall supports).
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_NETFILTER = 12;
export const SOL_SOCKET = 1;
export const SOL_NETLINK = 270;
/** Refusals carry only the refused message's header, not the whole message. */
export const NETLINK_CAP_ACK = 10;
/** Refusals say which attribute was refused (and why, when the kernel has words for it). */
export const NETLINK_EXT_ACK = 11;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const NFT_CTX_OUTPUT_JSON = 1 << 4;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

const ERRNO_NAMES = new Map<number, string>(Object.entries(koffi.os.errno).map(([name, value]) => [value, name]));

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A libc return value as a SysResult (negative: failure, with errno). */
export function sys(value: number | bigint): SysResult {
  const n = Number(value);
  if (n >= 0) return { ok: true, value: n };
  const errno = koffi.errno();
  return { ok: false, errno, errnoName: errnoName(errno) };
}

let libcCache: Libc | undefined;

export function libc(): Libc {
  if (libcCache) return libcCache;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (cause) {
    throw new RunwallError('RW_PLATFORM_MISSING', `cannot load libc.so.6: ${(cause as Error).message}`, {}, { cause });
  }
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const bind = lib.func('int bind(int fd, const void *addr, uint32_t len)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
  const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
  const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
  const close = lib.func('int close(int fd)');
  const flock = lib.func('int flock(int fd, int operation)');
  const mallopt = lib.func('int mallopt(int param, int value)');
  libcCache = {
    socket: (domain, type, protocol) => sys(socket(domain, type, protocol)),
    bind: (fd, address) => sys(bind(fd, address, address.byteLength)),
    setsockopt: (fd, level, name, value) => sys(setsockopt(fd, level, name, value, value.byteLength)),
    send: (fd, data, flags) => sys(send(fd, data, data.byteLength, flags)),
    recv: (fd, into, flags) => sys(recv(fd, into, into.byteLength, flags)),
    close: (fd) => sys(close(fd)),
    flock: (fd, operation) => sys(flock(fd, operation)),
    mallopt: (parameter, value) => mallopt(parameter, value) as number,
  };
  return libcCache;
}

const libnftablesCache = new Map<string, Libnftables>();
let nftCtxDeclared = false;

/** Loads libnftables (Debian: package libnftables1). RW_PLATFORM_MISSING when it is not installed. */
export function libnftables(path = 'libnftables.so.1'): Libnftables {
  const cached = libnftablesCache.get(path);
  if (cached) return cached;
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (cause) {
    throw new RunwallError(
      'RW_PLATFORM_MISSING',
      `cannot load ${path} (install nftables / libnftables1): ${(cause as Error).message}`,
      { library: path },
      { cause },
    );
  }
  nftCtxDeclared ||= (koffi.opaque('nft_ctx'), true); // a type name may be declared once per thread
  const ctxNew = lib.func('nft_ctx *nft_ctx_new(uint32_t flags)');
  const ctxFree = lib.func('void nft_ctx_free(nft_ctx *ctx)');
  const bufferOutput = lib.func('int nft_ctx_buffer_output(nft_ctx *ctx)');
  const bufferError = lib.func('int nft_ctx_buffer_error(nft_ctx *ctx)');
  const getOutputBuffer = lib.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)');
  const getErrorBuffer = lib.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)');
  const outputGetFlags = lib.func('unsigned int nft_ctx_output_get_flags(nft_ctx *ctx)');
  const outputSetFlags = lib.func('void nft_ctx_output_set_flags(nft_ctx *ctx, unsigned int flags)');
  const runCmdFromBuffer = lib.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)');
  const api: Libnftables = {
    ctxNew: (flags) => (ctxNew(flags) as NativePointer | null) || null,
    ctxFree: (ctx) => void ctxFree(ctx),
    bufferOutput: (ctx) => bufferOutput(ctx) as number,
    bufferError: (ctx) => bufferError(ctx) as number,
    getOutputBuffer: (ctx) => (getOutputBuffer(ctx) as string | null) ?? '',
    getErrorBuffer: (ctx) => (getErrorBuffer(ctx) as string | null) ?? '',
    outputGetFlags: (ctx) => outputGetFlags(ctx) as number,
    outputSetFlags: (ctx, flags) => void outputSetFlags(ctx, flags),
    runCmdFromBuffer: (ctx, commands) => runCmdFromBuffer(ctx, commands) as number,
  };
  libnftablesCache.set(path, api);
  return api;
}

/**
 * Calls `onReadable` whenever `fd` has data, from the Node event loop (libuv
 * poll). No thread is held while waiting, so neither the libuv pool nor
 * shutdown is blocked by an idle socket.
 */
export function watchReadable(fd: number, onReadable: (error: string | null) => void): FdWatcher {
  // koffi's poll callback receives (status, events); its .d.ts declares only events.
  type PollCallback = Parameters<typeof koffi.node.poll>[1];
  const callback = ((status: number) =>
    onReadable(status < 0 ? `libuv poll status ${status}` : null)) as unknown as PollCallback;
  const handle = koffi.node.poll(fd, callback); // readable only, by default
  return { close: () => handle.close() };
}
