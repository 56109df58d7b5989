/**
 * Reads a `docker|podman|nerdctl run|create` command line the way the CLI does
 * (options until the image, then the container's own command) and names what
 * makes the container dangerous to the host. Pure.
 */

export interface ContainerRisk {
  /** The flag as written, e.g. `--privileged`, `-v /:/host`, `--pid=host`. */
  readonly flag: string;
  readonly reason: string;
  /** The risk lets the container act in the host's namespaces, not just widen its own. */
  readonly hostNamespace: boolean;
}

export interface ContainerRun {
  readonly subcommand: 'run' | 'create';
  readonly image: string | null;
  /** The container's command and arguments (after the image). */
  readonly command: readonly string[];
  readonly risks: readonly ContainerRisk[];
}

/** Global options (before the subcommand) that take a value. */
const GLOBAL_VALUE_OPTIONS = new Set(['-H', '--host', '-c', '--context', '--config', '-l', '--log-level', '--tlscacert', '--tlscert', '--tlskey', '--namespace', '-n', '--address', '-a', '--url', '--connection', '--root', '--runroot', '--storage-driver', '--cgroup-manager']);
/** Boolean options of `run`/`create`; every other long option takes a value. */
const RUN_BOOLEAN_LONG = new Set([
  '--detach', '--interactive', '--tty', '--rm', '--privileged', '--init', '--publish-all', '--read-only', '--no-healthcheck',
  '--oom-kill-disable', '--disable-content-trust', '--quiet', '--help', '--sig-proxy', '--use-api-socket', '--replace', '--tls-verify',
]);
const RUN_BOOLEAN_SHORT = new Set(['d', 'i', 't', 'P', 'q']);

/** Host paths whose bind mount hands the container the host (or its container engine). */
const SENSITIVE_MOUNT_SOURCES = [
  '/',
  '/etc',
  '/root',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/var/run/containerd/containerd.sock',
  '/run/podman/podman.sock',
];

const DANGEROUS_CAPS = new Set(['all', 'sys_admin', 'cap_sys_admin', 'sys_ptrace', 'cap_sys_ptrace', 'sys_module', 'cap_sys_module', 'net_admin', 'cap_net_admin', 'dac_read_search', 'cap_dac_read_search']);

function normalisePath(path: string): string {
  const collapsed = path.replace(/\/+/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed;
}

function sensitiveSource(source: string): boolean {
  return SENSITIVE_MOUNT_SOURCES.includes(normalisePath(source));
}

function volumeRisk(flag: string, value: string): ContainerRisk | null {
  // -v SRC:DST[:opts]; a source without a slash is a named volume.
  const source = value.split(':')[0] ?? '';
  if (!source.startsWith('/') || !sensitiveSource(source)) return null;
  return { flag: `${flag} ${value}`, reason: `mounts the host's ${normalisePath(source)} into the container`, hostNamespace: normalisePath(source) === '/' };
}

function mountRisk(flag: string, value: string): ContainerRisk | null {
  const fields = new Map(
    value.split(',').map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? [part.trim().toLowerCase(), ''] : [part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim()];
    }),
  );
  if ((fields.get('type') ?? 'volume') !== 'bind') return null;
  const source = fields.get('source') ?? fields.get('src') ?? '';
  if (!sensitiveSource(source)) return null;
  return { flag: `${flag} ${value}`, reason: `bind-mounts the host's ${normalisePath(source)} into the container`, hostNamespace: normalisePath(source) === '/' };
}

function optionRisk(name: string, value: string): ContainerRisk | null {
  const lowered = value.toLowerCase();
  switch (name) {
    case '-v':
    case '--volume':
      return volumeRisk(name, value);
    case '--mount':
      return mountRisk(name, value);
    case '--net':
    case '--network':
      return lowered === 'host' ? { flag: `${name}=${value}`, reason: "shares the host's network namespace (the runner's firewall and resolver do not apply the same way)", hostNamespace: true } : null;
    case '--pid':
      return lowered === 'host' ? { flag: `${name}=${value}`, reason: "shares the host's PID namespace: it can see and signal every process, the runner's included", hostNamespace: true } : null;
    case '--ipc':
    case '--uts':
    case '--userns':
    case '--cgroupns':
      return lowered === 'host' ? { flag: `${name}=${value}`, reason: `shares the host's ${name.slice(2)} namespace`, hostNamespace: true } : null;
    case '--cap-add':
      return DANGEROUS_CAPS.has(lowered) ? { flag: `${name}=${value}`, reason: `adds the ${value} capability`, hostNamespace: false } : null;
    case '--security-opt':
      return /^(seccomp|apparmor)[=:]unconfined$|^label[=:]disable$|^systempaths[=:]unconfined$/.test(lowered)
        ? { flag: `${name}=${value}`, reason: 'turns off a kernel confinement the container would have', hostNamespace: false }
        : null;
    case '--device':
      return { flag: `${name}=${value}`, reason: 'passes a host device into the container', hostNamespace: false };
    default:
      return null;
  }
}

/** The `run`/`create` in a container CLI's argv (argv[0] is the program), or null for any other command. */
export function parseContainerRun(argv: readonly string[]): ContainerRun | null {
  let i = 1;
  // Global options.
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('-') || arg === '-') break;
    if (arg.includes('=')) i += 1;
    else i += GLOBAL_VALUE_OPTIONS.has(arg) ? 2 : 1;
  }
  let sub = argv[i];
  if (sub === 'container') {
    i += 1;
    sub = argv[i];
  }
  if (sub !== 'run' && sub !== 'create') return null;
  i += 1;
  const risks: ContainerRisk[] = [];
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      i += 1;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg : arg.slice(0, eq);
      if (RUN_BOOLEAN_LONG.has(name)) {
        // `--privileged=false` turns it off.
        const value = eq < 0 ? 'true' : arg.slice(eq + 1).toLowerCase();
        if (name === '--privileged' && value !== 'false') risks.push({ flag: arg, reason: 'gives the container every capability and every host device', hostNamespace: true });
        i += 1;
        continue;
      }
      const value = eq < 0 ? (argv[i + 1] ?? '') : arg.slice(eq + 1);
      const risk = optionRisk(name, value);
      if (risk) risks.push(risk);
      i += eq < 0 ? 2 : 1;
      continue;
    }
    // A cluster of short options: booleans, then at most one option that takes a value.
    let consumedNext = false;
    for (let k = 1; k < arg.length; k++) {
      const letter = arg[k] ?? '';
      if (RUN_BOOLEAN_SHORT.has(letter)) continue;
      const inline = arg.slice(k + 1).replace(/^=/, '');
      const value = inline !== '' ? inline : (argv[i + 1] ?? '');
      consumedNext = inline === '';
      const risk = optionRisk(`-${letter}`, value);
      if (risk) risks.push(risk);
      break;
    }
    i += consumedNext ? 2 : 1;
  }
  const image = argv[i] ?? null;
  return { subcommand: sub, image, command: argv.slice(i + 1), risks };
}
