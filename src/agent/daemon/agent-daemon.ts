/**
 * `runwall agent`: the egress engine for the whole machine it runs on (a
 * runner VM, a bare-metal host). Its rules hook output and forward, so local
 * jobs and containers on any bridge are under one policy; its own sockets are
 * exempt by cgroup, not by uid. If it dies in block mode its table stays and
 * the resolver configuration still points at it: the machine stays blocked.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { compilePolicy } from '../../policy/index.js';
import { RunwallError, type EffectivePolicy } from '../../protocol/index.js';
import { EgressEngine } from '../engine/egress-engine.js';
import { splitUpstream } from '../engine/upstream.js';
import { Firewall } from '../enforce/firewall.js';
import { buildLockdownRuleset, policyNetworks } from '../enforce/ruleset.js';
import { requireRoot, requireTools } from '../exec/preflight.js';
import { removeL7Rules } from '../l7/l7-inspector.js';
import { EventPipeline } from '../pipeline/event-pipeline.js';
import { JsonlExporter } from '../pipeline/jsonl-exporter.js';
import { Nftables, cgroup2Root, createCgroup, ip, moveToCgroup, nftCgroupView, tuneMalloc } from '../platform/index.js';
import { ciFromEnvironment, type ReportHead } from '../report/build-report.js';
import { RunRecorder } from '../report/run-recorder.js';
import { startSensors } from '../sensors/start-sensors.js';
import { STEPS_KEY } from '../steps/step-sensor.js';
import { StepTracker } from '../steps/step-tracker.js';
import { listenControl, type ControlRequest } from './control.js';
import { backupFile, dockerDaemonJson, resolvConfText, restoreFile, writeReplacing, type FileBackup } from './resolver-config.js';

export const AGENT_TABLE = 'runwall_agent';
export const AGENT_CGROUP = 'runwall-agent';
/** The agent's resolver on loopback: beside systemd-resolved's 127.0.0.53, never on it. */
export const AGENT_LOOPBACK_RESOLVER = '127.0.0.153';
const NFLOG_GROUP = 19_999;
/** The agent's NFQUEUE for the TLS SNI / HTTP Host check (queue numbers are their own space, apart from NFLOG groups). */
const L7_QUEUE = 19_999;

export interface AgentPaths {
  readonly stateDir: string;
  readonly resolvConf: string;
  /** Docker's daemon.json; only changed when its directory exists. */
  readonly dockerDaemonJson: string;
}

export function agentPaths(overrides: Partial<AgentPaths> = {}): AgentPaths {
  const stateDir = overrides.stateDir ?? process.env['RUNWALL_AGENT_DIR'] ?? '/run/runwall/agent';
  return {
    stateDir,
    resolvConf: overrides.resolvConf ?? '/etc/resolv.conf',
    dockerDaemonJson: overrides.dockerDaemonJson ?? '/etc/docker/daemon.json',
  };
}

export function controlSocketPath(paths: AgentPaths): string {
  return `${paths.stateDir}/control.sock`;
}

interface AgentState {
  readonly pid: number;
  readonly startedAt: string;
  readonly table: string;
  readonly backups: readonly FileBackup[];
}

function statePath(paths: AgentPaths): string {
  return `${paths.stateDir}/state.json`;
}

/** Where the agent's events wait for the report (a file per agent process, so one never truncates another's). */
function spoolPath(paths: AgentPaths, pid: number): string {
  return `${paths.stateDir}/events-${pid}.spool`;
}

