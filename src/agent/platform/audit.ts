/**
 * Linux audit, used read-only beside whatever else uses it: runwall adds its
 * own keyed syscall rules (`runwall-<pid>-process-<n>`), reads the multicast copy of the
 * records (coexists with auditd, never registers as the audit daemon), and
 * removes its rules at the end. Rules that a killed runwall left behind are
 * removed by the next one. Decoding is audit-message.ts (pure).
 *
 * Side effects on the machine, by design: audit is switched on if it was off
 * (and off again when the last runwall rule goes and no audit daemon runs),
 * and the kernel backlog is raised (never lowered) so bursts of execs are not
 * dropped. Without an audit daemon the kernel also prints records to its log,
 * rate-limited.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunwallError } from '../../protocol/index.js';
import {
  AUDIT_ADD_RULE,
  AUDIT_ARCH,
  AUDIT_DEL_RULE,
  AUDIT_GET,
  AUDIT_LIST_RULES,
  AUDIT_NLGRP_READLOG,
  AUDIT_RECORD,
  AuditAssembler,
  decodeAuditRuleKey,
  decodeAuditStatus,
  encodeAuditGet,
  encodeAuditListRules,
  encodeAuditRule,
  encodeAuditRuleRequest,
  encodeAuditSet,
  interpretAuditEvent,
  parseAuditRecord,
  runwallAuditRules,
  type AuditActivity,
  type AuditRecord,
  type AuditStatus,
} from './audit-message.js';
import { errnoName } from './ffi.js';
import { splitNetlinkFrames } from './netlink-frames.js';
import { NETLINK_AUDIT, NetlinkSocket, type NetlinkReadProblem } from './netlink-socket.js';

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const REPLY_WAIT_MS = 2000;
const REPLY_POLL_MS = 2;
/** Records queued in the kernel before it drops (or, with a backlog wait, stalls the caller). */
export const AUDIT_BACKLOG = 8192;
let streamCount = 0;
const LATIN1 = new TextDecoder('latin1');
/** The records an exec or a socket call is read from (see interpretAuditEvent), and the end of an event. */
const RECORDS_READ: ReadonlySet<number> = new Set([AUDIT_RECORD.SYSCALL, AUDIT_RECORD.EXECVE, AUDIT_RECORD.CWD, AUDIT_RECORD.SOCKADDR, AUDIT_RECORD.EOE]);

/** Any runwall rule (`runwall-<pid>` and keys that extend it): its pid says whose. */
export const RUNWALL_RULE_KEY = /^runwall-(\d+)(?:-|$)/;
/** An event without its end record is completed after this long (records of one event arrive together). */
const OPEN_EVENT_MAX_AGE_MS = 2000;

export function auditArch(): number {
  switch (process.arch) {
    case 'x64':
      return AUDIT_ARCH.X86_64;
    case 'arm64':
      return AUDIT_ARCH.AARCH64;
    default:
      throw new RunwallError('RW_PLATFORM_MISSING', `runwall's audit rules know no syscall numbers for ${process.arch}`);
  }
}

/** The unicast control connection: status and rules (every runwall audit user shares this). */
export class AuditControl {
  #sequence = 100;

  private constructor(private readonly socket: NetlinkSocket) {}

