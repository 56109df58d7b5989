// Writes proc connector messages as the kernel does (drivers/connector/cn_proc.c), for the decoder's tests.
import { encodeNetlinkFrame } from '../../src/agent/platform/netlink-frames.js';
import { PROC_EVENT, type ProcEvent } from '../../src/agent/platform/proc-connector-message.js';

const WHAT: Record<ProcEvent['kind'], number> = {
  ack: PROC_EVENT.NONE,
  fork: PROC_EVENT.FORK,
  exec: PROC_EVENT.EXEC,
  uid: PROC_EVENT.UID,
  ptrace: PROC_EVENT.PTRACE,
  comm: PROC_EVENT.COMM,
  exit: PROC_EVENT.EXIT,
};

/** One datagram holding one proc_event (24 data bytes, as the kernel's union is sized). */
export function procEventDatagram(event: ProcEvent): Uint8Array {
  const data = Buffer.alloc(24);
  const words = (values: number[]) => values.forEach((v, i) => data.writeUInt32LE(v >>> 0, i * 4));
  switch (event.kind) {
    case 'ack':
      words([event.error]);
      break;
    case 'fork':
      words([event.parentPid, event.parentTgid, event.childPid, event.childTgid]);
      break;
    case 'exec':
      words([event.pid, event.tgid]);
      break;
    case 'uid':
      words([event.pid, event.tgid, event.ruid, event.euid]);
      break;
    case 'ptrace':
      words([event.pid, event.tgid, event.tracerPid, event.tracerTgid]);
      break;
    case 'comm':
      words([event.pid, event.tgid]);
      Buffer.from(event.comm).copy(data, 8, 0, 15);
      break;
    case 'exit':
      words([event.pid, event.tgid, event.status, event.exitSignal, 0, 0]);
      break;
  }
  const body = Buffer.alloc(20 + 16 + data.length);
  body.writeUInt32LE(1, 0); // CN_IDX_PROC
  body.writeUInt32LE(1, 4); // CN_VAL_PROC
  body.writeUInt16LE(16 + data.length, 16);
  body.writeUInt32LE(WHAT[event.kind] >>> 0, 20);
  body.writeUInt32LE(0, 24);
  body.writeBigUInt64LE(BigInt(event.monotonicUs) * 1000n, 28);
  data.copy(body, 36);
  return encodeNetlinkFrame(3, 0, 0, body);
}
