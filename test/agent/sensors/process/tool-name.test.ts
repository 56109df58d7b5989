// Names a person would use for a process, and the container its cgroup names.
import { describe, expect, it } from 'vitest';
import { containerIdOf, toolName, unifiedCgroupOf } from '../../../../src/agent/sensors/process/tool-name.js';

describe('toolName', () => {
  it.each([
    ['/usr/bin/node', ['node', '/usr/bin/npm', 'ci'], 'npm'],
    ['/usr/bin/node', ['node', '/usr/lib/node_modules/npm/bin/npm-cli.js', 'install'], 'npm-cli'],
    ['/usr/bin/node', ['node', '--inspect', 'server.mjs'], 'server'],
    ['/usr/bin/node', ['node', '-e', 'require("child_process")'], 'node'],
    ['/usr/bin/python3.11', ['python3', '-m', 'pip', 'install', 'x'], 'pip'],
    ['/usr/bin/python3.11', ['python3', 'setup.py', 'build'], 'setup'],
    ['/usr/bin/dash', ['sh', '-c', 'curl x'], 'sh'],
    ['/usr/bin/bash', ['bash', '-e', '/home/runner/work/_temp/1234.sh'], '1234.sh'],
    ['/usr/bin/curl', ['curl', '-s', 'x'], 'curl'],
    [null, ['/opt/tool/bin/gh', 'api'], 'gh'],
  ] as const)('%s %j → %s', (exe, argv, name) => {
    expect(toolName(exe, argv)).toBe(name);
  });

  it('nothing known: no name', () => {
    expect(toolName(null, [])).toBeNull();
  });
});

describe('containers', () => {
  const id = 'f'.repeat(64);
  it.each([
    [`/docker/${id}`, id],
    [`/system.slice/docker-${id}.scope`, id],
    [`/kubepods.slice/kubepods-burstable.slice/cri-containerd-${id}.scope`, id],
    [`/machine.slice/libpod-${id}.scope/container`, id],
    [`/actions_job/${id}`, id],
    ['/user.slice/user-1000.slice/session-2.scope', null],
    ['/runwall/1a2b3c4d', null],
  ])('%s → %s', (path, expected) => {
    expect(containerIdOf(path)).toBe(expected);
  });

  it('reads the unified line of /proc/PID/cgroup (hybrid hosts list v1 controllers too)', () => {
    expect(unifiedCgroupOf('12:cpu,cpuacct:/x\n0::/runwall/1a2b3c4d\n')).toBe('/runwall/1a2b3c4d');
    expect(unifiedCgroupOf('12:cpu:/x\n')).toBeNull();
  });
});