function readAgentState(paths: AgentPaths): AgentState | null {
  try {
    return JSON.parse(readFileSync(statePath(paths), 'utf8')) as AgentState;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Undoes what an agent that is no longer running left: its table and the
 * resolver configuration it replaced. Returns what it did, for the report.
 */
export async function recoverDeadAgent(paths: AgentPaths, nft: Nftables): Promise<string[]> {
  const state = readAgentState(paths);
  if (!state) return [];
  if (pidAlive(state.pid)) throw new RunwallError('RW_AGENT_RUNNING', `a runwall agent is already running (pid ${state.pid})`);
  const done: string[] = [];
  try {
    nft.run(`delete table inet ${state.table}`);
    done.push(`removed table inet ${state.table}`);
  } catch {
    // Already gone.
  }
  // Its L7 rules queue to a reader that is gone: every new TLS/HTTP flow would stall.
  await removeL7Rules({ kind: 'agent', agentCgroup: AGENT_CGROUP });
  for (const backup of state.backups) {
    restoreFile(backup);
    done.push(`restored ${backup.path}`);
  }
  rmSync(spoolPath(paths, state.pid), { force: true });
  rmSync(statePath(paths), { force: true });
  return done;
}

function bridgeAddresses(): string[] {
  const out = ip(['-j', '-4', 'addr', 'show', 'type', 'bridge']);
  const links = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ local?: string; family?: string }> }>;
  return links.flatMap((link) => (link.addr_info ?? []).filter((a) => a.family === 'inet' && a.local).map((a) => a.local as string));
}

export interface AgentOptions {
  readonly policy: EffectivePolicy;
  readonly paths: AgentPaths;
  readonly ttlGraceSeconds: number;
  readonly eventsPath?: string;
  /** The job's workspace the file sensor watches, when known. */
  readonly workspace?: string;
  /** Where `stop` writes the report when the request names no path. */
  readonly defaultReportPath: string;
  /** The TLS SNI / HTTP Host check (default on). */
  readonly l7?: 'on' | 'off';
  /** Called once, when the agent enforces and its control socket answers, with what `status` would say. */
  readonly onReady?: (status: AgentStatus) => void;
}

export interface AgentStatus {
  readonly pid: number;
  readonly mode: EffectivePolicy['egressPolicy'];
  readonly startedAt: string;
  readonly enforcingAfterMs: number;
  readonly resolvers: readonly string[];
  /** Its control socket. */
  readonly control: string;
  readonly events: number;
  readonly problems: readonly { code: string; message: string; time: string }[];
  readonly rssBytes: number;
  /** Where the memory is: V8 heap, memory outside it (buffers, native), for `runwall agent status`. */
  readonly memory: { readonly heapUsedBytes: number; readonly heapTotalBytes: number; readonly externalBytes: number; readonly arrayBuffersBytes: number };
}

function memoryFigures(): AgentStatus['memory'] {
  const usage = process.memoryUsage();
  return { heapUsedBytes: usage.heapUsed, heapTotalBytes: usage.heapTotal, externalBytes: usage.external, arrayBuffersBytes: usage.arrayBuffers };
}