  static open(): AuditControl {
    return new AuditControl(NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 0, initialNetns: false, receiveBufferBytes: 1 << 20, datagramsPerWakeup: 64, name: 'audit control' }));
  }

  async close(): Promise<void> {
    await this.socket.close();
  }

  /**
   * Sends a request and collects its replies: until the ack (requests with an
   * ack) or NLMSG_DONE (dumps). The kernel answers some requests from a
   * worker thread, so replies may follow the ack: they are waited for, bounded.
   */
  async #request(build: (sequence: number) => Uint8Array, until: 'ack' | 'ack+reply' | 'done'): Promise<{ status: number; replies: { type: number; payload: Uint8Array }[] }> {
    const sequence = ++this.#sequence;
    while (this.socket.receiveNow() !== null); // stale replies of an earlier, timed-out request
    this.socket.send(build(sequence));
    const replies: { type: number; payload: Uint8Array }[] = [];
    let status: number | null = null;
    const deadline = Date.now() + REPLY_WAIT_MS;
    while (Date.now() < deadline) {
      const datagram = this.socket.receiveNow();
      if (datagram === null) {
        await sleep(REPLY_POLL_MS);
        continue;
      }
      for (const frame of splitNetlinkFrames(datagram).frames) {
        if (frame.sequence !== sequence) continue;
        if (frame.type === NLMSG_ERROR) {
          status = new DataView(frame.payload.buffer, frame.payload.byteOffset, frame.payload.byteLength).getInt32(0, true);
          if (status !== 0) return { status, replies };
        } else if (frame.type === NLMSG_DONE) {
          return { status: 0, replies };
        } else {
          replies.push({ type: frame.type, payload: frame.payload.slice() });
        }
      }
      if (until === 'ack' && status !== null) return { status, replies };
      if (until === 'ack+reply' && status !== null && replies.length > 0) return { status, replies };
    }
    throw new RunwallError('RW_SETUP_FAILED', 'the kernel did not answer an audit request in time');
  }

  async status(): Promise<AuditStatus> {
    const { status, replies } = await this.#request(encodeAuditGet, 'ack+reply');
    const reply = replies.find((r) => r.type === AUDIT_GET);
    const decoded = reply ? decodeAuditStatus(reply.payload) : null;
    if (status !== 0 || !decoded) throw failure('reading the audit status', status);
    return decoded;
  }

  async set(change: { enabled?: 0 | 1; backlogLimit?: number }): Promise<void> {
    const { status } = await this.#request((sequence) => encodeAuditSet(change, sequence), 'ack');
    if (status !== 0) throw failure('changing the audit status', status);
  }

  /** Adds a rule; an identical rule already there counts as added. */
  async addRule(rule: Uint8Array): Promise<void> {
    const { status } = await this.#request((sequence) => encodeAuditRuleRequest(AUDIT_ADD_RULE, rule, sequence), 'ack');
    if (status !== 0 && errnoName(-status) !== 'EEXIST') throw failure('adding an audit rule', status);
  }

  /** Deletes a rule; one already gone counts as deleted. */
  async deleteRule(rule: Uint8Array): Promise<void> {
    const { status } = await this.#request((sequence) => encodeAuditRuleRequest(AUDIT_DEL_RULE, rule, sequence), 'ack');
    if (status !== 0 && errnoName(-status) !== 'ENOENT') throw failure('deleting an audit rule', status);
  }

  /** Every rule with its key, as the kernel lists it (the payload can be sent back to delete it). */
  async listRules(): Promise<{ key: string | null; rule: Uint8Array }[]> {
    const { status, replies } = await this.#request(encodeAuditListRules, 'done');
    if (status !== 0) throw failure('listing audit rules', status);
    return replies.filter((r) => r.type === AUDIT_LIST_RULES).map((r) => ({ key: decodeAuditRuleKey(r.payload), rule: r.payload }));
  }
}

function failure(what: string, status: number): RunwallError {
  const name = errnoName(-status);
  const hint = name === 'EPERM' ? ' (the audit configuration is locked, or runwall lacks CAP_AUDIT_CONTROL)' : '';
  return new RunwallError('RW_AUDIT_UNAVAILABLE', `${what} failed: ${name}${hint}`, { errno: name });
}

export interface AuditStreamProblem {
  readonly code: 'RW_PROCESS_EVENTS_LOST' | 'RW_INTERNAL';
  readonly message: string;
}

/**
 * runwall's audit rules and the multicast reader of their records. open()
 * installs the rules; close() removes them and restores what it changed.
 */
export class AuditStream {
  readonly #assembler = new AuditAssembler();
  #enabledByUs = false;
  #latestRecordMs = 0;

  private constructor(
    private readonly control: AuditControl,
    private readonly reader: NetlinkSocket,
    private readonly rules: readonly Uint8Array[],
    readonly key: string,
    private readonly onActivity: (activity: AuditActivity) => void,
    private readonly onProblem: (problem: AuditStreamProblem) => void,
  ) {}

