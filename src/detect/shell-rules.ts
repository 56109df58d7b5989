/**
 * Rules on where a freshly started shell's input comes from: a network socket
 * (a reverse shell) or a download tool (`curl … | sh`). The caller inspects the
 * process's descriptors (/proc/PID/fd, /proc/PID/net/*) and passes what it
 * found. Pure.
 */
import type { AncestorFacts, Finding, ProcessFacts } from './detection.js';
import { DOWNLOADERS, SCRIPT_INTERPRETERS, SHELLS, describeProcess, isOneOf, programNames } from './programs.js';

export type DescriptorKind = 'tcp' | 'udp' | 'unix' | 'pipe' | 'tty' | 'file' | 'other';

export interface Descriptor {
  readonly fd: number;
  readonly kind: DescriptorKind;
  /** For network sockets: the peer, `address:port` (`[v6]:port`). */
  readonly remote?: string;
}

/** A process at the other end of the shell's stdin/stdout that holds a network connection. */
export interface Relay {
  readonly process: ProcessFacts | AncestorFacts;
  readonly remote: string;
  /** How it is joined to the shell: a shared pipe, or a socket pair to the shell's parent. */
  readonly via: 'pipe' | 'socketpair';
}

export interface ShellStdio {
  readonly shell: ProcessFacts;
  readonly descriptors: readonly Descriptor[];
  readonly relay?: Relay | null;
}

export function isShell(process: { readonly exe: string | null; readonly argv?: readonly string[] }): boolean {
  if (!isOneOf(process, SHELLS)) return false;
  // busybox is a shell only as its sh/ash applet.
  const names = programNames(process);
  if (names.has('busybox') && names.size === 1) return ['sh', 'ash'].includes(process.argv?.[1] ?? '');
  return true;
}

const NETWORK: ReadonlySet<DescriptorKind> = new Set(['tcp', 'udp']);

export function detectReverseShell(io: ShellStdio, time: string): Finding[] {
  if (!isShell(io.shell)) return [];
  const direct = io.descriptors.filter((d) => (d.fd === 0 || d.fd === 1) && NETWORK.has(d.kind) && d.remote !== undefined);
  if (direct.length > 0) {
    const remote = direct[0]?.remote ?? '';
    return [
      {
        id: 'reverse-shell',
        time,
        process: io.shell,
        title: `Reverse shell: ${describeProcess(io.shell)} reads its commands from a network connection to ${remote}`,
        evidence: { remote, descriptors: direct.map((d) => ({ fd: d.fd, kind: d.kind, remote: d.remote })), via: 'socket' },
      },
    ];
  }
  const relayed = io.relay && io.descriptors.some((d) => (d.fd === 0 || d.fd === 1) && (d.kind === 'pipe' || d.kind === 'unix'));
  if (io.relay && relayed) {
    return [
      {
        id: 'reverse-shell',
        time,
        process: io.shell,
        title: `Reverse shell: ${describeProcess(io.shell)} is wired to ${describeProcess(io.relay.process)}, connected to ${io.relay.remote}`,
        evidence: {
          remote: io.relay.remote,
          via: io.relay.via,
          relay: { pid: io.relay.process.pid, exe: io.relay.process.exe, ...(io.relay.process.argv ? { argv: [...io.relay.process.argv] } : {}) },
        },
      },
    ];
  }
  return [];
}

/** Interpreter options that take the next argument as a value (so it is not the script). */
const VALUE_OPTIONS = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file', '-W', '-X', '-I', '-r', '-M']);

/**
 * The descriptor an interpreter reads its program from: 0 when it reads stdin
 * (`curl … | sh`, `sh -s`, `python3 -`), N for `/dev/fd/N` (`bash <(curl …)`),
 * null when it runs a script file or a `-c` string.
 */
export function programDescriptor(process: { readonly exe: string | null; readonly argv: readonly string[] }): number | null {
  if (!isOneOf(process, SCRIPT_INTERPRETERS)) return null;
  let args = process.argv.slice(1);
  const names = programNames(process);
  if (names.has('busybox') && names.size === 1) {
    if (!['sh', 'ash'].includes(args[0] ?? '')) return null;
    args = args.slice(1);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-' || arg === '-s') return 0;
    if (arg === '--') {
      const script = args[i + 1];
      return script === undefined ? 0 : fdOfPath(script);
    }
    if (arg === '-c' || arg === '-e' || arg === '-E' || arg === '-m' || arg === '--eval' || arg === '--print') return null;
    if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(arg) && isOneOf(process, SHELLS)) return null; // `-ec`, `-xc`
    if (/^-[a-zA-Z]*s[a-zA-Z]*$/.test(arg) && isOneOf(process, SHELLS)) return 0; // `-es`
    if (VALUE_OPTIONS.has(arg)) {
      i += 1;
      continue;
    }
    if (arg.startsWith('-') || arg.startsWith('+')) continue;
    return fdOfPath(arg);
  }
  return 0;
}

function fdOfPath(path: string): number | null {
  const match = /^\/(?:dev|proc\/self)\/fd\/(\d+)$/.exec(path);
  return match ? Number(match[1]) : null;
}

export interface PipedProgram {
  readonly interpreter: ProcessFacts;
  /** The process writing into the pipe the interpreter reads its program from. */
  readonly writer: ProcessFacts | AncestorFacts;
  /** The descriptor the program is read from (0: stdin). */
  readonly fd: number;
  /** The writer was seen holding the pipe (false: inferred from a download tool started beside it that has already exited). */
  readonly verified: boolean;
}

export function detectPipedProgram(piped: PipedProgram, time: string): Finding[] {
  if (!isOneOf(piped.writer, DOWNLOADERS)) return [];
  if (programDescriptor(piped.interpreter) !== piped.fd) return [];
  const writerArgv = piped.writer.argv ?? [];
  const url = writerArgv.find((a) => /^[a-z][a-z0-9+.-]*:\/\//i.test(a)) ?? writerArgv.slice(1).find((a) => !a.startsWith('-')) ?? null;
  return [
    {
      id: 'remote-script-piped',
      time,
      process: piped.interpreter,
      title: `A download was run as a program: ${describeProcess(piped.writer)} piped into ${describeProcess(piped.interpreter)}`,
      evidence: {
        url,
        downloader: { pid: piped.writer.pid, exe: piped.writer.exe, argv: [...writerArgv] },
        interpreter: { pid: piped.interpreter.pid, exe: piped.interpreter.exe, argv: [...piped.interpreter.argv] },
        fd: piped.fd,
        verified: piped.verified,
      },
    },
  ];
}
