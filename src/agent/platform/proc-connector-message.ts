/**
 * Pure decoding of proc connector messages (NETLINK_CONNECTOR, CN_IDX_PROC):
 * the kernel's own report of every fork, exec and exit, with host pids and a
 * monotonic timestamp, sent from the task itself, so none is missed while the
 * socket keeps up. Also encodes the subscribe request. No I/O: see proc-connector.ts.
 *
 * Layout (include/uapi/linux/connector.h, cn_proc.h), host byte order:
 *   nlmsghdr | cn_msg { u32 idx, u32 val, u32 seq, u32 ack, u16 len, u16 flags }
 *            | proc_event { u32 what, u32 cpu, u64 timestamp_ns, union event_data }
 */
import { HOST_LITTLE_ENDIAN, encodeNetlinkFrame, splitNetlinkFrames } from './netlink-frames.js';

export const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const NLMSG_DONE = 3;
const NLMSG_ERROR = 2;
const CN_MSG_LENGTH = 20;
const EVENT_DATA_AT = CN_MSG_LENGTH + 16;

export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;

export const PROC_EVENT = {
  NONE: 0x0,
  FORK: 0x1,
  EXEC: 0x2,
  UID: 0x4,
  GID: 0x40,
  SID: 0x80,
  PTRACE: 0x100,
  COMM: 0x200,
  COREDUMP: 0x40000000,
  EXIT: 0x80000000,
} as const;

interface Timed {
  /** Microseconds since boot (CLOCK_MONOTONIC), when the kernel sent it. */
  readonly monotonicUs: number;
}

export type ProcEvent =
  | (Timed & { readonly kind: 'fork'; readonly parentPid: number; readonly parentTgid: number; readonly childPid: number; readonly childTgid: number })
  | (Timed & { readonly kind: 'exec'; readonly pid: number; readonly tgid: number })
  | (Timed & { readonly kind: 'uid'; readonly pid: number; readonly tgid: number; readonly ruid: number; readonly euid: number })
  | (Timed & { readonly kind: 'ptrace'; readonly pid: number; readonly tgid: number; readonly tracerPid: number; readonly tracerTgid: number })
  | (Timed & { readonly kind: 'comm'; readonly pid: number; readonly tgid: number; readonly comm: string })
  | (Timed & {
      readonly kind: 'exit';
      readonly pid: number;
      readonly tgid: number;
      /** The raw wait status: (code << 8) for exit(code), the signal number (| 0x80 with a core) when killed. */
      readonly status: number;
      readonly exitSignal: number;
    })
  /** The kernel's answer to a subscribe request: 0 or an errno. */
  | (Timed & { readonly kind: 'ack'; readonly error: number });

export interface ProcDecoded {
  readonly events: ProcEvent[];
  readonly errors: string[];
}

/** Decodes one datagram. Total: anything unreadable becomes an entry in `errors`. */
export function decodeProcConnector(datagram: Uint8Array): ProcDecoded {
  const { frames, error } = splitNetlinkFrames(datagram);
  const events: ProcEvent[] = [];
  const errors: string[] = error ? [error] : [];
  for (const frame of frames) {
    if (frame.type === NLMSG_ERROR) {
      const view = new DataView(frame.payload.buffer, frame.payload.byteOffset, frame.payload.byteLength);
      const status = frame.payload.byteLength >= 4 ? view.getInt32(0, HOST_LITTLE_ENDIAN) : 0;
      if (status !== 0) errors.push(`netlink error ${status} on the proc connector`);
      continue;
    }
    if (frame.type !== NLMSG_DONE) continue;
    const decoded = decodeProcEvent(frame.payload);
    if (typeof decoded === 'string') errors.push(decoded);
    else if (decoded) events.push(decoded);
  }
  return { events, errors };
}

/** One cn_msg + proc_event; null for events runwall does not use, a string for a malformed message. */
function decodeProcEvent(payload: Uint8Array): ProcEvent | null | string {
  if (payload.byteLength < EVENT_DATA_AT) return `a ${payload.byteLength}-byte connector message is shorter than its headers`;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const u32 = (at: number): number => view.getUint32(at, HOST_LITTLE_ENDIAN);
  if (u32(0) !== CN_IDX_PROC || u32(4) !== CN_VAL_PROC) return null; // another connector's message
  const declared = view.getUint16(16, HOST_LITTLE_ENDIAN);
  if (CN_MSG_LENGTH + declared > payload.byteLength) return `a connector message declares ${declared} data bytes, ${payload.byteLength - CN_MSG_LENGTH} arrived`;
  const what = u32(CN_MSG_LENGTH);
  const monotonicUs = Number(view.getBigUint64(CN_MSG_LENGTH + 8, HOST_LITTLE_ENDIAN) / 1000n);
  const data = (index: number): number => u32(EVENT_DATA_AT + index * 4);
  const need = (words: number): boolean => EVENT_DATA_AT + words * 4 <= payload.byteLength;
  const short = (name: string): string => `a proc connector ${name} event is too short`;
  switch (what) {
    case PROC_EVENT.NONE:
      return need(1) ? { kind: 'ack', monotonicUs, error: data(0) } : short('ack');
    case PROC_EVENT.FORK:
      return need(4) ? { kind: 'fork', monotonicUs, parentPid: data(0), parentTgid: data(1), childPid: data(2), childTgid: data(3) } : short('fork');
    case PROC_EVENT.EXEC:
      return need(2) ? { kind: 'exec', monotonicUs, pid: data(0), tgid: data(1) } : short('exec');
    case PROC_EVENT.UID:
      return need(4) ? { kind: 'uid', monotonicUs, pid: data(0), tgid: data(1), ruid: data(2), euid: data(3) } : short('uid');
    case PROC_EVENT.PTRACE:
      return need(4) ? { kind: 'ptrace', monotonicUs, pid: data(0), tgid: data(1), tracerPid: data(2), tracerTgid: data(3) } : short('ptrace');
    case PROC_EVENT.COMM: {
      if (!need(2 + 4)) return short('comm');
      const raw = payload.subarray(EVENT_DATA_AT + 8, Math.min(EVENT_DATA_AT + 24, payload.byteLength));
      const end = raw.indexOf(0);
      return { kind: 'comm', monotonicUs, pid: data(0), tgid: data(1), comm: new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end)) };
    }
    case PROC_EVENT.EXIT:
      return need(4) ? { kind: 'exit', monotonicUs, pid: data(0), tgid: data(1), status: data(2), exitSignal: view.getInt32(EVENT_DATA_AT + 12, HOST_LITTLE_ENDIAN) } : short('exit');
    default:
      return null;
  }
}

/**
 * A wait status as a shell reports it: the exit code, or 128 + N when signal N
 * ended the process.
 */
export function shellExitCode(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

/** The subscribe (LISTEN) or unsubscribe (IGNORE) request. */
export function encodeProcSubscription(op: typeof PROC_CN_MCAST_LISTEN | typeof PROC_CN_MCAST_IGNORE, portId: number): Uint8Array {
  const payload = new Uint8Array(CN_MSG_LENGTH + 4);
  const view = new DataView(payload.buffer);
  view.setUint32(0, CN_IDX_PROC, HOST_LITTLE_ENDIAN);
  view.setUint32(4, CN_VAL_PROC, HOST_LITTLE_ENDIAN);
  view.setUint16(16, 4, HOST_LITTLE_ENDIAN);
  view.setUint32(CN_MSG_LENGTH, op, HOST_LITTLE_ENDIAN);
  return encodeNetlinkFrame(NLMSG_DONE, 0, 0, payload, portId);
}
