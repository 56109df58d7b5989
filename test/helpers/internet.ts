// The project's own small internet for integration tests (design.md section 5): tests never
// send a packet off this machine, so they build one out of network namespaces.
//
//   P-host  the machine runwall runs on. up0 203.0.113.254/30, 2001:db8:ffff::2/64, default
//           routes to P-inet, forwarding on. Optional Docker-like bridges with containers.
//   P-inet  the internet. down0 203.0.113.253/30, 2001:db8:ffff::1/64; AnyIP makes every
//           address of 198.51.100.0/24, 203.0.113.0/25, 2001:db8::/48 and 2001:db8:1::/48 a
//           live host; internet-server.ts serves DNS, HTTP and UDP echo there.
//
// P is `rwt<pid>n<counter>`, so cleanupStaleInternets can tell whose namespaces are orphans.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeLine, parseControlMessage, type ControlMessage, type DnsQuery, type Hit } from './internet-control.js';

export type { DnsQuery, Hit, HitKind } from './internet-control.js';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** added to (and overriding) this process's environment */
  readonly env?: NodeJS.ProcessEnv;
  /** written to the command's stdin, which is then closed (closed at once when absent) */
  readonly stdin?: string;
  /** the command's process group is killed (SIGKILL) after this long */
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly done: Promise<RunResult>;
}

export interface DnsRecordInput {
  /** 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'HTTPS'; anything else is refused */
  readonly type: string;
  /** A/AAAA: address; CNAME: name; TXT: string or strings; HTTPS: { priority, target, alpn?, port?, ipv4hint?, ipv6hint? } */
  readonly data: unknown;
  readonly ttl?: number;
}

export interface Container {
  readonly ns: string;
  readonly bridge: string;
  readonly address: string;
  readonly address6: string;
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
}

export interface Internet {
  readonly prefix: string;
  readonly hostNs: string;
  readonly inetNs: string;
  readonly upstream: { readonly v4: '198.51.100.53'; readonly v6: '2001:db8::53' };
  readonly dns: {
    /** queries the upstream resolver received since the last clear (the rogue one logs to hits) */
    queries(): Promise<DnsQuery[]>;
    clear(): Promise<void>;
    /** replaces every record of `name`; an empty list makes the name NXDOMAIN */
    set(name: string, records: readonly DnsRecordInput[]): Promise<void>;
  };
  /** everything the HTTP/TLS, UDP echo and rogue DNS servers saw since the last clearHits */
  hits(): Promise<Hit[]>;
  clearHits(): Promise<void>;
  /** runs a command in P-host (nsenter --net, so /sys and cgroups stay visible); killed by destroy() */
  spawnInHost(argv: readonly string[], options?: RunOptions): Spawned;
  /** like spawnInHost, bounded by timeoutMs (default 20 s) */
  runInHost(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** a namespace behind a Linux bridge in P-host, masqueraded out of up0 as Docker does */
  addContainer(bridge?: string): Promise<Container>;
  /** kills every process in the internet's namespaces and removes them; idempotent */
  destroy(): Promise<void>;
}

const HELPERS_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HELPERS_DIR, '../..');
const SERVER_PATH = path.join(HELPERS_DIR, 'internet-server.ts');
const NETNS_DIR = '/run/netns';
const NAMESPACE_NAME = /^rwt(\d+)n\d+(?:-[a-z0-9]{1,16})?-(?:host|inet|c\d+)$/;
const LABEL = /^[a-z0-9]{1,16}$/;
const BRIDGE_NAME = /^[a-z][a-z0-9_-]{0,14}$/;

const SERVER_READY_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 10_000;
const RUN_DEFAULT_TIMEOUT_MS = 20_000;
const SERVER_EXIT_GRACE_MS = 1_000;
/** after a command exits, how long its output may still drain (a daemon it left may hold the pipe) */
const OUTPUT_DRAIN_MS = 1_000;
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
const STDERR_TAIL_BYTES = 4096;

/** Docker-like bridges: the first is 203.0.113.128/26, the second 203.0.113.192/26. */
const BRIDGE_SUBNETS = [
  { v4Base: 128, v6Net: '2001:db8:ffff:1' },
  { v4Base: 192, v6Net: '2001:db8:ffff:2' },
] as const;
const MAX_CONTAINERS_PER_BRIDGE = 60;

let internetCounter = 0;
const liveInternets = new Set<InternetHandle>();
let exitHookInstalled = false;
let staleCleanupDone = false;

/** Runs one command to completion; rejects with its stderr if it fails. */
function runChecked(command: string, args: readonly string[], input = ''): Promise<void> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { stdio: [input === '' ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_TAIL_BYTES) stderr += chunk.toString();
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      rejectRun(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun();
      else rejectRun(new Error(`${command} ${args.join(' ')} failed (${code ?? signal}): ${stderr.trim()}\n${input}`));
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a failing command may not read it all: reported by 'close'
      child.stdin.end(input);
    }
  });
}

