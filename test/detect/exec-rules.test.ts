import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Detector, detectExec, firewallCommandWrites, nsenterTargetsInit, parseContainerRun, programNames, tempExecReason } from '../../src/detect/index.js';
import { ORDINARY_COMMANDS, T0, proc } from './helpers.js';

const ids = (argv: readonly string[], overrides = {}): string[] => detectExec(proc(argv, overrides), T0).map((f) => f.id);

describe('exec rules', () => {
  it('ordinary build commands raise nothing', () => {
    for (const argv of ORDINARY_COMMANDS) expect({ argv, ids: ids(argv) }).toEqual({ argv, ids: [] });
  });

  it('sudo and its relatives are reported, by executable or argv[0]', () => {
    expect(ids(['sudo', '-n', 'true'])).toEqual(['sudo-used']);
    expect(ids(['sudo', 'apt-get', 'install', 'x'])).toContain('sudo-used');
    expect(ids(['doas', 'sh'])).toEqual(['sudo-used']);
    expect(ids(['su', '-c', 'id'], { exe: '/bin/su' })).toEqual(['sudo-used']);
    // sudo executes its command: that exec is the command, not sudo again.
    expect(ids(['apt-get', 'install', 'x'])).toEqual([]);
  });

  it('binaries from temporary and download directories are reported; go build outputs are not', () => {
    expect(tempExecReason('/tmp/x')).toMatch(/temporary/);
    expect(tempExecReason('/var/tmp/a/b')).toMatch(/temporary/);
    expect(tempExecReason('/dev/shm/p')).toMatch(/temporary/);
    expect(tempExecReason('/home/runner/Downloads/tool')).toMatch(/download/);
    expect(tempExecReason('/tmp/x (deleted)')).toMatch(/deleted/);
    expect(tempExecReason('/memfd:payload (deleted)')).toMatch(/memfd/);
    expect(tempExecReason('/tmp/go-build9/b001/exe/main')).toBeNull();
    expect(tempExecReason('/usr/bin/tmp')).toBeNull();
    expect(tempExecReason('/home/runner/work/tmp/x')).toBeNull();
    expect(ids(['/tmp/payload'])).toEqual(['exec-from-temp']);
    // A script in /tmp run by an interpreter: the executable is the interpreter.
    expect(ids(['sh', '/tmp/build.sh'])).toEqual([]);
  });

  it('firewall tools are guard tampering, critical when they change rules', () => {
    const nftList = detectExec(proc(['nft', 'list', 'ruleset']), T0);
    expect(nftList.map((f) => [f.id, f.severity])).toEqual([['guard-tamper', 'medium']]);
    const flush = detectExec(proc(['nft', 'flush', 'ruleset']), T0);
    expect(flush.map((f) => [f.id, f.severity])).toEqual([['guard-tamper', 'critical']]);
    expect(detectExec(proc(['iptables', '-L']), T0)[0]?.severity).toBe('medium');
    expect(detectExec(proc(['iptables', '-t', 'nat', '-vnL']), T0)[0]?.severity).toBe('medium');
    expect(detectExec(proc(['iptables', '-F']), T0)[0]?.severity).toBe('critical');
    expect(detectExec(proc(['iptables', '-I', 'OUTPUT', '-j', 'ACCEPT']), T0)[0]?.severity).toBe('critical');
    expect(detectExec(proc(['ip6tables-restore']), T0)[0]?.severity).toBe('critical');
    expect(detectExec(proc(['iptables-save']), T0)[0]?.severity).toBe('medium');
    expect(detectExec(proc(['xtables-nft-multi', 'iptables', '-A', 'X'], { exe: '/usr/sbin/xtables-nft-multi' }), T0)[0]?.id).toBe('guard-tamper');
    expect(ids(['pkill', '-f', 'runwall'])).toEqual(['guard-tamper']);
    expect(ids(['systemctl', 'stop', 'runwall-agent'])).toEqual(['guard-tamper']);
    expect(ids(['resolvectl', 'dns', 'eth0', '203.0.113.9'])).toEqual(['guard-tamper']);
    expect(ids(['resolvectl', 'status'])).toEqual([]);
  });

  it('firewallCommandWrites: nft read commands never count as writes', () => {
    fc.assert(
      fc.property(fc.constantFrom('list', 'monitor', 'describe'), fc.array(fc.constantFrom('ruleset', 'table', 'inet', 'x', '-a', '-j'), { maxLength: 4 }), (verb, rest) => {
        expect(firewallCommandWrites(programNames({ exe: '/usr/sbin/nft', argv: ['nft'] }), [verb, ...rest])).toBe(false);
      }),
    );
  });
});

