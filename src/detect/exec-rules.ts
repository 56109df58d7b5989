/**
 * Rules that look at one exec (program and arguments): sudo, binaries run from
 * temporary directories, firewall and resolver tools, privileged containers and
 * nsenter into the host. Pure.
 */
import { parseContainerRun } from './container-args.js';
import type { Finding, ProcessFacts } from './detection.js';
import { CONTAINER_CLIS, FIREWALL_TOOLS, PRIVILEGE_TOOLS, baseName, isOneOf, programNames } from './programs.js';

/** Directories droppers write to; a program executed from inside one is suspect. */
export const TEMP_DIRECTORIES: readonly RegExp[] = [
  /^\/tmp\//,
  /^\/var\/tmp\//,
  /^\/dev\/shm\//,
  /^\/run\/shm\//,
  /^\/home\/[^/]+\/Downloads\//,
  /^\/root\/Downloads\//,
];

/** Temporary build outputs that ordinary toolchains execute (`go test`, `go run`). */
const BUILD_TEMP_OUTPUTS: readonly RegExp[] = [/^\/tmp\/go-build\d+\//, /^\/tmp\/go-link-\d+\//];

export function tempExecReason(exe: string): string | null {
  if (/^\/memfd:/.test(exe)) return 'executed from an anonymous memory file (memfd): nothing on disk';
  const path = exe.replace(/ \(deleted\)$/, '');
  if (BUILD_TEMP_OUTPUTS.some((re) => re.test(path))) return null;
  if (!TEMP_DIRECTORIES.some((re) => re.test(path))) return null;
  return exe.endsWith(' (deleted)') ? 'executed from a temporary directory, and the file was deleted since' : 'executed from a temporary or download directory';
}

const NFT_READ_COMMANDS = new Set(['list', 'monitor', 'describe']);
const IPTABLES_WRITE_SHORT = /^-[a-zA-Z]*[AIDRFXPNZE]/;
const IPTABLES_WRITE_LONG = new Set(['--append', '--insert', '--delete', '--replace', '--flush', '--delete-chain', '--policy', '--new-chain', '--zero', '--rename-chain']);

/** Whether a firewall tool's arguments change rules (true) or only read them (false). */
export function firewallCommandWrites(names: ReadonlySet<string>, args: readonly string[]): boolean {
  const has = (name: string): boolean => names.has(name);
  if (has('nft')) {
    const words = args.filter((a) => !a.startsWith('-'));
    if (args.some((a) => a === '-f' || a === '--file' || a.startsWith('--file='))) return true;
    if (args.some((a) => a === '-c' || a === '--check')) return false;
    if (args.includes('-i') || args.includes('--interactive')) return true;
    return !(words.length > 0 && NFT_READ_COMMANDS.has(words[0] ?? ''));
  }
  if ([...names].some((n) => n.endsWith('-save'))) return false;
  if ([...names].some((n) => n.endsWith('-restore'))) return true;
  if ([...names].some((n) => n.includes('tables'))) {
    return args.some((a) => IPTABLES_WRITE_LONG.has(a.split('=')[0] ?? '') || (!a.startsWith('--') && IPTABLES_WRITE_SHORT.test(a)));
  }
  if (has('auditctl')) return !args.every((a) => a === '-l' || a === '-s' || a === '-v' || a === '--help');
  if (has('ufw')) return !(args[0] === 'status' || args[0] === 'show');
  return true;
}

const RESOLVER_CHANGES = new Set(['dns', 'domain', 'revert', 'default-route', 'llmnr', 'mdns', 'dnssec', 'dnsovertls', 'nta', 'flush-caches']);

/** `pkill runwall`, `systemctl stop runwall`, `resolvectl dns eth0 1.2.3.4`: reaching for the guard by command. */
function guardCommand(names: ReadonlySet<string>, args: readonly string[]): string | null {
  const mentionsGuard = args.some((a) => /runwall/i.test(a));
  if ((names.has('pkill') || names.has('killall') || names.has('kill')) && mentionsGuard) return 'signals the runwall agent';
  if (names.has('systemctl') && mentionsGuard && args.some((a) => ['stop', 'kill', 'disable', 'mask', 'restart'].includes(a))) return 'stops the runwall service';
  if (names.has('systemctl') && args.some((a) => a === 'systemd-resolved' || a === 'systemd-resolved.service') && args.some((a) => ['stop', 'restart', 'disable', 'mask'].includes(a))) {
    return 'stops or restarts the system resolver';
  }
  if (names.has('resolvectl') && RESOLVER_CHANGES.has(args[0] ?? '')) return 'changes the system resolver';
  return null;
}

const NSENTER_NAMESPACE_OPTIONS = /^--(mount|uts|ipc|net|pid|user|cgroup|time)=\/proc\/1\/ns\//;

/** Whether an nsenter command line enters PID 1's namespaces (the host's, outside a sandbox). */
export function nsenterTargetsInit(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') return false;
    if (arg === '-t' || arg === '--target') return args[i + 1] === '1';
    if (arg === '--target=1' || arg === '-t1') return true;
    if (NSENTER_NAMESPACE_OPTIONS.test(arg)) return true;
    if (/^-[a-zA-Z]*t$/.test(arg) && !arg.startsWith('--')) return args[i + 1] === '1';
    if (!arg.startsWith('-')) return false; // the program nsenter runs
  }
  return false;
}

export function detectExec(process: ProcessFacts, time: string): Finding[] {
  const names = programNames(process);
  const args = process.argv.slice(1);
  const findings: Finding[] = [];
  const argvText = process.argv.join(' ');

  if (isOneOf(process, PRIVILEGE_TOOLS)) {
    findings.push({ id: 'sudo-used', time, process, evidence: { program: baseName(process.exe ?? process.argv[0] ?? ''), command: argvText } });
  }

  if (process.exe) {
    const reason = tempExecReason(process.exe);
    if (reason) findings.push({ id: 'exec-from-temp', time, process, evidence: { exe: process.exe, reason, command: argvText } });
  }

  if (isOneOf(process, FIREWALL_TOOLS)) {
    const writes = firewallCommandWrites(names, args);
    findings.push({
      id: 'guard-tamper',
      time,
      process,
      severity: writes ? 'critical' : 'medium',
      title: writes ? 'The job changed firewall rules' : 'The job read the firewall rules',
      evidence: { what: writes ? 'firewall-change' : 'firewall-read', command: argvText },
    });
  } else {
    const reason = guardCommand(names, args);
    if (reason) findings.push({ id: 'guard-tamper', time, process, severity: 'critical', title: `The job ${reason}`, evidence: { what: 'guard-command', reason, command: argvText } });
  }

  if (isOneOf(process, CONTAINER_CLIS)) {
    const run = parseContainerRun(process.argv);
    if (run && run.risks.length > 0) {
      findings.push({
        id: 'privileged-container',
        time,
        process,
        severity: run.risks.some((r) => r.hostNamespace) ? 'high' : 'medium',
        evidence: { image: run.image, flags: run.risks.map((r) => r.flag), reasons: run.risks.map((r) => r.reason), command: argvText },
      });
    }
    if (run && run.risks.some((r) => r.flag.startsWith('--pid')) && run.command.some((a) => baseName(a) === 'nsenter')) {
      findings.push({ id: 'host-escape', time, process, evidence: { via: 'container', image: run.image, command: argvText } });
    }
  }

  if (names.has('nsenter') && nsenterTargetsInit(args)) {
    findings.push({ id: 'host-escape', time, process, evidence: { via: 'nsenter', command: argvText } });
  }
  return findings;
}
