/**
 * The one audit reader of a runwall process, shared by every consumer (the
 * process sensor's AuditStream, the detector's DetectAuditStream): one
 * multicast socket, records routed to their topic before they are parsed
 * (audit-route.ts), events assembled once per topic. Consumers acquire it and
 * release it; the last release closes it.
 *
 * It also owns the machine-wide side of audit, across runwall processes,
 * under an advisory lock (flock: a killed holder releases it):
 * - enter: remove rules of dead runwall processes, switch audit on and raise
 *   the backlog as needed (recording what was found, once per machine, in
 *   MARKER), add a presence rule `runwall-<pid>-hub` that matches no syscall
 *   but says "a runwall process is using audit" until it leaves;
 * - leave: remove the presence rule and dead processes' rules; when no
 *   runwall rule is left, restore what MARKER recorded and remove it. A
 *   killed run's marker is thus restored when the next run leaves.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunwallError } from '../../protocol/index.js';
import { AuditControl, removeStaleRules, RUNWALL_RULE_KEY } from './audit-control.js';
import { changesOnEnter, changesOnLeave, decodeAuditOriginal, encodeAuditOriginal, isEmptyChange } from './audit-machine-state.js';
import { AUDIT_NLGRP_READLOG, AuditAssembler, encodeAuditRule, type AuditRecord } from './audit-message.js';
import { AUDIT_TOPICS, AuditRecordRouter, type AuditTopic } from './audit-route.js';
import { LOCK_EX, LOCK_NB, libc } from './ffi.js';
import { splitNetlinkFrames } from './netlink-frames.js';
import { NETLINK_AUDIT, NetlinkSocket, type NetlinkReadProblem } from './netlink-socket.js';

/** Machine-wide (not per run: every runwall process must agree on it). */
export const AUDIT_STATE_DIR = '/run/runwall/audit';
const LOCK_FILE = `${AUDIT_STATE_DIR}/lock`;
/** The audit status found before the first runwall process changed it (audit-machine-state.ts). */
export const AUDIT_MARKER = `${AUDIT_STATE_DIR}/status-before-runwall.json`;
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 5;
/** An event without its end record is completed after this long (records of one event arrive together). */
const OPEN_EVENT_MAX_AGE_MS = 2000;
const EXPIRY_INTERVAL_MS = 1000;

export interface AuditSubscriber {
  readonly topic: AuditTopic;
  /** The records of one event of the topic (under any runwall key of its kind: filter by your own job). */
  onEvent(records: readonly AuditRecord[]): void;
  onProblem(problem: NetlinkReadProblem): void;
}

let current: AuditHub | null = null;
let users = 0;
/** acquire/release run one after another, so opening and closing never overlap. */
let transitions: Promise<unknown> = Promise.resolve();

export class AuditHub {
  readonly #router = new AuditRecordRouter();
  readonly #assemblers = new Map<AuditTopic, AuditAssembler>(AUDIT_TOPICS.map((topic) => [topic, new AuditAssembler()]));
  readonly #subscribers = new Set<AuditSubscriber>();
  #expiry: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(
    readonly control: AuditControl,
    private readonly reader: NetlinkSocket,
    private readonly presenceRule: Uint8Array,
  ) {}

  /**
   * The process's hub, opened by the first caller. RW_PLATFORM_MISSING without
   * audit in the kernel; RW_AUDIT_UNAVAILABLE when the kernel refuses (locked
   * configuration, missing capability); then nothing is left installed.
   */
  static acquire(): Promise<AuditHub> {
    const next = transitions.then(async () => {
      if (current === null) current = await AuditHub.#open();
      users++;
      return current;
    });
    transitions = next.catch(() => undefined);
    return next;
  }

  /** Gives the hub back; the last user closes it (and may restore the machine's audit status). */
  release(): Promise<void> {
    const next = transitions.then(async () => {
      if (current !== this || users === 0) return;
      if (--users > 0) return;
      current = null;
      await this.#close();
    });
    transitions = next.catch(() => undefined);
    return next;
  }

  static async #open(): Promise<AuditHub> {
    const presenceRule = encodeAuditRule({ syscalls: [], fields: [], key: `runwall-${process.pid}-hub` });
    const control = AuditControl.open();
    let reader: NetlinkSocket | null = null;
    try {
      // The reader before any rule: the first records must not be missed.
      reader = NetlinkSocket.open({ protocol: NETLINK_AUDIT, groups: 1 << (AUDIT_NLGRP_READLOG - 1), initialNetns: true, receiveBufferBytes: 16 << 20, datagramsPerWakeup: 512, name: 'audit' });
      await withMachineLock(() => enter(control, presenceRule));
    } catch (error) {
      await reader?.close();
      await control.close();
      throw error;
    }
    const hub = new AuditHub(control, reader, presenceRule);
    reader.start(
      (datagram) => hub.#onDatagram(datagram),
      // Closing the socket makes libuv report its poll handle once more: not a problem of the run.
      (problem) => hub.#closed || hub.#problem(problem),
    );
    hub.#expiry = setInterval(() => hub.#expire(Date.now(), OPEN_EVENT_MAX_AGE_MS), EXPIRY_INTERVAL_MS).unref();
    return hub;
  }

  /** Delivers the topic's events to `subscriber` until the returned function is called. */
  subscribe(subscriber: AuditSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => void this.#subscribers.delete(subscriber);
  }

  /** The latest syscall time among the records read so far (any record: they come in the order their calls returned). */
  get latestRecordMs(): number {
    return this.#router.latestRecordMs;
  }

  /**
   * Reads and delivers every record queued now, and events left without their
   * end record for too long; `complete`: every open event of that topic (its
   * consumer is closing).
   */
  drainNow(complete: AuditTopic | null = null): void {
    if (this.#closed) return;
    this.reader.drain();
    this.#expire(Date.now(), OPEN_EVENT_MAX_AGE_MS);
    if (complete !== null) for (const records of this.#assemblers.get(complete)!.expire(Number.MAX_SAFE_INTEGER, 0)) this.#deliver(complete, records);
  }

  #onDatagram(datagram: Uint8Array): void {
    const now = Date.now();
    for (const frame of splitNetlinkFrames(datagram).frames) {
      const routed = this.#router.route(frame.type, frame.payload);
      if (routed === null) continue;
      for (const records of this.#assemblers.get(routed.topic)!.add(routed.record, now)) this.#deliver(routed.topic, records);
    }
  }

  #expire(nowMs: number, maxAgeMs: number): void {
    for (const [topic, assembler] of this.#assemblers) for (const records of assembler.expire(nowMs, maxAgeMs)) this.#deliver(topic, records);
  }

  #deliver(topic: AuditTopic, records: readonly AuditRecord[]): void {
    for (const subscriber of this.#subscribers) {
      if (subscriber.topic !== topic) continue;
      try {
        subscriber.onEvent(records);
      } catch (error) {
        subscriber.onProblem({ lost: false, message: `audit: the ${topic} handler threw: ${error instanceof Error ? error.message : String(error)}` });
      }
    }
  }

  #problem(problem: NetlinkReadProblem): void {
    for (const subscriber of this.#subscribers) subscriber.onProblem(problem);
  }

  async #close(): Promise<void> {
    if (this.#expiry) clearInterval(this.#expiry);
    for (const topic of AUDIT_TOPICS) this.drainNow(topic);
    this.#closed = true;
    this.#subscribers.clear();
    await this.reader.close();
    try {
      await withMachineLock(() => leave(this.control, this.presenceRule));
    } finally {
      await this.control.close();
    }
  }
}

