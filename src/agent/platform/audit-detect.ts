/**
 * The detector's audit rules and their reader: a second multicast listener
 * beside the process sensor's (audit multicast has room for several), with its
 * own keys (`runwall-<pid>-detect-…`) so neither removes the other's rules.
 * Rules: ptrace attach, process_vm_readv/writev, signals to the agent, and
 * file watches added while running (guarded files, a protected process's
 * /proc/PID/mem). Meaning is audit-detect-message.ts (pure).
 *
 * Like the process sensor's stream, it switches audit on when it is off and
 * off again when no runwall rule is left and no audit daemon runs.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunwallError } from '../../protocol/index.js';
import { auditArch } from './audit.js';
import {
  AUDIT_ADD_RULE,
  AUDIT_DEL_RULE,
  AUDIT_GET,
  AUDIT_LIST_RULES,
  AUDIT_NLGRP_READLOG,
  AuditAssembler,
  decodeAuditRuleKey,
  decodeAuditStatus,
  encodeAuditGet,
  encodeAuditListRules,
  encodeAuditRule,
  encodeAuditRuleRequest,
  encodeAuditSet,
  parseAuditRecord,
  type AuditStatus,
} from './audit-message.js';
import { AUDIT_PERM, DETECT_KEY, detectKeyBase, detectSyscallRules, encodeWatchRule, interpretDetectAuditEvent, type DetectAuditActivity } from './audit-detect-message.js';
import { errnoName } from './ffi.js';
import { splitNetlinkFrames } from './netlink-frames.js';
import { NETLINK_AUDIT, NetlinkSocket } from './netlink-socket.js';

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const REPLY_WAIT_MS = 2000;
const REPLY_POLL_MS = 2;
const OPEN_EVENT_MAX_AGE_MS = 2000;
/** Any runwall rule (process sensor's or detector's): while one is left, audit stays on. */
const ANY_RUNWALL_KEY = /^runwall-(\d+)(?:-|$)/;

export interface DetectAuditOptions {
  /** The agent to protect from signals (agent mode), or null. */
  readonly agentPid: number | null;
}

export class DetectAuditStream {
  readonly #assembler = new AuditAssembler(1024);
  readonly #base = detectKeyBase(process.pid);
  readonly #rules: Uint8Array[] = [];
  readonly #watches = new Map<string, Uint8Array>();
  #sequence = 1000;
  #enabledByUs = false;
  #closed = false; // set first in close(): later reader reports are teardown noise
  #expiry: NodeJS.Timeout | null = null;

  private constructor(
    private readonly control: NetlinkSocket,
    private readonly reader: NetlinkSocket,
    private readonly onActivity: (activity: DetectAuditActivity) => void,
    private readonly onProblem: (message: string) => void,
  ) {}

