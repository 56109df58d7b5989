/**
 * What a person calls a process, and which container it runs in. Pure.
 */

export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const cut = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return cut === '' ? path : cut;
}

/** Interpreters whose first non-option argument is the program a person means (`node /usr/bin/npm` is npm). */
const INTERPRETER = /^(node|nodejs|python[0-9.]*|ruby[0-9.]*|perl[0-9.]*|php[0-9.]*|bash|sh|dash|zsh|ksh|deno|bun)$/;

/**
 * The tool name of a process: for an interpreter running a script, the
 * script's base name without a `.js`/`.cjs`/`.mjs`/`.py` ending (`npm`,
 * `npm-cli`, `setup`); `python -m pip` is `pip`; otherwise the name it was
 * called by (argv[0]: `sh`, `cc`, where the executable is dash or gcc-12),
 * else the executable's base name. A name is for reading; events keep `exe`,
 * which the process cannot choose.
 */
export function toolName(exe: string | null, argv: readonly string[]): string | null {
  const called = argv[0] ? baseName(argv[0]) : '';
  const name = called !== '' && !/\s/.test(called) ? called : exe ? baseName(exe) : '';
  if (name === '') return null;
  if (!INTERPRETER.test(name) && !(exe && INTERPRETER.test(baseName(exe)))) return name;
  for (let i = 1; i < argv.length && i < 16; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-m' && /^python/.test(name) && argv[i + 1]) return argv[i + 1]!.split('.')[0] ?? name;
    if (arg === '--' || (arg === '-c' && /^(python|bash|sh|dash|zsh|ksh)/.test(name))) return name;
    if (/^(-e|--eval|-p|--print)$/.test(arg) && /^(node|perl|ruby|deno|bun)/.test(name)) return name;
    if (arg.startsWith('-')) continue;
    const script = baseName(arg).replace(/\.(c|m)?js$|\.py$/, '');
    return script === '' ? name : script;
  }
  return name;
}

/**
 * A container id in a cgroup path, when the process runs in a container:
 * Docker (`/docker/ID`, `docker-ID.scope`), containerd/CRI
 * (`cri-containerd-ID.scope`), Podman (`libpod-ID.scope`), GitHub's job
 * containers (`/actions_job/ID`). An id is 64 hex digits.
 */
export function containerIdOf(cgroupPath: string): string | null {
  const segments = cgroupPath.split('/').reverse();
  for (const segment of segments) {
    const match = /^(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?$/.exec(segment);
    if (match) return match[1]!;
  }
  return null;
}

/** The cgroup v2 path of a process from the text of /proc/PID/cgroup (the `0::` line), or null. */
export function unifiedCgroupOf(procCgroupText: string): string | null {
  for (const line of procCgroupText.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3).trim() || '/';
  }
  return null;
}