function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  return runChecked('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], `${lines.join('\n')}\n`);
}

function netnsPath(ns: string): string {
  return `${NETNS_DIR}/${ns}`;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // spawned detached: the group is the command and what it started
  } catch {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function namespacePids(ns: string): number[] {
  if (!existsSync(netnsPath(ns))) return [];
  const listed = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  return (listed.stdout ?? '')
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isSafeInteger(pid) && pid > 1 && pid !== process.pid);
}

/** Kills whatever still runs inside the namespaces (a daemon a test left behind), then removes them. */
function removeNamespacesSync(namespaces: readonly string[]): void {
  for (const ns of namespaces) {
    for (const pid of namespacePids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }
  const existing = namespaces.filter((ns) => existsSync(netnsPath(ns)));
  if (existing.length === 0) return;
  spawnSync('ip', ['-force', '-batch', '-'], {
    input: existing.map((ns) => `netns del ${ns}`).join('\n') + '\n',
    timeout: COMMAND_TIMEOUT_MS,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes rwt* namespaces (and what runs in them) whose owning test process is dead. */
export function cleanupStaleInternets(): void {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return; // no namespaces at all
  }
  const stale = names.filter((name) => {
    const match = NAMESPACE_NAME.exec(name);
    return match?.[1] !== undefined && Number(match[1]) !== process.pid && !isAlive(Number(match[1]));
  });
  removeNamespacesSync(stale);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill and remove with spawnSync.
  process.once('exit', () => {
    for (const internet of liveInternets) internet.destroySync();
  });
}

function spawnIn(ns: string, argv: readonly string[], options: RunOptions, onSpawn: (child: ChildProcess) => void): Spawned {
  if (argv.length === 0) throw new Error('spawn: empty argv');
  const child = spawn('nsenter', [`--net=${netnsPath(ns)}`, '--', ...argv], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  onSpawn(child);
  const done = new Promise<RunResult>((resolveRun, rejectRun) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const timer =
      options.timeoutMs !== undefined ? setTimeout(() => killGroup(child), options.timeoutMs) : undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolveRun({ ...exit, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      if (outBytes < MAX_OUTPUT_BYTES) out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errBytes < MAX_OUTPUT_BYTES) err.push(chunk);
      errBytes += chunk.length;
    });
    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rejectRun(error);
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(finish, OUTPUT_DRAIN_MS);
    });
    child.on('close', (code, signal) => {
      exit ??= { code, signal };
      finish();
    });
  });
  child.stdin?.on('error', () => undefined); // the command may exit without reading its stdin
  child.stdin?.end(options.stdin ?? '');
  return { child, done };
}

class InternetHandle implements Internet {
  readonly upstream = { v4: '198.51.100.53', v6: '2001:db8::53' } as const;
  readonly hostNs: string;
  readonly inetNs: string;
  readonly dns: Internet['dns'];
  readonly #children = new Set<ChildProcess>();
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  readonly #containers: string[] = [];
  readonly #bridges = new Map<string, { subnet: (typeof BRIDGE_SUBNETS)[number]; containers: number }>();
  #server: ChildProcess | undefined;
  #serverStderr = '';
  #serverGone: Error | undefined;
  #nextRequestId = 1;
  #destroyed: Promise<void> | undefined;
  #containerSetup: Promise<unknown> = Promise.resolve();