/** Under the lock: clean up after dead runwall processes, switch audit on as needed, say "in use". */
async function enter(control: AuditControl, presenceRule: Uint8Array): Promise<void> {
  await removeStaleRules(control);
  const status = await control.status();
  if (status.enabled === 2) throw new RunwallError('RW_AUDIT_UNAVAILABLE', 'the audit configuration is locked (enabled=2): no rules can be added until reboot');
  const change = changesOnEnter(status);
  if (!isEmptyChange(change)) {
    // Only the first changer records: a marker already there holds the state before any runwall.
    if (readMarker() === 'absent') writeMarker(encodeAuditOriginal({ enabled: status.enabled === 1 ? 1 : 0, backlogLimit: status.backlogLimit }));
    await control.set(change);
  }
  await control.addRule(presenceRule);
}

/** Under the lock: no longer "in use"; the last one out restores what was found. */
async function leave(control: AuditControl, presenceRule: Uint8Array): Promise<void> {
  await control.deleteRule(presenceRule);
  await removeStaleRules(control);
  const left = (await control.listRules()).filter((r) => r.key !== null && RUNWALL_RULE_KEY.test(r.key));
  if (left.length > 0) return;
  const marker = readMarker();
  if (marker === 'absent') return;
  const original = decodeAuditOriginal(marker);
  if (original !== null) {
    const change = changesOnLeave(original, await control.status());
    if (!isEmptyChange(change)) await control.set(change);
  }
  // Restored, or not runwall's to restore (an audit daemon took over; a marker runwall did not write).
  rmSync(AUDIT_MARKER, { force: true });
}

function readMarker(): string | 'absent' {
  try {
    return readFileSync(AUDIT_MARKER, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
}

function writeMarker(text: string): void {
  // Whole or not at all: a half-written marker would lose the original state.
  const temporary = `${AUDIT_MARKER}.${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, AUDIT_MARKER);
}

/** Runs `work` holding the machine's audit lock (waits, bounded, while another runwall process holds it). */
export async function withMachineLock<T>(work: () => Promise<T>): Promise<T> {
  mkdirSync(AUDIT_STATE_DIR, { recursive: true, mode: 0o700 });
  const fd = openSync(LOCK_FILE, 'a', 0o600);
  try {
    const lib = libc();
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const locked = lib.flock(fd, LOCK_EX | LOCK_NB);
      if (locked.ok) break;
      if (locked.errnoName !== 'EWOULDBLOCK' && locked.errnoName !== 'EAGAIN' && locked.errnoName !== 'EINTR') {
        throw new RunwallError('RW_SETUP_FAILED', `cannot lock ${LOCK_FILE}: ${locked.errnoName}`);
      }
      if (Date.now() > deadline) throw new RunwallError('RW_SETUP_FAILED', `another runwall process has held ${LOCK_FILE} for ${LOCK_WAIT_MS / 1000} s`);
      await sleep(LOCK_POLL_MS);
    }
    return await work();
  } finally {
    closeSync(fd); // releases the lock
  }
}
