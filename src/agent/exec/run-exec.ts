/**
 * `runwall exec`: one command (or the steps of a workflow job) in its own
 * network, PID and mount namespaces, under a policy enforced from the host
 * side, with a run report at the end.
 */
import { constants as osConstants, hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { compilePolicy, type JobPlan } from '../../policy/index.js';
import { RunwallError, type EffectivePolicy } from '../../protocol/index.js';
import { EgressEngine } from '../engine/egress-engine.js';
import { splitUpstream } from '../engine/upstream.js';
import { Firewall } from '../enforce/firewall.js';
import { policyNetworks } from '../enforce/ruleset.js';
import { EventPipeline } from '../pipeline/event-pipeline.js';
import { JsonlExporter } from '../pipeline/jsonl-exporter.js';
import { Nftables, cgroup2Root, childPids, tuneMalloc } from '../platform/index.js';
import { ciFromEnvironment, type ReportHead } from '../report/build-report.js';
import { RunRecorder } from '../report/run-recorder.js';
import { ExecSandbox, cleanupStaleSandboxes } from '../sandbox/exec-sandbox.js';
import { DROPPED_CAPABILITIES } from '../sandbox/sandbox-plan.js';
import { startSensors } from '../sensors/start-sensors.js';
import { runWorkflowJob } from '../workflow/run-workflow.js';
import { requireRoot, requireTools } from './preflight.js';

export interface ExecRequest {
  readonly policy: EffectivePolicy;
  /** The command; ignored when `workflow` is given. */
  readonly command: string;
  readonly args: readonly string[];
  /** `--workflow FILE --job ID`: the job's steps run instead of a command, each its own process tree in the one sandbox. */
  readonly workflow?: { readonly path: string; readonly plan: JobPlan };
  readonly reportPath?: string;
  readonly eventsPath?: string;
  readonly cwd?: string;
  /** The tree the file sensor watches (absent: no file monitoring). */
  readonly workspace?: string;
  /** Seconds an admitted address outlives its DNS TTL. */
  readonly ttlGraceSeconds: number;
  /** The TLS SNI / HTTP Host check on the job's flows (default on). */
  readonly l7?: 'on' | 'off';
  readonly env?: NodeJS.ProcessEnv;
}

export interface ExecOutcome {
  readonly exitCode: number;
  /** The report without its events (they went to the report file, if one was asked for). */
  readonly report: ReportHead;
}

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export async function runExec(request: ExecRequest): Promise<ExecOutcome> {
  requireRoot('runwall exec');
  tuneMalloc();
  requireTools(['ip', 'nsenter', 'unshare', 'setpriv', 'mount', 'sh']);
  cgroup2Root();
  const nft = Nftables.open();
  const startedAt = new Date();
  const pipeline = new EventPipeline();
  // The events wait beside the report file for it; with no report file only the summary is kept.
  const recorder = await RunRecorder.open(request.policy, request.reportPath ? `${request.reportPath}.${process.pid}.events` : null);
  pipeline.subscribe(recorder.record);
  const exporter = request.eventsPath ? new JsonlExporter(request.eventsPath) : null;
  if (exporter) pipeline.subscribe(exporter.write);

  for (const record of await cleanupStaleSandboxes(nft)) {
    pipeline.emit({
      kind: 'agent',
      time: new Date().toISOString(),
      action: 'cleanup',
      message: `removed what crashed run ${record.runId} left: ${record.removed.join(', ') || 'nothing in this namespace'}`,
    });
  }

  const compiled = compilePolicy(request.policy);
  const sandbox = ExecSandbox.reserve();
  const plan = sandbox.plan;
  const firewall = new Firewall(
    nft,
    {
      table: plan.table,
      mode: request.policy.egressPolicy,
      scope: { kind: 'exec', jobInterface: plan.hostInterface, jobNet4: plan.net4, jobNet6: plan.net6 },
      nflogGroup: plan.nflogGroup,
      resolvers: [
        { family: 4, address: plan.host4 },
        { family: 6, address: plan.host6 },
      ],
      ...policyNetworks(compiled),
    },
    { graceSeconds: request.ttlGraceSeconds },
  );

  let engine: EgressEngine;
  try {
    engine = await EgressEngine.start({
      policy: compiled,
      firewall,
      pipeline,
      dns: {
        listen: [
          { address: plan.host4, port: 53 },
          { address: plan.host6, port: 53 },
        ],
        upstream: splitUpstream(request.policy.dnsUpstream),
      },
      prepareNetwork: () => sandbox.createNetwork(),
      ...(request.l7 === 'off' ? {} : { l7: { scope: { kind: 'exec' as const, runId: plan.runId, jobInterface: plan.hostInterface }, queue: plan.nflogGroup } }),
    });
  } catch (error: unknown) {
    firewall.remove();
    await sandbox.teardown();
    await exporter?.close().catch(() => undefined);
    await recorder.discard();
    nft.close();
    if (error instanceof RunwallError) throw error;
    throw new RunwallError('RW_SETUP_FAILED', `could not set up the sandbox: ${error instanceof Error ? error.message : String(error)}`, {}, { cause: error });
  }
  pipeline.emit({
    kind: 'agent',
    time: new Date().toISOString(),
    action: 'enforcing',
    message: `${request.policy.egressPolicy} mode: table inet ${plan.table}, resolver ${plan.host4}:53, job namespace ${plan.netns}, TLS SNI / HTTP Host check ${request.l7 === 'off' ? 'off' : `on (NFQUEUE ${plan.nflogGroup})`}`,
  });

  sandbox.createCgroup();
  const sensors = await startSensors({
    pipeline,
    scope: { kind: 'exec', cgroup: plan.cgroup, netns: plan.netns },
    policy: request.policy,
    workspace: request.workspace ?? null,
    shared: new Map(),
  });

  const { code, signal } = request.workflow ? await runWorkflow(request, request.workflow.plan, sandbox, pipeline) : await runCommand(request, sandbox, pipeline);
  const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);

  // Side by side; the engine's held events go out after the sensors' last records, which attribute them.
  const sensorsStopped = sensors.stop();
  await engine.stop({ flushAfter: sensorsStopped });
  await sensorsStopped;
  const failures = await sandbox.teardown();
  for (const failure of failures) {
    pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'error', code: 'RW_SETUP_FAILED', message: `teardown: ${failure}` });
  }
  nft.close();
  const problems = [...engine.problems, ...sensors.problems, ...failures.map((message) => ({ code: 'RW_SETUP_FAILED', message, time: new Date().toISOString() }))];
  pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'stop', message: `job exited with status ${exitCode}` });

  const ci = ciFromEnvironment(process.env);
  const report = await recorder.finish(
    {
      run: {
        runId: plan.runId,
        surface: 'exec',
        host: hostname(),
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        ...(request.workflow
          ? { workflow: { path: request.workflow.path, job: request.workflow.plan.job.id, ...(request.workflow.plan.workflow.name ? { name: request.workflow.plan.workflow.name } : {}) } }
          : { command: [request.command, ...request.args] }),
        exitCode,
        signal: signal ?? null,
        ...(ci ? { ci } : {}),
      },
      policy: request.policy,
      enforcement: {
        enforced: request.policy.egressPolicy === 'block' && !engine.tampered,
        failClosed: engine.tampered,
        problems,
        sandbox: { droppedCapabilities: [...DROPPED_CAPABILITIES], pidNamespace: true, mountNamespace: true },
      },
    },
    request.reportPath ?? null,
  );
  await exporter?.close();
  return { exitCode, report };
}