  /**
   * RW_PLATFORM_MISSING without audit in the kernel; RW_AUDIT_UNAVAILABLE when
   * the kernel refuses (locked configuration, missing capability); then nothing
   * is left installed.
   */
  static async open(onActivity: (activity: AuditActivity) => void, onProblem: (problem: AuditStreamProblem) => void): Promise<AuditStream> {
    // One key per stream: two streams in one process (tests, the bench) must not delete each other's rules.
    const key = `runwall-${process.pid}-process-${++streamCount}`;
    const rules = runwallAuditRules(auditArch(), key, process.pid).map(encodeAuditRule);
    const control = AuditControl.open();
    let reader: NetlinkSocket | null = null;
    let stream: AuditStream | null = null;
    try {
      const status = await control.status();
      if (status.enabled === 2) throw new RunwallError('RW_AUDIT_UNAVAILABLE', 'the audit configuration is locked (enabled=2): no rules can be added until reboot');
      await removeStaleRules(control);
      // Readers first, then rules: the first records must not be missed.
      reader = NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 1 << (AUDIT_NLGRP_READLOG - 1), initialNetns: true, receiveBufferBytes: 16 << 20, datagramsPerWakeup: 512, name: 'audit' });
      stream = new AuditStream(control, reader, rules, key, onActivity, onProblem);
      if (status.backlogLimit !== 0 && status.backlogLimit < AUDIT_BACKLOG) await control.set({ backlogLimit: AUDIT_BACKLOG });
      if (status.enabled === 0) {
        await control.set({ enabled: 1 });
        stream.#enabledByUs = true;
      }
      reader.start(
        (datagram) => stream!.#onDatagram(datagram),
        (problem: NetlinkReadProblem) => onProblem({ code: problem.lost ? 'RW_PROCESS_EVENTS_LOST' : 'RW_INTERNAL', message: problem.message }),
      );
      for (const rule of rules) await control.addRule(rule);
      return stream;
    } catch (error) {
      if (stream) await stream.close().catch(() => undefined);
      else {
        await reader?.close();
        await control.close();
      }
      throw error;
    }
  }

  /**
   * The latest syscall time among the records read so far. Records are queued
   * in the order their syscalls returned, so once it is well past a moment, the
   * records of calls made before that moment have come.
   */
  get latestRecordMs(): number {
    return this.#latestRecordMs;
  }

  /** Reads and delivers every record queued now: attribution calls this before it looks. */
  drainNow(): void {
    this.reader.drain();
    for (const records of this.#assembler.expire(Date.now(), OPEN_EVENT_MAX_AGE_MS)) this.#deliver(records);
  }

  #onDatagram(datagram: Uint8Array): void {
    const now = Date.now();
    for (const frame of splitNetlinkFrames(datagram).frames) {
      if (!RECORDS_READ.has(frame.type)) continue; // PATH, PROCTITLE (long), other subsystems' records: not needed
      const record = parseAuditRecord(frame.type, LATIN1.decode(frame.payload));
      if (!record) continue;
      if (record.timeMs > this.#latestRecordMs) this.#latestRecordMs = record.timeMs;
      for (const records of this.#assembler.add(record, now)) this.#deliver(records);
    }
  }

  #deliver(records: readonly AuditRecord[]): void {
    const activity = interpretAuditEvent(records);
    if (!activity) return;
    try {
      this.onActivity(activity);
    } catch (error) {
      this.onProblem({ code: 'RW_INTERNAL', message: `audit: the activity handler threw: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  /** Removes runwall's rules, reads what is still queued, restores audit's switch if runwall turned it on. */
  async close(): Promise<void> {
    const failures: string[] = [];
    for (const rule of this.rules) {
      await this.control.deleteRule(rule).catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    }
    this.drainNow();
    await this.reader.close();
    if (this.#enabledByUs) {
      try {
        const others = (await this.control.listRules()).filter((r) => r.key !== null && RUNWALL_RULE_KEY.test(r.key));
        const status = await this.control.status();
        // Another runwall (or an audit daemon) still needs audit on.
        if (others.length === 0 && status.pid === 0) await this.control.set({ enabled: 0 });
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    }
    await this.control.close();
    if (failures.length > 0) throw new RunwallError('RW_TEARDOWN_FAILED', `audit rules ${this.key}: ${failures.join('; ')}`);
  }
}

/** Deletes rules whose runwall process is gone (killed runs leave them behind). */
export async function removeStaleRules(control: AuditControl): Promise<void> {
  for (const { key, rule } of await control.listRules()) {
    const match = key === null ? null : RUNWALL_RULE_KEY.exec(key);
    if (!match || existsSync(`/proc/${match[1]}`)) continue;
    await control.deleteRule(rule);
  }
}