/** Runs the agent in this process until `stop` arrives over the control socket (or SIGTERM/SIGINT). */
export async function runAgent(options: AgentOptions): Promise<void> {
  requireRoot('runwall agent');
  // Also here: `agent start --foreground` run by systemd or a DaemonSet has no launcher to set MALLOC_* for it.
  tuneMalloc();
  requireTools(['ip', 'unshare', 'nft', 'mount']);
  const { paths, policy } = options;
  const nft = Nftables.open();
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const startedAt = new Date();
  const pipeline = new EventPipeline();
  const recovered = await recoverDeadAgent(paths, nft);
  // After the recovery: it refuses when another agent lives, whose files this one must not touch.
  const recorder = await RunRecorder.open(policy, spoolPath(paths, process.pid));
  pipeline.subscribe(recorder.record);
  const exporter = options.eventsPath ? new JsonlExporter(options.eventsPath) : null;
  if (exporter) pipeline.subscribe(exporter.write);

  if (recovered.length > 0) {
    pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'cleanup', message: `a previous agent had died: ${recovered.join('; ')}` });
  }

  const compiled = compilePolicy(policy);
  // The L7 check binds its queue while the rest is prepared; nothing is fed to it before enforce().
  const engine = EgressEngine.prepare({
    policy: compiled,
    pipeline,
    // Judged in this thread: a worker thread's isolate was ~10 MiB of the agent's memory (l7-in-thread.ts).
    ...(options.l7 === 'off' ? {} : { l7: { scope: { kind: 'agent' as const, agentCgroup: AGENT_CGROUP }, queue: L7_QUEUE, judgeIn: 'this-thread' as const } }),
  });
  const backups: FileBackup[] = [];
  const saveState = (): void =>
    writeFileSync(statePath(paths), JSON.stringify({ pid: process.pid, startedAt: startedAt.toISOString(), table: AGENT_TABLE, backups } satisfies AgentState), {
      mode: 0o600,
    });
  let bridges: string[];
  let firewall: Firewall;
  /** Settles once this process is in AGENT_CGROUP; the move goes on while the table is built. */
  let moved: Promise<void>;
  try {
    // Our own sockets (upstream DNS) are exempt from the rules by this cgroup.
    cgroup2Root();
    createCgroup(AGENT_CGROUP);
    moved = moveToCgroup(AGENT_CGROUP, process.pid);
    // Its failure comes out of enforce(), which awaits it before anything is sent upstream.
    moved.catch(() => undefined);
    bridges = bridgeAddresses();
    const exempt = nftCgroupView(AGENT_CGROUP);
    firewall = new Firewall(
      nft,
      {
        table: AGENT_TABLE,
        mode: policy.egressPolicy,
        scope: { kind: 'agent', agentCgroup: exempt.path, agentCgroupLevel: 1 },
        nflogGroup: NFLOG_GROUP,
        resolvers: [AGENT_LOOPBACK_RESOLVER, ...bridges].map((address) => ({ family: 4 as const, address })),
        ...policyNetworks(compiled),
      },
      { graceSeconds: options.ttlGraceSeconds, ...(exempt.load ? { load: exempt.load } : {}) },
    );
    saveState();
  } catch (error: unknown) {
    // Nothing was enforced yet: the L7 check is ended, nothing else was installed.
    await engine.stop({ keepTable: true });
    nft.close();
    await recorder.discard();
    throw error;
  }
  const resolvers = [AGENT_LOOPBACK_RESOLVER, ...bridges];

  const ourResolvConf = resolvConfText([AGENT_LOOPBACK_RESOLVER]);
  // The sensors start alongside: their set-up fills the waits of enforce() (the table's helper, iptables), and
  // they see the job from the moment the agent enforces. startSensors reports a failure, never throws.
  const shared = new Map<string, unknown>();
  const sensorsStarting = startSensors({
    pipeline,
    scope: { kind: 'agent', agentPid: process.pid },
    policy,
    workspace: options.workspace ?? null,
    shared,
  });
  try {
    await engine.enforce({
      firewall,
      prepareNetwork: () => moved,
      dns: { listen: resolvers.map((address) => ({ address, port: 53 })), upstream: splitUpstream(policy.dnsUpstream) },
    });
    // The resolver listens: now point the machine at it. Backups go to the state file first.
    backups.push(backupFile(paths.resolvConf));
    saveState();
    writeReplacing(paths.resolvConf, ourResolvConf);
    const dockerDir = paths.dockerDaemonJson.slice(0, paths.dockerDaemonJson.lastIndexOf('/'));
    if (bridges.length > 0 && existsSync(dockerDir)) {
      const backup = backupFile(paths.dockerDaemonJson);
      backups.push(backup);
      saveState();
      writeReplacing(paths.dockerDaemonJson, dockerDaemonJson(backup.content, bridges));
    }
  } catch (error: unknown) {
    await (await sensorsStarting).stop();
    for (const backup of backups.reverse()) restoreFile(backup);
    backups.length = 0;
    const reason = error instanceof Error ? error.message : String(error);
    const code = error instanceof RunwallError ? error.code : 'RW_SETUP_FAILED';
    if (policy.egressPolicy === 'block') {
      // Fail closed: a job that asked for block mode never runs unguarded because the agent could not start.
      nft.run(buildLockdownRuleset(AGENT_TABLE, NFLOG_GROUP));
      saveState();
      nft.close();
      await recorder.discard();
      throw new RunwallError(code, `${reason}; the machine is left blocked (fail-closed): only loopback traffic passes until 'runwall agent stop' lifts it`);
    }
    firewall.remove();
    rmSync(statePath(paths), { force: true });
    nft.close();
    await recorder.discard();
    throw error instanceof RunwallError ? error : new RunwallError('RW_SETUP_FAILED', `agent set-up failed: ${reason}`);
  }
  const enforcingAfterMs = Math.round(process.uptime() * 1000);
  // The resolver configuration is part of the guard: a job that rewrites it is reported and undone.
  const resolverWatch = setInterval(() => {
    let current: string | null = null;
    try {
      current = readFileSync(paths.resolvConf, 'utf8');
    } catch {
      // Removed: treated as changed.
    }
    if (current === ourResolvConf) return;
    const message = `${paths.resolvConf} was changed behind the agent's back; rewritten to point at the agent`;
    engine.problems.push({ code: 'RW_SETUP_FAILED', message, time: new Date().toISOString() });
    pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'tamper', code: 'RW_SETUP_FAILED', message });
    try {
      writeReplacing(paths.resolvConf, ourResolvConf);
    } catch (error: unknown) {
      pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'error', code: 'RW_SETUP_FAILED', message: `could not rewrite ${paths.resolvConf}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }, 500);
  resolverWatch.unref();
  const sensors = await sensorsStarting;
  pipeline.emit({
    kind: 'agent',
    time: new Date().toISOString(),
    action: 'enforcing',
    message: `${policy.egressPolicy} mode on output and forward; resolver ${resolvers.join(', ')}; TLS SNI / HTTP Host check ${options.l7 === 'off' ? 'off' : 'on'}; ${enforcingAfterMs} ms after start`,
  });

  let stopping: Promise<ReportHead> | null = null;
  const stop = (reportPath: string): Promise<ReportHead> => {
    stopping ??= (async () => {
      clearInterval(resolverWatch);
      pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'stop', message: 'agent stopping; resolver configuration restored' });
      for (const backup of [...backups].reverse()) restoreFile(backup);
      // Side by side; the engine's held events go out after the sensors' last records, which attribute them.
      const sensorsStopped = sensors.stop();
      await engine.stop({ flushAfter: sensorsStopped });
      await sensorsStopped;
      nft.close();
      const ci = ciFromEnvironment(process.env);
      const report = await recorder.finish(
        {
          run: {
            runId: `agent-${process.pid}-${startedAt.getTime()}`,
            surface: 'agent',
            host: hostname(),
            startedAt: startedAt.toISOString(),
            endedAt: new Date().toISOString(),
            ...(ci ? { ci } : {}),
          },
          policy,
          enforcement: { enforced: policy.egressPolicy === 'block' && !engine.tampered, failClosed: engine.tampered, problems: [...engine.problems, ...sensors.problems] },
        },
        reportPath,
      );
      await exporter?.close();
      rmSync(statePath(paths), { force: true });
      return report;
    })();
    return stopping;
  };

  const status = (): AgentStatus => ({
    pid: process.pid,
    mode: policy.egressPolicy,
    startedAt: startedAt.toISOString(),
    enforcingAfterMs,
    resolvers,
    control: controlSocketPath(paths),
    events: pipeline.count,
    problems: engine.problems,
    rssBytes: process.memoryUsage.rss(),
    memory: memoryFigures(),
  });
  const handle = async (request: ControlRequest): Promise<unknown> => {
    switch (request.command) {
      case 'status':
        return status();
      case 'stop': {
        const report = await stop(request.report ?? options.defaultReportPath);
        setImmediate(() => server.close());
        return { report: request.report ?? options.defaultReportPath, summary: report.summary };
      }
      case 'step': {
        // The step tracker gives a marker its id and finds the open step an `end` closes; without it, the name is the id.
        const tracker = shared.get(STEPS_KEY);
        const event = tracker instanceof StepTracker ? tracker.markerEvent(request.action, request.name) : { kind: 'step' as const, time: new Date().toISOString(), action: request.action, id: request.name, name: request.name, source: 'marker' as const };
        pipeline.emit(event);
        return { accepted: true, id: event.kind === 'step' ? event.id : request.name };
      }
    }
  };
  const server = await listenControl(controlSocketPath(paths), handle);
  const onSignal = (): void => {
    void stop(options.defaultReportPath).then(() => server.close());
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  options.onReady?.(status());
  await new Promise<void>((resolve) => server.on('close', () => resolve()));
  rmSync(controlSocketPath(paths), { force: true });
}