  constructor(readonly prefix: string) {
    this.hostNs = `${prefix}-host`;
    this.inetNs = `${prefix}-inet`;
    this.dns = {
      queries: async () => (await this.#request({ op: 'queries' })) as DnsQuery[],
      clear: async () => {
        await this.#request({ op: 'clear-queries' });
      },
      set: async (name, records) => {
        await this.#request({ op: 'set', name, records });
      },
    };
  }

  async start(): Promise<void> {
    await ipBatch([
      `netns add ${this.hostNs}`,
      `netns add ${this.inetNs}`,
      `link add up0 netns ${this.hostNs} type veth peer name down0 netns ${this.inetNs}`,
    ]);
    await Promise.all([
      ipBatch(
        [
          'link set lo up',
          'link set up0 up',
          'addr add 203.0.113.254/30 dev up0',
          'addr add 2001:db8:ffff::2/64 dev up0 nodad',
          'route add default via 203.0.113.253',
          'route add default via 2001:db8:ffff::1',
        ],
        this.hostNs,
      ),
      ipBatch(
        [
          'link set lo up',
          'link set down0 up',
          'addr add 203.0.113.253/30 dev down0',
          'addr add 2001:db8:ffff::1/64 dev down0 nodad',
          // The resolvers bind these exact addresses; AnyIP alone does not allow an IPv6 bind.
          'addr add 198.51.100.53/32 dev lo',
          'addr add 203.0.113.53/32 dev lo',
          'addr add 2001:db8::53/128 dev lo nodad',
          'route add local 198.51.100.0/24 dev lo',
          'route add local 203.0.113.0/25 dev lo',
          'route add local 2001:db8::/48 dev lo',
          // nI.gen.test's AAAA addresses (2001:db8:1::…) live outside 2001:db8::/48.
          'route add local 2001:db8:1::/48 dev lo',
        ],
        this.inetNs,
      ),
      runChecked('nsenter', [
        `--net=${netnsPath(this.hostNs)}`,
        'sysctl',
        '-q',
        '-w',
        'net.ipv4.ip_forward=1',
        'net.ipv6.conf.all.forwarding=1',
      ]),
    ]);
    await this.#startServer();
  }

  #startServer(): Promise<void> {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // the test runner's loader flags are not the server's
    const server = spawn('nsenter', [`--net=${netnsPath(this.inetNs)}`, '--', process.execPath, '--import', 'tsx', SERVER_PATH], {
      cwd: REPO_ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#server = server;
    server.stdin?.on('error', () => undefined); // a dead server is reported through 'exit'
    server.stderr?.on('data', (chunk: Buffer) => {
      this.#serverStderr = (this.#serverStderr + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    return new Promise((resolveReady, rejectReady) => {
      const timer = setTimeout(() => {
        fail(new Error(`internet server of ${this.prefix} not ready after ${SERVER_READY_TIMEOUT_MS} ms`));
      }, SERVER_READY_TIMEOUT_MS);
      let ready = false;
      const fail = (error: Error): void => {
        clearTimeout(timer);
        this.#serverGone = error;
        for (const pending of this.#pending.values()) {
          clearTimeout(pending.timer);
          pending.reject(error);
        }
        this.#pending.clear();
        if (!ready) rejectReady(error);
      };
      server.on('error', fail);
      server.on('exit', (code, signal) => {
        fail(new Error(`internet server of ${this.prefix} exited (${code ?? signal}): ${this.#serverStderr.trim()}`));
      });
      const lines = readline.createInterface({ input: server.stdout! });
      lines.on('line', (line) => {
        let message: ControlMessage;
        try {
          message = parseControlMessage(line);
        } catch (error) {
          this.#serverStderr += `\n[unparsed server output] ${line}`;
          return;
        }
        if (message.kind === 'ready') {
          ready = true;
          clearTimeout(timer);
          resolveReady();
          return;
        }
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`internet server: ${message.error}`));
      });
    });
  }

