// What the file sensor reports from a stream of changes, with the file system and processes faked.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileActivity, MAX_SOURCE_FINDINGS, type Writer } from '../../../../src/agent/sensors/file/file-activity.js';
import type { FileChange } from '../../../../src/agent/sensors/file/file-changes.js';
import { INDIVIDUAL_PER_DIRECTORY, INDIVIDUAL_PER_RUN, MAX_FOLD_DIRECTORIES } from '../../../../src/agent/sensors/file/workspace-paths.js';
import { EventPipeline } from '../../../../src/agent/pipeline/event-pipeline.js';
import { compileSourceWriters, parseSourceWriters } from '../../../../src/policy/index.js';
import type { RunEvent } from '../../../../src/protocol/index.js';

const WRITERS: Record<number, Writer> = {
  10: { exe: '/usr/bin/sed', argv: ['sed', '-i', 's/a/b/', 'src/a.ts'], ref: { pid: 10, exe: '/usr/bin/sed', argv: ['sed', '-i', 's/a/b/', 'src/a.ts'] } },
  11: { exe: '/usr/bin/node', argv: ['node', '/w/node_modules/.bin/prettier', '--write'], ref: { pid: 11, exe: '/usr/bin/node' } },
  12: { exe: '/usr/bin/npm', argv: ['npm', 'ci'], ref: { pid: 12, exe: '/usr/bin/npm' } },
};

/** A fake workspace: contents by path, the source set with its start hashes, and a pipeline collecting events. */
function setup(sourceFiles: Record<string, string>, writers = '', stepOf?: (pid: number) => string | undefined) {
  const disk = new Map<string, string>(Object.entries(sourceFiles));
  const pipeline = new EventPipeline();
  const events: RunEvent[] = [];
  pipeline.subscribe((e) => events.push(e));
  const paths = Object.keys(sourceFiles).sort();
  const activity = new FileActivity({
    emit: (e) => pipeline.emit(e),
    now: () => '2026-11-26T12:00:00.000Z',
    source: { paths, hashes: new Map(paths.map((p) => [p, `h(${sourceFiles[p]})`])), stamps: new Map(paths.map((p) => [p, `s(${sourceFiles[p]})`])) },
    hash: (path) => (disk.has(path) ? `h(${disk.get(path)})` : null),
    stamp: (path) => (disk.has(path) ? `s(${disk.get(path)})` : null),
    writer: (pid) => WRITERS[pid] ?? { exe: null, argv: [], ref: { pid } },
    excuse: compileSourceWriters(parseSourceWriters(writers ? writers.split('\n') : [], 'test')),
    stepOf,
  });
  const files = () => events.filter((e) => e.kind === 'file');
  const findings = () => events.filter((e) => e.kind === 'detection');
  return { disk, activity, events, files, findings };
}

const change = (kind: 'create' | 'modify' | 'close-write' | 'delete', path: string, pid = 10): FileChange => ({ kind, path, pid, object: null });