describe('containers and the host', () => {
  it('reads docker run flags until the image, not the container command', () => {
    const run = parseContainerRun(['docker', '-H', 'unix:///x', 'run', '-it', '--rm', '--privileged', '-v', '/:/host', '--net=host', '--pid', 'host', 'alpine', 'sh', '-c', '--privileged']);
    expect(run?.image).toBe('alpine');
    expect(run?.command).toEqual(['sh', '-c', '--privileged']);
    expect(run?.risks.map((r) => r.flag)).toEqual(['--privileged', '-v /:/host', '--net=host', '--pid=host']);
    expect(parseContainerRun(['docker', 'container', 'create', '--mount', 'type=bind,source=/,target=/h', 'x'])?.risks).toHaveLength(1);
    expect(parseContainerRun(['docker', 'run', '-v/var/run/docker.sock:/var/run/docker.sock', 'x'])?.risks).toHaveLength(1);
    expect(parseContainerRun(['docker', 'run', '--privileged=false', 'x'])?.risks).toEqual([]);
    expect(parseContainerRun(['docker', 'ps'])).toBeNull();
    expect(parseContainerRun(['podman', 'run', '--cap-add=SYS_ADMIN', '--security-opt', 'seccomp=unconfined', 'x'])?.risks).toHaveLength(2);
  });

  it('privileged and host-namespace containers are reported; a plain workspace mount is not', () => {
    expect(ids(['docker', 'run', '--privileged', 'alpine'])).toEqual(['privileged-container']);
    expect(ids(['docker', 'run', '-v', '/:/mnt', 'alpine'])).toEqual(['privileged-container']);
    expect(ids(['docker', 'run', '--network', 'host', 'alpine'])).toEqual(['privileged-container']);
    expect(ids(['docker', 'run', '--pid=host', 'alpine', 'nsenter', '-t', '1', '-m', 'sh'])).toEqual(['privileged-container', 'host-escape']);
    expect(ids(['docker', 'run', '-v', '/home/runner/work/x:/x', 'alpine'])).toEqual([]);
  });

  it('docker run flags are never read from the container command (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('--privileged', '-v', '/:/h', '--pid=host', '--net=host', 'sh', '-c', 'x'), { maxLength: 6 }), (command) => {
        expect(parseContainerRun(['docker', 'run', '--rm', 'alpine', ...command])?.risks).toEqual([]);
      }),
    );
  });

  it('nsenter into PID 1 is a host escape; into another process it is not', () => {
    expect(nsenterTargetsInit(['-t', '1', '-m', '-u', '-n', '-p'])).toBe(true);
    expect(nsenterTargetsInit(['--target=1', '--all'])).toBe(true);
    expect(nsenterTargetsInit(['-at', '1'])).toBe(true);
    expect(nsenterTargetsInit(['--net=/proc/1/ns/net', 'ip', 'a'])).toBe(true);
    expect(nsenterTargetsInit(['-t', '4242', '-n'])).toBe(false);
    expect(nsenterTargetsInit(['--net=/run/netns/x', 'sh'])).toBe(false);
    expect(ids(['nsenter', '-t', '1', '-m', 'sh'])).toEqual(['host-escape']);
  });
});

describe('Detector', () => {
  it('reports one detection per process and rule, with the rule text and the process', () => {
    const detector = new Detector();
    const sudo = proc(['sudo', 'id']);
    const first = detector.observe({ kind: 'exec', time: T0, process: sudo });
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ kind: 'detection', id: 'sudo-used', severity: 'medium', process: { pid: sudo.pid, exe: '/usr/bin/sudo' } });
    expect(first[0]?.remedy).toMatch(/sudo/);
    expect(detector.observe({ kind: 'exec', time: T0, process: sudo })).toEqual([]);
  });

  it('stops reporting one id after the limit and counts the rest', () => {
    const detector = new Detector({ maxPerId: 3 });
    const drafts = Array.from({ length: 10 }, () => detector.observe({ kind: 'exec', time: T0, process: proc(['/tmp/x']) })).flat();
    expect(drafts).toHaveLength(3);
    expect(drafts[2]?.evidence['note']).toMatch(/further/);
    expect(detector.suppressed.get('exec-from-temp')).toBe(7);
  });

  it('carries the step of the process', () => {
    const drafts = new Detector().observe({ kind: 'exec', time: T0, process: proc(['sudo', 'id'], { step: 'build' }) });
    expect(drafts[0]?.step).toBe('build');
  });
});
