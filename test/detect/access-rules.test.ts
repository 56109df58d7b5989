import { describe, expect, it } from 'vitest';
import { Detector, detectAgentSignal, detectGuardedFileChange, detectMemoryAccess, isGuardedPath } from '../../src/detect/index.js';
import { T0, proc } from './helpers.js';

describe('memory reads', () => {
  const reader = proc(['python3', 'memdump.py']);

  it("reading the runner worker's memory is critical and names reader and target", () => {
    const [finding] = detectMemoryAccess({ accessor: reader, target: { pid: 77, exe: '/usr/bin/sleep', argv: ['Runner.Worker', '100'] }, method: 'proc-mem', succeeded: true }, T0);
    expect(finding).toMatchObject({ id: 'process-memory-read', severity: 'critical', process: reader });
    expect(finding?.title).toMatch(/runner worker/);
    expect(finding?.evidence).toMatchObject({ method: 'proc-mem', reader: { pid: reader.pid }, target: { pid: 77 }, runnerWorker: true });
  });

  it('the runner started as `dotnet Runner.Worker.dll` is the runner too', () => {
    const [finding] = detectMemoryAccess({ accessor: reader, target: { pid: 5, exe: '/usr/bin/dotnet', argv: ['dotnet', '/a/bin/Runner.Worker.dll'] }, method: 'ptrace-attach', succeeded: false }, T0);
    expect(finding?.severity).toBe('critical');
    expect(finding?.evidence['succeeded']).toBe(false);
  });

  it('any other process is high; the agent is critical; oneself and a debugger on its own child are nothing', () => {
    expect(detectMemoryAccess({ accessor: reader, target: { pid: 9, exe: '/usr/bin/node' }, method: 'process_vm_readv', succeeded: true }, T0)[0]?.severity).toBe('high');
    expect(detectMemoryAccess({ accessor: reader, target: { pid: 9, exe: '/usr/bin/node' }, method: 'ptrace-seize', succeeded: true, targetIsAgent: true }, T0)[0]?.severity).toBe('critical');
    expect(detectMemoryAccess({ accessor: reader, target: { pid: reader.pid, exe: reader.exe }, method: 'proc-mem', succeeded: true }, T0)).toEqual([]);
    expect(detectMemoryAccess({ accessor: reader, target: { pid: 9, exe: '/x' }, targetParent: reader.pid, method: 'ptrace-seize', succeeded: true }, T0)).toEqual([]);
  });

  it('the Detector reports one reader-target pair once', () => {
    const detector = new Detector();
    const access = { accessor: reader, target: { pid: 77, exe: '/usr/bin/sleep' }, method: 'proc-mem' as const, succeeded: true };
    expect(detector.observe({ kind: 'memory-access', time: T0, access })).toHaveLength(1);
    expect(detector.observe({ kind: 'memory-access', time: T0, access: { ...access, method: 'ptrace-attach' } })).toHaveLength(0);
    expect(detector.observe({ kind: 'memory-access', time: T0, access: { ...access, target: { pid: 78, exe: null } } })).toHaveLength(1);
  });
});

describe('guarded files and the agent', () => {
  it('resolver, hosts and container engine configuration are guarded; other /etc files are not', () => {
    for (const path of ['/etc/resolv.conf', '/etc/hosts', '/etc/systemd/resolved.conf', '/etc/systemd/resolved.conf.d/x.conf', '/etc/docker/daemon.json', '/run/systemd/resolve/stub-resolv.conf']) {
      expect({ path, guarded: isGuardedPath(path) }).toEqual({ path, guarded: true });
    }
    for (const path of ['/etc/passwd', '/etc/hostname', '/etc/hosts.allow', '/home/runner/work/x/hosts']) expect({ path, guarded: isGuardedPath(path) }).toEqual({ path, guarded: false });
  });

  it('a write to /etc/hosts is guard tampering with the path and the writer', () => {
    const writer = proc(['tee', '-a', '/etc/hosts']);
    const [finding] = detectGuardedFileChange({ process: writer, path: '/etc/hosts', operation: 'write' }, T0);
    expect(finding).toMatchObject({ id: 'guard-tamper', severity: 'high', evidence: { what: 'guarded-file', path: '/etc/hosts', operation: 'write' }, process: writer });
  });

  it('a signal to the agent is critical; signal 0 is a probe', () => {
    const sender = proc(['kill', '-9', '500']);
    expect(detectAgentSignal({ sender, agentPid: 500, signal: 9, succeeded: true }, T0)[0]?.severity).toBe('critical');
    expect(detectAgentSignal({ sender, agentPid: 500, signal: 0, succeeded: true }, T0)[0]?.severity).toBe('medium');
    expect(detectAgentSignal({ sender: { ...sender, pid: 500 }, agentPid: 500, signal: 15, succeeded: true }, T0)).toEqual([]);
  });
});
