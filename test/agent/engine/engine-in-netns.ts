// Child side of egress-engine.test.ts: runs inside the test's namespace (see test/helpers/in-netns.ts),
// starts the egress engine of an agent (whole-namespace scope, L7 check on) and reports what was in place.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { EgressEngine } from '../../../src/agent/engine/egress-engine.js';
import { Firewall } from '../../../src/agent/enforce/firewall.js';
import { policyNetworks } from '../../../src/agent/enforce/ruleset.js';
import { EventPipeline } from '../../../src/agent/pipeline/event-pipeline.js';
import { NflogReader, NfqueueReader, Nftables, cgroup2Root, createCgroup, nftCgroupView, removeCgroup } from '../../../src/agent/platform/index.js';
import { compilePolicy, parseEndpointList, resolvePolicy } from '../../../src/policy/index.js';
import { isRunwallError, type RunEvent } from '../../../src/protocol/index.js';

export interface ScenarioInput {
  readonly scenario: 'start-stop' | 'l7-queue-taken';
  /** The agent's cgroup (its own sockets are exempt); made and removed here. */
  readonly cgroup: string;
  /** An address routed out of a link of this namespace, where nothing is allowed. */
  readonly blockedAddress: string;
}

export interface InPlace {
  readonly table: boolean;
  /** Chains named RWL7… in iptables' and ip6tables' filter table. */
  readonly l7Chains: { readonly v4: number; readonly v6: number };
}

export type ScenarioResult =
  | { readonly scenario: 'start-stop'; readonly started: InPlace; readonly stopped: InPlace; readonly blocked: RunEvent[] }
  | { readonly scenario: 'l7-queue-taken'; readonly error: { code: string; message: string } | null; readonly after: InPlace; readonly nflogFree: boolean; readonly retried: InPlace };

const TABLE = 'rw_engine_test';
const GROUP = 4321;
const QUEUE = 4321;
const RESOLVER = '127.0.0.153';

function l7Chains(tool: 'iptables-save' | 'ip6tables-save'): number {
  const saved = spawnSync(tool, ['-t', 'filter'], { encoding: 'utf8' }).stdout ?? '';
  return saved.split('\n').filter((line) => /^:RWL7/.test(line)).length;
}

function inPlace(nft: Nftables): InPlace {
  let table = true;
  try {
    nft.run(`list table inet ${TABLE}`);
  } catch {
    table = false;
  }
  return { table, l7Chains: { v4: l7Chains('iptables-save'), v6: l7Chains('ip6tables-save') } };
}

function startEngine(nft: Nftables, cgroup: string, pipeline: EventPipeline): Promise<EgressEngine> {
  const compiled = compilePolicy(
    resolvePolicy({ flags: { egressPolicy: 'block', allowedEndpoints: parseEndpointList('allowed.test', 'test') }, defaults: { dnsUpstream: '127.0.0.1:5353' } }),
  );
  // As the agent names its cgroup and loads its table.
  const exempt = nftCgroupView(cgroup);
  const firewall = new Firewall(
    nft,
    {
      table: TABLE,
      mode: 'block',
      scope: { kind: 'agent', agentCgroup: exempt.path, agentCgroupLevel: 1 },
      nflogGroup: GROUP,
      resolvers: [{ family: 4, address: RESOLVER }],
      ...policyNetworks(compiled),
    },
    { graceSeconds: 10, ...(exempt.load ? { load: exempt.load } : {}) },
  );
  return EgressEngine.start({
    policy: compiled,
    firewall,
    pipeline,
    dns: { listen: [{ address: RESOLVER, port: 53 }], upstream: { address: '127.0.0.1', port: 5353 } },
    l7: { scope: { kind: 'agent', agentCgroup: cgroup }, queue: QUEUE },
    tamperCheckMs: 0,
  });
}

/** A TCP connection attempt the table refuses (it is logged as the SYN leaves); resolves once connect has been called. */
function attempt(address: string): void {
  const socket = net.connect({ host: address, port: 443 });
  socket.on('error', () => undefined);
  socket.setTimeout(2000, () => socket.destroy());
}

export default async function (input: ScenarioInput): Promise<ScenarioResult> {
  cgroup2Root();
  createCgroup(input.cgroup);
  const nft = Nftables.open();
  try {
    if (input.scenario === 'start-stop') {
      const pipeline = new EventPipeline();
      const events: RunEvent[] = [];
      pipeline.subscribe((event) => events.push(event));
      const engine = await startEngine(nft, input.cgroup, pipeline);
      const started = inPlace(nft);
      // Right before stop: the blocked attempt must still be read and reported.
      attempt(input.blockedAddress);
      await engine.stop();
      const blocked = events.filter((event) => event.kind === 'connection' && event.destination === input.blockedAddress);
      return { scenario: 'start-stop', started, stopped: inPlace(nft), blocked };
    }
    // Another reader holds the L7 check's queue: the engine cannot start, and leaves nothing behind.
    const holder = await NfqueueReader.open(QUEUE, () => undefined, () => undefined);
    let error: { code: string; message: string } | null = null;
    try {
      const engine = await startEngine(nft, input.cgroup, new EventPipeline());
      await engine.stop();
    } catch (thrown) {
      error = { code: isRunwallError(thrown) ? thrown.code : 'not a RunwallError', message: thrown instanceof Error ? thrown.message : String(thrown) };
    } finally {
      await holder.close();
    }
    const after = inPlace(nft);
    let nflogFree = false;
    try {
      await (await NflogReader.open(GROUP, () => undefined, () => undefined)).close();
      nflogFree = true;
    } catch {
      // Still held: the failed start leaked its reader.
    }
    const engine = await startEngine(nft, input.cgroup, new EventPipeline());
    const retried = inPlace(nft);
    await engine.stop();
    return { scenario: 'l7-queue-taken', error, after, nflogFree, retried };
  } finally {
    nft.close();
    removeCgroup(input.cgroup);
  }
}