describe('FileActivity: source', () => {
  it('a write to source is one file event with the new hash and one finding naming the writer and both hashes', () => {
    const { disk, activity, files, findings } = setup({ 'src/a.ts': 'a' });
    disk.set('src/a.ts', 'b');
    activity.apply(change('modify', 'src/a.ts'));
    activity.apply(change('modify', 'src/a.ts'));
    activity.apply(change('close-write', 'src/a.ts'));
    expect(files()).toEqual([expect.objectContaining({ action: 'write', path: 'src/a.ts', source: true, sha256: 'h(b)', process: WRITERS[10]!.ref })]);
    expect(findings()).toEqual([
      expect.objectContaining({
        id: 'source-tampered',
        severity: 'high',
        process: WRITERS[10]!.ref,
        evidence: expect.objectContaining({ path: 'src/a.ts', action: 'write', sha256Before: 'h(a)', sha256After: 'h(b)', excused: false }),
      }),
    ]);
  });

  it('one finding per file and process, however many writes; a second process gets its own', () => {
    const { disk, activity, files, findings } = setup({ 'src/a.ts': 'a' });
    for (const [pid, content] of [[10, 'b'], [10, 'c'], [11, 'd']] as const) {
      disk.set('src/a.ts', content);
      activity.apply(change('modify', 'src/a.ts', pid));
      activity.apply(change('close-write', 'src/a.ts', pid));
    }
    expect(files()).toHaveLength(3);
    expect(findings().map((f) => f.kind === 'detection' && f.process?.pid)).toEqual([10, 11]);
  });

  it('written and put back: the write, and at the end that it was restored, with the content seen in between', () => {
    const { disk, activity, findings } = setup({ 'src/a.ts': 'a' });
    disk.set('src/a.ts', 'implant');
    activity.apply(change('modify', 'src/a.ts'));
    activity.apply(change('close-write', 'src/a.ts'));
    disk.set('src/a.ts', 'a');
    activity.apply(change('modify', 'src/a.ts', 11));
    activity.apply(change('close-write', 'src/a.ts', 11));
    activity.finish();
    const restored = findings().at(-1);
    expect(restored).toMatchObject({ severity: 'high', evidence: { restored: true, sha256Before: 'h(a)', sha256After: 'h(a)', sha256Seen: ['h(implant)'], changes: 2 } });
  });

  it('a file only opened for writing (touch) is no write; one written through a mapping (no modify) is, by its hash', () => {
    const { disk, activity, files } = setup({ 'src/a.ts': 'a', 'src/b.ts': 'b' });
    activity.apply(change('close-write', 'src/a.ts'));
    disk.set('src/b.ts', 'mapped');
    activity.apply(change('close-write', 'src/b.ts'));
    expect(files().map((e) => e.kind === 'file' && e.path)).toEqual(['src/b.ts']);
  });

  it('a write still open when the job ends is reported at the end', () => {
    const { disk, activity, files } = setup({ 'src/a.ts': 'a' });
    disk.set('src/a.ts', 'x');
    activity.apply(change('modify', 'src/a.ts'));
    expect(files()).toEqual([]);
    activity.finish();
    expect(files()).toEqual([expect.objectContaining({ action: 'write', path: 'src/a.ts', sha256: 'h(x)' })]);
  });

  it('renames: a source file moved away, a file moved over source, a directory of source moved', () => {
    const { disk, activity, findings } = setup({ 'src/a.ts': 'a', 'src/lib/b.ts': 'b', 'src/lib/c.ts': 'c', 'VERSION': '1' });
    disk.delete('src/a.ts');
    activity.apply({ kind: 'rename', pid: 10, object: null, from: 'src/a.ts', to: 'src/a.bak' });
    disk.set('VERSION', '2');
    activity.apply({ kind: 'rename', pid: 10, object: null, from: 'VERSION.tmp', to: 'VERSION' });
    activity.apply({ kind: 'directory-rename', pid: 10, object: null, from: 'src/lib', to: null });
    const byPath = Object.fromEntries(findings().map((f) => [f.kind === 'detection' && f.evidence['path'], f.kind === 'detection' && f.evidence]));
    expect(byPath['src/a.ts']).toMatchObject({ action: 'rename', to: 'src/a.bak' });
    expect(byPath['VERSION']).toMatchObject({ action: 'create', sha256After: 'h(2)' });
    expect(byPath['src/lib/b.ts']).toMatchObject({ action: 'rename', to: null });
    expect(byPath['src/lib/c.ts']).toMatchObject({ action: 'rename', to: null });
  });

  it('an allowed writer is excused at severity info, and a restore made only by allowed writers too', () => {
    const { disk, activity, findings } = setup({ 'src/a.ts': 'a', 'package.json': '{}' }, 'prettier\nnpm path:package.json');
    disk.set('src/a.ts', 'formatted');
    activity.apply(change('modify', 'src/a.ts', 11));
    activity.apply(change('close-write', 'src/a.ts', 11));
    disk.set('package.json', '{"v":2}');
    activity.apply(change('modify', 'package.json', 12));
    activity.apply(change('close-write', 'package.json', 12));
    disk.set('package.json', '{}');
    activity.apply(change('modify', 'package.json', 12));
    activity.apply(change('close-write', 'package.json', 12));
    activity.finish();
    expect(findings().map((f) => f.kind === 'detection' && [f.severity, f.evidence['excusedBy']])).toEqual([
      ['info', 'prettier'],
      ['info', 'npm path:package.json'],
      ['info', ['npm path:package.json']],
    ]);
  });

  it('a source file that changed without any event (events lost) is still a finding at the end, without a writer', () => {
    const { disk, activity, findings } = setup({ 'src/a.ts': 'a', 'src/b.ts': 'b', 'src/c.ts': 'c' });
    disk.set('src/a.ts', 'changed behind our back');
    disk.delete('src/b.ts');
    activity.finish();
    expect(findings().map((f) => f.kind === 'detection' && [f.evidence['path'], f.evidence['action'], f.evidence['sha256After'], f.process])).toEqual([
      ['src/a.ts', 'write', 'h(changed behind our back)', undefined],
      ['src/b.ts', 'delete', null, undefined],
    ]);
    expect(activity.counts.unseen).toBe(2);
  });

  it(`lists at most ${MAX_SOURCE_FINDINGS} findings one by one, then says how many more`, () => {
    const files = Object.fromEntries(Array.from({ length: MAX_SOURCE_FINDINGS + 5 }, (_, i) => [`src/f${i}.ts`, 'x']));
    const { disk, activity, findings, events } = setup(files);
    for (const path of Object.keys(files)) {
      disk.set(path, 'y');
      activity.apply(change('modify', path));
      activity.apply(change('close-write', path));
    }
    activity.finish();
    expect(findings()).toHaveLength(MAX_SOURCE_FINDINGS + 1);
    expect(findings().at(-1)).toMatchObject({ evidence: { more: 5 } });
    expect(events.filter((e) => e.kind === 'file')).toHaveLength(MAX_SOURCE_FINDINGS + 5); // every source event stays
  });
});

