// The proc connector decoder: fork/exec/exit as the kernel sends them, and the exit status a shell would show.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeNetlinkFrame, splitNetlinkFrames } from '../../../src/agent/platform/netlink-frames.js';
import {
  PROC_CN_MCAST_LISTEN,
  decodeProcConnector,
  encodeProcSubscription,
  shellExitCode,
  type ProcEvent,
} from '../../../src/agent/platform/proc-connector-message.js';
import { procEventDatagram } from '../../helpers/proc-connector-encoder.js';

const pid = fc.integer({ min: 1, max: 4_194_304 });
const time = fc.integer({ min: 0, max: 2 ** 40 });
const procEvent: fc.Arbitrary<ProcEvent> = fc.oneof(
  fc.record({ kind: fc.constant('fork' as const), monotonicUs: time, parentPid: pid, parentTgid: pid, childPid: pid, childTgid: pid }),
  fc.record({ kind: fc.constant('exec' as const), monotonicUs: time, pid, tgid: pid }),
  fc.record({ kind: fc.constant('uid' as const), monotonicUs: time, pid, tgid: pid, ruid: fc.nat(65535), euid: fc.nat(65535) }),
  fc.record({ kind: fc.constant('ptrace' as const), monotonicUs: time, pid, tgid: pid, tracerPid: pid, tracerTgid: pid }),
  fc.record({ kind: fc.constant('comm' as const), monotonicUs: time, pid, tgid: pid, comm: fc.stringMatching(/^[a-z0-9._-]{0,15}$/) }),
  fc.record({ kind: fc.constant('exit' as const), monotonicUs: time, pid, tgid: pid, status: fc.nat(0xffff), exitSignal: fc.constantFrom(17, -1) }),
);

describe('proc connector messages', () => {
  it('a fork, an exec and an exit with its status', () => {
    const datagrams = [
      procEventDatagram({ kind: 'fork', monotonicUs: 1_000, parentPid: 10, parentTgid: 10, childPid: 11, childTgid: 11 }),
      procEventDatagram({ kind: 'exec', monotonicUs: 1_200, pid: 11, tgid: 11 }),
      procEventDatagram({ kind: 'exit', monotonicUs: 1_900, pid: 11, tgid: 11, status: 3 << 8, exitSignal: 17 }),
    ];
    const events = datagrams.flatMap((d) => decodeProcConnector(d).events);
    expect(events.map((e) => e.kind)).toEqual(['fork', 'exec', 'exit']);
    expect(events[2]).toMatchObject({ pid: 11, status: 768 });
    expect(shellExitCode(768)).toBe(3);
  });

  it('exit statuses read as a shell shows them: the code, or 128 + the signal', () => {
    expect(shellExitCode(0)).toBe(0);
    expect(shellExitCode(137 << 8)).toBe(137);
    expect(shellExitCode(9)).toBe(137); // SIGKILL
    expect(shellExitCode(0x80 | 11)).toBe(139); // SIGSEGV with a core
  });

  it('property: every event the kernel sends decodes to what was sent', () => {
    fc.assert(
      fc.property(procEvent, (event) => {
        const decoded = decodeProcConnector(procEventDatagram(event));
        expect(decoded.errors).toEqual([]);
        expect(decoded.events).toEqual([event]);
      }),
    );
  });

  it('property: any bytes decode or report errors, never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(() => decodeProcConnector(bytes)).not.toThrow();
        expect(() => decodeProcConnector(encodeNetlinkFrame(3, 0, 0, bytes))).not.toThrow();
      }),
    );
  });

  it('a message cut short is an error, not an event', () => {
    const whole = procEventDatagram({ kind: 'exec', monotonicUs: 5, pid: 1, tgid: 1 });
    const frame = splitNetlinkFrames(whole).frames[0]!;
    const decoded = decodeProcConnector(encodeNetlinkFrame(3, 0, 0, frame.payload.subarray(0, 30)));
    expect(decoded.events).toEqual([]);
    expect(decoded.errors.length).toBe(1);
  });

  it('the subscribe request is a connector message for CN_IDX_PROC with the LISTEN op', () => {
    const frame = splitNetlinkFrames(encodeProcSubscription(PROC_CN_MCAST_LISTEN, 0)).frames[0]!;
    const view = new DataView(frame.payload.buffer, frame.payload.byteOffset, frame.payload.byteLength);
    expect(frame.type).toBe(3);
    expect([view.getUint32(0, true), view.getUint32(4, true), view.getUint16(16, true), view.getUint32(20, true)]).toEqual([1, 1, 4, 1]);
  });
});

describe('netlink frames', () => {
  it('property: messages joined into one datagram split back into the same messages', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ type: fc.nat(0xffff), payload: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 10 }), (messages) => {
        const datagram = Buffer.concat(messages.map((m) => encodeNetlinkFrame(m.type, 0, 1, m.payload)));
        const { frames, error } = splitNetlinkFrames(datagram);
        expect(error).toBeNull();
        expect(frames.map((f) => ({ type: f.type, payload: Uint8Array.from(f.payload) }))).toEqual(messages.map((m) => ({ type: m.type, payload: Uint8Array.from(m.payload) })));
      }),
    );
  });
});
