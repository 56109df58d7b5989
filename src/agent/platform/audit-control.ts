/**
 * The unicast audit control connection (status, rules) that a runwall
 * process's audit users share through the hub, and the cleanup of rules a
 * killed runwall process left behind. Encoding is audit-message.ts (pure).
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
  decodeAuditRuleKey,
  decodeAuditStatus,
  encodeAuditGet,
  encodeAuditListRules,
  encodeAuditRuleRequest,
  encodeAuditSet,
  type AuditStatus,
} from './audit-message.js';
import { errnoName } from './ffi.js';
import { splitNetlinkFrames } from './netlink-frames.js';
import { NETLINK_AUDIT, NetlinkSocket } from './netlink-socket.js';

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const REPLY_WAIT_MS = 2000;
const REPLY_POLL_MS = 2;

/** Any runwall rule (`runwall-<pid>` and keys that extend it): its pid says whose. */
export const RUNWALL_RULE_KEY = /^runwall-(\d+)(?:-|$)/;

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

type Replies = { status: number; replies: { type: number; payload: Uint8Array }[] };

export class AuditControl {
  #sequence = 100;
  /** One request at a time: replies are told apart by sequence, but a request drops stale replies first. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly socket: NetlinkSocket) {}

  static open(): AuditControl {
    return new AuditControl(NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 0, initialNetns: false, receiveBufferBytes: 1 << 20, datagramsPerWakeup: 64, name: 'audit control' }));
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => undefined);
    await this.socket.close();
  }

  #request(build: (sequence: number) => Uint8Array, until: 'ack' | 'ack+reply' | 'done'): Promise<Replies> {
    const next = this.#queue.then(() => this.#exchange(build, until));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Sends a request and collects its replies: until the ack (requests with an
   * ack) or NLMSG_DONE (dumps). The kernel answers some requests from a
   * worker thread, so replies may follow the ack: they are waited for, bounded.
   */
  async #exchange(build: (sequence: number) => Uint8Array, until: 'ack' | 'ack+reply' | 'done'): Promise<Replies> {
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

/** Deletes rules whose runwall process is gone (killed runs leave them behind): the process sensor's, the detector's, the hub's. */
export async function removeStaleRules(control: AuditControl): Promise<void> {
  for (const { key, rule } of await control.listRules()) {
    const match = key === null ? null : RUNWALL_RULE_KEY.exec(key);
    if (!match || existsSync(`/proc/${match[1]}`)) continue;
    await control.deleteRule(rule);
  }
}