  /** RW_PLATFORM_MISSING without audit; RW_AUDIT_UNAVAILABLE when the kernel refuses; nothing is left installed then. */
  static async open(options: DetectAuditOptions, onActivity: (activity: DetectAuditActivity) => void, onProblem: (message: string) => void): Promise<DetectAuditStream> {
    const control = NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 0, initialNetns: false, receiveBufferBytes: 1 << 20, datagramsPerWakeup: 64, name: 'audit control (detect)' });
    let reader: NetlinkSocket | null = null;
    let stream: DetectAuditStream | null = null;
    try {
      reader = NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 1 << (AUDIT_NLGRP_READLOG - 1), initialNetns: true, receiveBufferBytes: 16 << 20, datagramsPerWakeup: 512, name: 'audit (detect)' });
      stream = new DetectAuditStream(control, reader, onActivity, onProblem);
      const status = await stream.#status();
      if (status.enabled === 2) throw new RunwallError('RW_AUDIT_UNAVAILABLE', 'the audit configuration is locked (enabled=2): no rules can be added until reboot');
      await stream.#removeStale();
      reader.start(
        (datagram) => stream!.#onDatagram(datagram),
        // Closing the socket makes libuv report its poll handle once more: not a problem of the run.
        (problem) => stream!.#closed || onProblem(problem.message),
      );
      if (status.enabled === 0) {
        await stream.#set(1);
        stream.#enabledByUs = true;
      }
      for (const spec of detectSyscallRules(auditArch(), stream.#base, options.agentPid)) {
        const rule = encodeAuditRule(spec);
        await stream.#request(AUDIT_ADD_RULE, rule);
        stream.#rules.push(rule);
      }
      // Events without an end record are completed by age.
      stream.#expiry = setInterval(() => stream!.#expire(), OPEN_EVENT_MAX_AGE_MS).unref();
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

  /** Watches opens for reading of `/proc/<pid>/mem` (and, for a process in its own PID namespace, of the path its namespace sees). */
  async watchMemory(pid: number, innerPid: number | null): Promise<void> {
    const paths = [`/proc/${pid}/mem`];
    if (innerPid !== null && innerPid !== pid) paths.push(`/proc/${pid}/root/proc/${innerPid}/mem`);
    for (const [i, path] of paths.entries()) await this.#watch(`mem:${pid}:${i}`, path, AUDIT_PERM.READ, `${this.#base}-mem-${pid}`);
  }

  async unwatchMemory(pid: number): Promise<void> {
    for (const id of [...this.#watches.keys()].filter((k) => k.startsWith(`mem:${pid}:`))) await this.#unwatch(id);
  }

  /** Watches writes and attribute changes of a file; `index` comes back on each activity. Missing parents are skipped (false). */
  async watchFile(index: number, path: string): Promise<boolean> {
    return this.#watch(`guard:${index}:${path}`, path, AUDIT_PERM.WRITE | AUDIT_PERM.ATTR, `${this.#base}-guard-${index}`);
  }

  async #watch(id: string, path: string, perm: number, key: string): Promise<boolean> {
    if (this.#closed || this.#watches.has(id)) return this.#watches.has(id);
    const rule = encodeWatchRule(path, perm, key);
    try {
      await this.#request(AUDIT_ADD_RULE, rule);
    } catch (error) {
      // The process is gone, or the file's directory does not exist here: nothing to watch.
      if (error instanceof RunwallError && ['ENOENT', 'ESRCH', 'ENOTDIR', 'EACCES'].includes(String(error.details['errno']))) return false;
      this.onProblem(`cannot watch ${path}: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
    this.#watches.set(id, rule);
    return true;
  }

  async #unwatch(id: string): Promise<void> {
    const rule = this.#watches.get(id);
    if (!rule) return;
    this.#watches.delete(id);
    await this.#request(AUDIT_DEL_RULE, rule).catch(() => undefined);
  }

  #onDatagram(datagram: Uint8Array): void {
    const now = Date.now();
    for (const frame of splitNetlinkFrames(datagram).frames) {
      if (frame.type < 1300 || frame.type >= 1400) continue;
      const record = parseAuditRecord(frame.type, new TextDecoder('latin1').decode(frame.payload));
      if (!record) continue;
      for (const records of this.#assembler.add(record, now)) this.#deliver(records);
    }
  }

  #expire(): void {
    for (const records of this.#assembler.expire(Date.now(), OPEN_EVENT_MAX_AGE_MS)) this.#deliver(records);
  }

  #deliver(records: Parameters<typeof interpretDetectAuditEvent>[0]): void {
    const activity = interpretDetectAuditEvent(records, this.#base);
    if (!activity) return;
    try {
      this.onActivity(activity);
    } catch (error) {
      this.onProblem(`audit (detect): the activity handler threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#expiry) clearInterval(this.#expiry);
    const failures: string[] = [];
    for (const rule of [...this.#rules, ...this.#watches.values()]) {
      await this.#request(AUDIT_DEL_RULE, rule).catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    }
    this.#watches.clear();
    // What the kernel still holds for us is read before the reader goes.
    this.reader.drain();
    for (const records of this.#assembler.expire(Number.MAX_SAFE_INTEGER, 0)) this.#deliver(records);
    await this.reader.close();
    if (this.#enabledByUs) {
      try {
        const others = (await this.#listRules()).filter((key) => key !== null && ANY_RUNWALL_KEY.test(key));
        const status = await this.#status();
        if (others.length === 0 && status.pid === 0) await this.#set(0);
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    }
    await this.control.close();
    if (failures.length > 0) throw new RunwallError('RW_TEARDOWN_FAILED', `audit rules ${this.#base}: ${failures.join('; ')}`);
  }

  // ---- Control requests ----

  /** Sends one request and collects its replies until the ack (`ack`; status requests also wait for the reply) or NLMSG_DONE (`dump`). */
  async #exchange(build: (sequence: number) => Uint8Array, until: 'ack' | 'ack+reply' | 'dump'): Promise<{ status: number; replies: { type: number; payload: Uint8Array }[] }> {
    const sequence = ++this.#sequence;
    while (this.control.receiveNow() !== null); // stale replies of an earlier, timed-out request
    this.control.send(build(sequence));
    const replies: { type: number; payload: Uint8Array }[] = [];
    let status: number | null = null;
    const deadline = Date.now() + REPLY_WAIT_MS;
    while (Date.now() < deadline) {
      const datagram = this.control.receiveNow();
      if (datagram === null) {
        await sleep(REPLY_POLL_MS);
        continue;
      }
      for (const reply of splitNetlinkFrames(datagram).frames) {
        if (reply.sequence !== sequence) continue;
        if (reply.type === NLMSG_ERROR) {
          status = new DataView(reply.payload.buffer, reply.payload.byteOffset, reply.payload.byteLength).getInt32(0, true);
          if (status !== 0) return { status, replies };
        } else if (reply.type === NLMSG_DONE) {
          return { status: 0, replies };
        } else {
          replies.push({ type: reply.type, payload: reply.payload.slice() });
        }
      }
      if (until === 'ack' && status !== null) return { status, replies };
      if (until === 'ack+reply' && status !== null && replies.length > 0) return { status, replies };
    }
    throw new RunwallError('RW_SETUP_FAILED', 'the kernel did not answer an audit request in time');
  }

  async #request(type: typeof AUDIT_ADD_RULE | typeof AUDIT_DEL_RULE, rule: Uint8Array): Promise<void> {
    const { status } = await this.#exchange((sequence) => encodeAuditRuleRequest(type, rule, sequence), 'ack');
    if (status === 0) return;
    const name = errnoName(-status);
    if ((type === AUDIT_ADD_RULE && name === 'EEXIST') || (type === AUDIT_DEL_RULE && name === 'ENOENT')) return;
    throw new RunwallError('RW_AUDIT_UNAVAILABLE', `${type === AUDIT_ADD_RULE ? 'adding' : 'deleting'} an audit rule failed: ${name}`, { errno: name });
  }

  async #status(): Promise<AuditStatus> {
    const { status, replies } = await this.#exchange(encodeAuditGet, 'ack+reply');
    const decoded = replies.find((r) => r.type === AUDIT_GET);
    const value = decoded ? decodeAuditStatus(decoded.payload) : null;
    if (status !== 0 || !value) throw new RunwallError('RW_AUDIT_UNAVAILABLE', `reading the audit status failed: ${errnoName(-status)}`);
    return value;
  }

  async #set(enabled: 0 | 1): Promise<void> {
    const { status } = await this.#exchange((sequence) => encodeAuditSet({ enabled }, sequence), 'ack');
    if (status !== 0) throw new RunwallError('RW_AUDIT_UNAVAILABLE', `switching audit ${enabled ? 'on' : 'off'} failed: ${errnoName(-status)}`);
  }

  async #listRules(): Promise<(string | null)[]> {
    const { status, replies } = await this.#exchange(encodeAuditListRules, 'dump');
    if (status !== 0) throw new RunwallError('RW_AUDIT_UNAVAILABLE', `listing audit rules failed: ${errnoName(-status)}`);
    return replies.filter((r) => r.type === AUDIT_LIST_RULES).map((r) => decodeAuditRuleKey(r.payload));
  }

  /** Deletes detector rules whose runwall process is gone (a killed run leaves them behind). */
  async #removeStale(): Promise<void> {
    const { replies } = await this.#exchange(encodeAuditListRules, 'dump');
    for (const reply of replies.filter((r) => r.type === AUDIT_LIST_RULES)) {
      const match = DETECT_KEY.exec(decodeAuditRuleKey(reply.payload) ?? '');
      if (!match || existsSync(`/proc/${match[1]}`)) continue;
      await this.#request(AUDIT_DEL_RULE, reply.payload).catch(() => undefined);
    }
  }
}
