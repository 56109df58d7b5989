// Builders for the plain facts and events the detect rules read.
import type { ConnectionEvent, DnsEvent, RuleRef, Verdict } from '../../src/protocol/index.js';
import type { ProcessFacts } from '../../src/detect/index.js';

export const T0 = '2025-01-01T00:00:00.000Z';
const RULE: RuleRef = { source: 'default-deny', explanation: 'test' };

let nextPid = 1000;

export function proc(argv: readonly string[], overrides: Partial<ProcessFacts> = {}): ProcessFacts {
  nextPid += 1;
  const exe = overrides.exe !== undefined ? overrides.exe : argv[0]?.startsWith('/') ? argv[0] : `/usr/bin/${argv[0] ?? 'x'}`;
  return { pid: nextPid, ppid: 1, exe, argv, cwd: '/work', uid: 0, ancestry: [{ pid: 1, exe: '/usr/bin/bash' }], ...overrides };
}

export function dns(name: string, verdict: Verdict = 'audit', time = T0, answers: DnsEvent['answers'] = []): DnsEvent {
  return { kind: 'dns', seq: 1, time, name, qtype: 'A', transport: 'udp', client: '100.64.0.2', verdict, rule: RULE, rcode: 'NOERROR', answers, admitted: [] };
}

export function connection(destination: string, port: number, verdict: Verdict = 'blocked'): ConnectionEvent {
  return { kind: 'connection', seq: 1, time: T0, protocol: 'tcp', family: destination.includes(':') ? 6 : 4, destination, port, verdict, rule: RULE, count: 1 };
}

/** Everyday CI and build commands: none of them is a detection. */
export const ORDINARY_COMMANDS: readonly (readonly string[])[] = [
  ['git', 'init', '-q'],
  ['git', 'commit', '-qm', 'first'],
  ['git', 'clone', 'https://github.com/x/y'],
  ['make', '-j2'],
  ['cc', '-O2', '-c', 'main.c', '-o', 'main.o'],
  ['/usr/lib/gcc/x86_64-linux-gnu/12/cc1', '-quiet', 'main.c'],
  ['as', '--64', '-o', '/tmp/ccXYZ.o', '/tmp/ccXYZ.s'],
  ['/usr/bin/ld', '-o', 'main', '/tmp/ccABC.o'],
  ['npm', 'ci'],
  ['node', '/usr/lib/node_modules/npm/bin/npm-cli.js', 'ci'],
  ['sh', '-c', 'node install.js'],
  ['/bin/sh', '-c', 'make && make test'],
  ['bash', '-e', '/home/runner/work/_temp/abc.sh'],
  ['bash', '--noprofile', '--norc', '-e', '-o', 'pipefail', '/home/runner/work/_temp/abc.sh'],
  ['python3', 'setup.py', 'build'],
  ['curl', '-fsSL', '-o', 'tool.tgz', 'https://example.com/tool.tgz'],
  ['tar', 'xzf', 'tool.tgz'],
  ['docker', 'build', '-t', 'app', '.'],
  ['docker', 'run', '--rm', '-v', '/home/runner/work/app:/src', '-w', '/src', 'node:20', 'npm', 'test'],
  ['docker', 'run', '--rm', 'alpine', 'sh', '-c', 'echo --privileged'],
  ['go', 'test', './...'],
  ['/tmp/go-build123456/b001/pkg.test', '-test.v'],
  ['ip', 'addr'],
  ['nsenter', '--help'],
  ['systemctl', 'status', 'docker'],
];
