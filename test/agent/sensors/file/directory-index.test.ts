import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirectoryIndex } from '../../../../src/agent/sensors/file/directory-index.js';

const WS = '/ws';

describe('DirectoryIndex', () => {
  it('places directories created, moved and removed, as the events say', () => {
    const index = new DirectoryIndex(WS, () => null);
    index.set('root', '');
    index.created('k-src', 'root', 'src');
    index.created('k-lib', 'k-src', 'lib');
    expect(index.pathOf('k-lib')).toBe('src/lib');
    index.moved('k-src', { dir: 'root', name: 'src' }, { dir: 'root', name: 'source' });
    expect(index.pathOf('k-lib')).toBe('source/lib'); // the subtree moved with it
    index.removed('k-lib', 'k-src', 'lib');
    expect(index.pathOf('k-lib')).toBeNull();
    expect(index.size).toBe(2);
  });

  it('keeps placing events inside a directory that is already gone from disk', () => {
    const index = new DirectoryIndex(WS, () => null); // every lookup fails: the directory is gone
    index.set('root', '');
    index.set('k-nm', 'node_modules');
    index.set('k-pkg', 'node_modules/pkg');
    expect(index.pathOf('k-pkg')).toBe('node_modules/pkg');
    expect(index.lookups).toBe(0);
  });

  it('looks up an unknown handle once: inside is remembered, outside is remembered as outside', () => {
    const seen: string[] = [];
    const index = new DirectoryIndex(WS, (key) => {
      seen.push(key);
      return key === 'inside' ? `${WS}/a/b` : key === 'ws' ? WS : key === 'prefix' ? `${WS}x/a` : '/elsewhere';
    });
    expect(index.pathOf('inside')).toBe('a/b');
    expect(index.pathOf('inside')).toBe('a/b');
    expect(index.pathOf('ws')).toBe('');
    expect(index.pathOf('outside')).toBeNull();
    expect(index.pathOf('outside')).toBeNull();
    expect(index.pathOf('prefix')).toBeNull(); // /wsx is not inside /ws
    expect(seen).toEqual(['inside', 'ws', 'outside', 'prefix']);
  });

  it('a directory moved in from outside is placed, and what lies below it is looked up again', () => {
    let where = '/elsewhere/d/sub';
    const index = new DirectoryIndex(WS, (key) => (key === 'k-sub' ? where : null));
    index.set('root', '');
    expect(index.pathOf('k-sub')).toBeNull();
    where = `${WS}/d/sub`;
    index.moved('k-d', { dir: 'k-elsewhere', name: 'd' }, { dir: 'root', name: 'd' });
    expect(index.pathOf('k-d')).toBe('d');
    expect(index.pathOf('k-sub')).toBe('d/sub');
  });

  it('a directory moved out is forgotten with its subtree; a rename over a directory replaces it', () => {
    const index = new DirectoryIndex(WS, () => null);
    index.set('root', '');
    index.set('k-a', 'a');
    index.set('k-a1', 'a/1');
    index.set('k-b', 'b');
    index.moved('k-a', { dir: 'root', name: 'a' }, { dir: 'k-outside', name: 'a' });
    expect(index.pathOf('k-a1')).toBeNull();
    index.set('k-c', 'c');
    index.moved('k-c', { dir: 'root', name: 'c' }, { dir: 'root', name: 'b' });
    expect(index.pathOf('k-c')).toBe('b');
    expect(index.pathOf('k-b')).toBeNull();
  });

  it('agrees with a plain model of paths over any sequence of creates, moves and removals', () => {
    type Op = { kind: 'create'; parent: number; name: string } | { kind: 'move'; dir: number; parent: number; name: string } | { kind: 'remove'; dir: number };
    const name = fc.constantFrom('a', 'b', 'c', 'node_modules');
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), parent: fc.nat(20), name }),
      fc.record({ kind: fc.constant('move' as const), dir: fc.nat(20), parent: fc.nat(20), name }),
      fc.record({ kind: fc.constant('remove' as const), dir: fc.nat(20) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const index = new DirectoryIndex(WS, () => null);
        const model = new Map<string, string>([['k0', '']]);
        index.set('k0', '');
        let next = 1;
        const keys = () => [...model.keys()];
        const pick = (n: number) => keys()[n % keys().length]!;
        const inModel = (path: string) => [...model.values()].includes(path);
        for (const o of ops) {
          if (o.kind === 'create') {
            const parent = pick(o.parent);
            const path = model.get(parent) === '' ? o.name : `${model.get(parent)}/${o.name}`;
            if (inModel(path)) continue; // the kernel refuses mkdir over an existing name
            const key = `k${next++}`;
            model.set(key, path);
            index.created(key, parent, o.name);
          } else if (o.kind === 'move') {
            const dir = pick(o.dir);
            const parent = pick(o.parent);
            const from = model.get(dir)!;
            const parentPath = model.get(parent)!;
            const to = parentPath === '' ? o.name : `${parentPath}/${o.name}`;
            // No moving the workspace, into itself, or over a non-empty directory.
            if (from === '' || parentPath === from || parentPath.startsWith(`${from}/`) || to === from) continue;
            if ([...model.values()].some((p) => p.startsWith(`${to}/`))) continue;
            const fromParentPath = from.includes('/') ? from.slice(0, from.lastIndexOf('/')) : '';
            const fromParent = [...model].find(([, p]) => p === fromParentPath)![0];
            for (const [k, p] of [...model]) if (p === to) model.delete(k);
            for (const [k, p] of [...model]) {
              if (p === from) model.set(k, to);
              else if (p.startsWith(`${from}/`)) model.set(k, `${to}${p.slice(from.length)}`);
            }
            index.moved(dir, { dir: fromParent, name: from.slice(from.lastIndexOf('/') + 1) }, { dir: parent, name: o.name });
          } else {
            const dir = pick(o.dir);
            const path = model.get(dir)!;
            if (path === '' || [...model.values()].some((p) => p.startsWith(`${path}/`))) continue; // rmdir: empty only
            const parentPath = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
            const parent = [...model].find(([, p]) => p === parentPath)![0];
            model.delete(dir);
            index.removed(dir, parent, path.slice(path.lastIndexOf('/') + 1));
          }
        }
        for (const [key, path] of model) expect(index.pathOf(key)).toBe(path);
        expect(index.size).toBe(model.size);
      }),
    );
  });
});
