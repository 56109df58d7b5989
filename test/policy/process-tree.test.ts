// The report's process tree, built from process events alone.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildProcessTree, processChain } from '../../src/policy/index.js';
import type { ProcessEvent, RunEvent } from '../../src/protocol/index.js';
import { isDeepFrozen } from './helpers.js';

let seq = 0;
function exec(pid: number, ppid: number, exe: string, argv: string[], ancestry: { pid: number; exe?: string; name?: string }[] = [], step?: string): ProcessEvent {
  return {
    kind: 'process',
    seq: ++seq,
    time: `2026-11-26T12:00:${String(seq % 60).padStart(2, '0')}.000Z`,
    action: 'exec',
    pid,
    ppid,
    exe,
    argv,
    cwd: '/work',
    uid: 0,
    process: { pid, name: argv[0]!, ancestry },
    ...(step ? { step } : {}),
  };
}
function exit(pid: number, exitCode: number): ProcessEvent {
  return { kind: 'process', seq: ++seq, time: '2026-11-26T12:01:00.000Z', action: 'exit', pid, exitCode };
}

describe('buildProcessTree', () => {
  it('links each exec to its nearest recorded ancestor, records exits, and keeps forked shells the ancestry names', () => {
    const events: RunEvent[] = [
      exec(10, 9, '/usr/bin/dash', ['sh', '-c', 'make'], [], 'build'),
      exec(11, 10, '/usr/bin/make', ['make'], [{ pid: 10, exe: '/usr/bin/dash', name: 'sh' }]),
      // make forked a shell (12) that never exec'd; it started cc.
      exec(13, 12, '/usr/bin/cc', ['cc', 'a.c'], [{ pid: 12, exe: '/usr/bin/make', name: 'make' }, { pid: 11, exe: '/usr/bin/make', name: 'make' }, { pid: 10, exe: '/usr/bin/dash', name: 'sh' }]),
      exit(13, 1),
      exit(11, 2),
    ];
    const tree = buildProcessTree(events);
    expect(tree.map((n) => [n.id, n.pid, n.parent, n.name ?? n.exe, n.exitCode])).toEqual([
      [0, 10, undefined, 'sh', undefined],
      [1, 11, 0, 'make', 2],
      [2, 12, 1, 'make', undefined],
      [3, 13, 2, 'cc', 1],
    ]);
    expect(tree[0]).toMatchObject({ argv: ['sh', '-c', 'make'], cwd: '/work', step: 'build' });
    expect(tree[2]!.startTime).toBeUndefined();
    expect(isDeepFrozen(tree)).toBe(true);
  });

  it('a pid that exits and comes back is a new node', () => {
    const tree = buildProcessTree([exec(20, 1, '/bin/a', ['a']), exit(20, 0), exec(20, 1, '/bin/b', ['b'])]);
    expect(tree.map((n) => [n.id, n.pid, n.exe])).toEqual([
      [0, 20, '/bin/a'],
      [1, 20, '/bin/b'],
    ]);
  });

  it('a process that execs twice is one node with its last program', () => {
    const tree = buildProcessTree([exec(30, 1, '/usr/bin/setpriv', ['setpriv']), exec(30, 1, '/usr/bin/dash', ['sh'])]);
    expect(tree).toHaveLength(1);
    expect(tree[0]!.exe).toBe('/usr/bin/dash');
  });

  it('property: every parent is an earlier node, every exec is a node', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(20), fc.nat(20), fc.boolean()), { maxLength: 60 }), (plan) => {
        const events: RunEvent[] = plan.map(([pid, parent, isExit]) =>
          isExit ? exit(pid + 100, 0) : exec(pid + 100, parent + 100, '/bin/x', ['x'], parent === pid ? [] : [{ pid: parent + 100 }]),
        );
        const tree = buildProcessTree(events);
        tree.forEach((node, index) => {
          expect(node.id).toBe(index);
          if (node.parent !== undefined) expect(node.parent).toBeLessThan(index);
        });
        const execPids = new Set(events.filter((e) => e.kind === 'process' && e.action === 'exec').map((e) => (e as ProcessEvent).pid));
        for (const pid of execPids) expect(tree.some((n) => n.pid === pid)).toBe(true);
      }),
    );
  });
});

describe('processChain', () => {
  it('root first, by tool name, falling back to the executable and then the pid', () => {
    expect(processChain({ pid: 5, exe: '/usr/bin/curl', ancestry: [{ pid: 4, name: 'sh' }, { pid: 3, exe: '/usr/bin/node', name: 'npm' }, { pid: 2 }] })).toBe('pid:2 → npm → sh → curl');
  });
});
