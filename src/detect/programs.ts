/**
 * Which program a process is, by the names the rules care about. A process is
 * known by its executable and by argv[0] (`exec -a` and busybox applets make
 * them differ); both are checked. Pure.
 */
import type { AncestorFacts, ProcessFacts } from './detection.js';

export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
}

/** Lower-case base names of the executable and argv[0], without a version suffix (`python3.11` → also `python3`, `python`). */
export function programNames(process: { readonly exe: string | null; readonly argv?: readonly string[] }): ReadonlySet<string> {
  const names = new Set<string>();
  const add = (raw: string | null | undefined): void => {
    if (!raw) return;
    const name = baseName(raw).toLowerCase();
    if (name === '') return;
    names.add(name);
    const unversioned = name.replace(/[\d.]+$/, '');
    if (unversioned !== '' && unversioned !== name) names.add(unversioned);
  };
  add(process.exe);
  add(process.argv?.[0]);
  // A login shell's argv[0] is `-bash`.
  for (const name of [...names]) if (name.startsWith('-')) names.add(name.slice(1));
  return names;
}

export function isOneOf(process: { readonly exe: string | null; readonly argv?: readonly string[] }, set: ReadonlySet<string>): boolean {
  for (const name of programNames(process)) if (set.has(name)) return true;
  return false;
}

export const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish', 'csh', 'tcsh', 'busybox']);

/** Interpreters that run a program read from stdin when given no script (`curl … | python3`). */
export const SCRIPT_INTERPRETERS: ReadonlySet<string> = new Set([...SHELLS, 'python', 'perl', 'ruby', 'node', 'php', 'lua']);

export const DOWNLOADERS: ReadonlySet<string> = new Set(['curl', 'wget', 'wget2', 'fetch', 'aria2c', 'http', 'https', 'xh', 'lwp-download', 'lwp-request']);

/** Tools that relay a stream between a network socket and another process (the far end of a reverse shell). */
export const NETWORK_RELAYS: ReadonlySet<string> = new Set([
  'nc',
  'ncat',
  'netcat',
  'nc.openbsd',
  'nc.traditional',
  'socat',
  'telnet',
  'openssl',
  'cryptcat',
  'pwncat',
]);

export const PRIVILEGE_TOOLS: ReadonlySet<string> = new Set(['sudo', 'doas', 'pkexec', 'su', 'run0']);

export const FIREWALL_TOOLS: ReadonlySet<string> = new Set([
  'nft',
  'iptables',
  'ip6tables',
  'iptables-nft',
  'ip6tables-nft',
  'iptables-legacy',
  'ip6tables-legacy',
  'iptables-restore',
  'iptables-save',
  'ip6tables-save',
  'iptables-nft-save',
  'iptables-legacy-save',
  'ip6tables-restore',
  'iptables-nft-restore',
  'iptables-legacy-restore',
  'xtables-nft-multi',
  'xtables-legacy-multi',
  'ebtables',
  'arptables',
  'ufw',
  'firewall-cmd',
  'auditctl',
]);

export const CONTAINER_CLIS: ReadonlySet<string> = new Set(['docker', 'podman', 'nerdctl']);

/** Processes whose memory holds a CI job's secrets (GitHub's runner and its hosted-runner agents). */
export const RUNNER_PROCESSES: ReadonlySet<string> = new Set(['runner.worker', 'runner.listener', 'provjobd', 'hosted-compute-agent']);

export function isRunnerProcess(process: { readonly exe: string | null; readonly argv?: readonly string[] }): boolean {
  if (isOneOf(process, RUNNER_PROCESSES)) return true;
  // The runner is also started as `dotnet Runner.Worker.dll`.
  return (process.argv ?? []).slice(0, 2).some((arg) => /(^|\/)Runner\.(Worker|Listener)(\.dll)?$/i.test(arg));
}

export function describeProcess(process: ProcessFacts | AncestorFacts): string {
  const name = process.argv?.[0] ? baseName(process.argv[0]) : process.exe ? baseName(process.exe) : '?';
  return `${name} (pid ${process.pid})`;
}