describe('FileActivity: everything else', () => {
  it(`shows the first ${INDIVIDUAL_PER_DIRECTORY} changes of a directory, then counts the rest per action and program`, () => {
    const { activity, files, findings } = setup({});
    for (let i = 0; i < 100; i++) {
      activity.apply(change('create', `node_modules/p${i}/index.js`, 12));
      activity.apply(change('modify', `node_modules/p${i}/index.js`, 12));
      activity.apply(change('close-write', `node_modules/p${i}/index.js`, 12));
    }
    activity.apply(change('create', 'node_modules/evil.js', 10));
    activity.finish();
    const individual = files().filter((e) => e.kind === 'file' && e.count === undefined);
    const folded = files().filter((e) => e.kind === 'file' && e.count !== undefined);
    expect(individual).toHaveLength(INDIVIDUAL_PER_DIRECTORY);
    expect(folded.map((e) => e.kind === 'file' && [e.action, e.path, e.count, e.process?.exe])).toEqual([
      ['create', 'node_modules/', 90, '/usr/bin/npm'],
      ['write', 'node_modules/', 90, '/usr/bin/npm'],
      ['create', 'node_modules/', 1, '/usr/bin/sed'],
    ]);
    expect(findings()).toEqual([]);
  });

  it('counts add up exactly to the changes, however they are split between individual and folded events', () => {
    const path = fc.tuple(fc.constantFrom('node_modules', 'dist', '.git', 'out', 'top'), fc.nat(300)).map(([dir, n]) => (dir === 'top' ? `f${n}` : `${dir}/f${n}`));
    const op = fc.tuple(fc.constantFrom('create', 'write', 'delete'), path, fc.constantFrom(10, 11, 12));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), fc.nat(5), (ops, flushes) => {
        const { activity, files } = setup({});
        const expected = { create: 0, write: 0, delete: 0 };
        ops.forEach(([kind, p, pid], i) => {
          if (kind === 'write') {
            activity.apply(change('modify', p, pid));
            activity.apply(change('close-write', p, pid));
          } else activity.apply(change(kind as 'create' | 'delete', p, pid));
          expected[kind as keyof typeof expected] += 1;
          if (flushes > 0 && i % (flushes * 37 + 1) === 0) activity.flushFolds(); // a step boundary
        });
        activity.finish();
        const seen = { create: 0, write: 0, delete: 0 };
        for (const e of files()) if (e.kind === 'file') seen[e.action as keyof typeof seen] += e.count ?? 1;
        expect(seen).toEqual(expected);
        expect(activity.counts.create + activity.counts.write + activity.counts.delete).toBe(ops.length);
      }),
    );
  });
});

describe('FileActivity: many directories', () => {
  it(`keeps at most ${MAX_FOLD_DIRECTORIES} fold directories apart and counts the rest under ./`, () => {
    const { activity, files } = setup({});
    for (let d = 0; d < 500; d++) for (let f = 0; f < 3; f++) activity.apply(change('create', `p${d}/f${f}`, 12));
    activity.finish();
    const events = files();
    expect(events.length).toBeLessThanOrEqual(INDIVIDUAL_PER_RUN + MAX_FOLD_DIRECTORIES + 1);
    expect(events.reduce((n, e) => n + (e.kind === 'file' ? (e.count ?? 1) : 0), 0)).toBe(1500);
    expect(events.find((e) => e.kind === 'file' && e.path === './')).toMatchObject({ count: expect.any(Number) });
  });
});

describe('FileActivity: steps', () => {
  it('keeps counted changes of different steps apart, each naming its step', () => {
    const { activity, files } = setup({}, '', (pid) => (pid === 10 ? 'step-1' : 'step-2'));
    for (let i = 0; i < 50; i++) activity.apply(change('create', `dist/a${i}`, 10));
    for (let i = 0; i < 30; i++) activity.apply(change('create', `dist/b${i}`, 11));
    activity.finish();
    const folded = files().filter((e) => e.kind === 'file' && e.count !== undefined);
    expect(folded.map((e) => e.kind === 'file' && [e.step, e.count])).toEqual([
      ['step-1', 30],
      ['step-2', 30],
    ]);
  });
});