  #request(request: { op: string } & Record<string, unknown>): Promise<unknown> {
    if (this.#destroyed) return Promise.reject(new Error(`internet ${this.prefix} is destroyed`));
    if (this.#serverGone) return Promise.reject(this.#serverGone);
    const server = this.#server;
    if (!server?.stdin) return Promise.reject(new Error(`internet ${this.prefix} has no server`));
    const id = this.#nextRequestId++;
    return new Promise((resolveRequest, rejectRequest) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        rejectRequest(new Error(`internet server of ${this.prefix}: no reply to ${request.op} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve: resolveRequest, reject: rejectRequest, timer });
      server.stdin!.write(encodeLine({ ...request, id }));
    });
  }

  hits(): Promise<Hit[]> {
    return this.#request({ op: 'hits' }) as Promise<Hit[]>;
  }

  async clearHits(): Promise<void> {
    await this.#request({ op: 'clear-hits' });
  }

  #spawnTracked(ns: string, argv: readonly string[], options: RunOptions): Spawned {
    if (this.#destroyed) throw new Error(`internet ${this.prefix} is destroyed`);
    const spawned = spawnIn(ns, argv, options, (child) => {
      this.#children.add(child);
      child.on('exit', () => this.#children.delete(child));
    });
    return spawned;
  }

  spawnInHost(argv: readonly string[], options: RunOptions = {}): Spawned {
    return this.#spawnTracked(this.hostNs, argv, options);
  }

  runInHost(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return this.#spawnTracked(this.hostNs, argv, { ...options, timeoutMs: options.timeoutMs ?? RUN_DEFAULT_TIMEOUT_MS }).done;
  }

  addContainer(bridge = 'docker0'): Promise<Container> {
    // One at a time: containers share the bridge bookkeeping and the address counter.
    const created = this.#containerSetup.then(() => this.#addContainer(bridge));
    this.#containerSetup = created.catch(() => undefined);
    return created;
  }

  async #addContainer(bridge: string): Promise<Container> {
    if (this.#destroyed) throw new Error(`internet ${this.prefix} is destroyed`);
    if (!BRIDGE_NAME.test(bridge)) throw new Error(`bad bridge name ${JSON.stringify(bridge)} (at most 15 characters)`);
    if (bridge === 'up0' || bridge === 'lo' || /^vc\d+$/.test(bridge)) throw new Error(`bridge name ${bridge} is taken`);
    let state = this.#bridges.get(bridge);
    if (!state) {
      const subnet = BRIDGE_SUBNETS[this.#bridges.size];
      if (!subnet) throw new Error(`at most ${BRIDGE_SUBNETS.length} bridges per internet`);
      state = { subnet, containers: 0 };
      this.#bridges.set(bridge, state);
      await this.#createBridge(bridge, subnet);
    }
    if (state.containers >= MAX_CONTAINERS_PER_BRIDGE) throw new Error(`bridge ${bridge} is full`);
    state.containers++;
    const index = this.#containers.length;
    const ns = `${this.prefix}-c${index}`;
    const veth = `vc${index}`;
    const host = state.subnet.v4Base + 1 + state.containers; // .1 is the bridge
    const address = `203.0.113.${host}`;
    const address6 = `${state.subnet.v6Net}::${(1 + state.containers).toString(16)}`;
    this.#containers.push(ns);
    await ipBatch([`netns add ${ns}`]);
    await ipBatch(
      [`link add ${veth} type veth peer name eth0 netns ${ns}`, `link set ${veth} master ${bridge}`, `link set ${veth} up`],
      this.hostNs,
    );
    await ipBatch(
      [
        'link set lo up',
        'link set eth0 up',
        `addr add ${address}/26 dev eth0`,
        `addr add ${address6}/64 dev eth0 nodad`,
        `route add default via 203.0.113.${state.subnet.v4Base + 1}`,
        `route add default via ${state.subnet.v6Net}::1`,
      ],
      ns,
    );
    return {
      ns,
      bridge,
      address,
      address6,
      run: (argv, options = {}) =>
        this.#spawnTracked(ns, argv, { ...options, timeoutMs: options.timeoutMs ?? RUN_DEFAULT_TIMEOUT_MS }).done,
    };
  }

  async #createBridge(bridge: string, subnet: (typeof BRIDGE_SUBNETS)[number]): Promise<void> {
    const v4Subnet = `203.0.113.${subnet.v4Base}/26`;
    await ipBatch(
      [
        `link add ${bridge} type bridge`,
        `addr add 203.0.113.${subnet.v4Base + 1}/26 dev ${bridge}`,
        `addr add ${subnet.v6Net}::1/64 dev ${bridge} nodad`,
        `link set ${bridge} up`,
      ],
      this.hostNs,
    );
    // Docker's own rule, through the same iptables-nft front end Docker uses.
    const enter = `--net=${netnsPath(this.hostNs)}`;
    await runChecked('nsenter', [enter, 'iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-s', v4Subnet, '!', '-o', bridge, '-j', 'MASQUERADE']);
    await runChecked('nsenter', [
      enter,
      'ip6tables',
      '-w',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      `${subnet.v6Net}::/64`,
      '!',
      '-o',
      bridge,
      '-j',
      'MASQUERADE',
    ]);
  }

  #namespaces(): string[] {
    return [...this.#containers, this.hostNs, this.inetNs];
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#destroy();
    return this.#destroyed;
  }

  async #destroy(): Promise<void> {
    for (const child of this.#children) killGroup(child);
    const server = this.#server;
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolveExit) => server.once('exit', () => resolveExit()));
      server.stdin?.end(); // the server exits when its stdin closes
      const timer = setTimeout(() => server.kill('SIGKILL'), SERVER_EXIT_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    removeNamespacesSync(this.#namespaces());
    liveInternets.delete(this);
  }

  /** For process exit, where nothing asynchronous runs any more. */
  destroySync(): void {
    for (const child of this.#children) killGroup(child);
    if (this.#server?.pid !== undefined && this.#server.exitCode === null) {
      try {
        this.#server.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    removeNamespacesSync(this.#namespaces());
    liveInternets.delete(this);
  }
}

/** Builds a new internet (two namespaces, a veth pair, the server process), ready to use. */
export async function createInternet(options: { name?: string } = {}): Promise<Internet> {
  if (options.name !== undefined && !LABEL.test(options.name)) {
    throw new Error(`internet name must match ${LABEL}, got ${JSON.stringify(options.name)}`);
  }
  if (!staleCleanupDone) {
    staleCleanupDone = true;
    cleanupStaleInternets();
  }
  const prefix = `rwt${process.pid}n${internetCounter++}${options.name !== undefined ? `-${options.name}` : ''}`;
  const internet = new InternetHandle(prefix);
  installExitHook();
  liveInternets.add(internet); // before anything exists, so a crash mid-way is still cleaned up
  try {
    await internet.start();
  } catch (error) {
    await internet.destroy();
    throw error;
  }
  return internet;
}