type JobExit = { code: number | null; signal: NodeJS.Signals | null };

/** The one command of a plain `runwall exec`, with signals forwarded to it. */
async function runCommand(request: ExecRequest, sandbox: ExecSandbox, pipeline: EventPipeline): Promise<JobExit> {
  const child = sandbox.spawnJob({
    command: request.command,
    args: request.args,
    ...(request.cwd ? { cwd: request.cwd } : {}),
    ...(request.env ? { env: request.env } : {}),
    droppedCapabilities: DROPPED_CAPABILITIES,
  });
  const forward = (signal: NodeJS.Signals): void => {
    // A terminal already sends ^C to the whole foreground group, the job included.
    if (signal === 'SIGINT' && process.stdin.isTTY) return;
    for (const pid of child.pid ? childPids(child.pid) : []) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);

  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (error) => {
      pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'error', code: 'RW_SETUP_FAILED', message: `could not start the job: ${error.message}` });
      resolve({ code: 250, signal: null });
    });
    child.on('exit', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal }));
  });
  for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  return { code, signal };
}

/** The steps of a workflow job; a failure to run them is an agent error event and status 250. */
async function runWorkflow(request: ExecRequest, plan: JobPlan, sandbox: ExecSandbox, pipeline: EventPipeline): Promise<JobExit> {
  try {
    const outcome = await runWorkflowJob({
      sandbox,
      plan,
      pipeline,
      workspace: resolvePath(request.cwd ?? process.cwd()),
      env: request.env ?? process.env,
      droppedCapabilities: DROPPED_CAPABILITIES,
    });
    return { code: outcome.exitCode, signal: null };
  } catch (error: unknown) {
    const code = error instanceof RunwallError ? error.code : 'RW_SETUP_FAILED';
    const message = `the workflow job did not run: ${error instanceof Error ? error.message : String(error)}`;
    pipeline.emit({ kind: 'agent', time: new Date().toISOString(), action: 'error', code, message });
    return { code: 250, signal: null };
  }
}
