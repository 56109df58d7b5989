import { describe, expect, it } from 'vitest';
import { DirectoryIndex } from '../../../../src/agent/sensors/file/directory-index.js';
import { interpretEvent } from '../../../../src/agent/sensors/file/file-changes.js';
import { FAN_CLOSE_WRITE, FAN_CREATE, FAN_DELETE, FAN_MODIFY, FAN_ONDIR, FAN_RENAME, type FanotifyEvent } from '../../../../src/agent/platform/index.js';

function index(): DirectoryIndex {
  const i = new DirectoryIndex('/ws', () => null);
  i.set('root', '');
  i.set('src', 'src');
  return i;
}

const event = (mask: number, fields: Partial<FanotifyEvent>): FanotifyEvent => ({ mask, pid: 7, entry: null, from: null, to: null, object: 'obj', ...fields });
const kinds = (changes: ReturnType<typeof interpretEvent>) => changes.map((c) => c.kind);

describe('interpretEvent', () => {
  it('turns a merged create+modify+close into create, modify, close-write at the placed path', () => {
    const changes = interpretEvent(event(FAN_CREATE | FAN_MODIFY | FAN_CLOSE_WRITE, { entry: { dir: 'src', name: 'a.ts' } }), index(), () => true);
    expect(changes).toEqual([
      { kind: 'create', pid: 7, object: 'obj', path: 'src/a.ts' },
      { kind: 'modify', pid: 7, object: 'obj', path: 'src/a.ts' },
      { kind: 'close-write', pid: 7, object: 'obj', path: 'src/a.ts' },
    ]);
  });

  it('orders a merged create and delete by whether the file is there now', () => {
    const merged = event(FAN_CREATE | FAN_DELETE | FAN_MODIFY, { entry: { dir: 'src', name: 'tmp' } });
    expect(kinds(interpretEvent(merged, index(), () => false))).toEqual(['create', 'modify', 'delete']); // a temporary file
    expect(kinds(interpretEvent(merged, index(), () => true))).toEqual(['delete', 'create', 'modify']); // replaced
  });

  it('ignores what happens outside the workspace', () => {
    expect(interpretEvent(event(FAN_CREATE, { entry: { dir: 'elsewhere', name: 'x' } }), index(), () => true)).toEqual([]);
    expect(interpretEvent(event(FAN_RENAME, { from: { dir: 'elsewhere', name: 'x' }, to: { dir: 'other', name: 'y' } }), index(), () => true)).toEqual([]);
  });

  it('a file renamed in, out and within the workspace', () => {
    const within = interpretEvent(event(FAN_RENAME, { from: { dir: 'src', name: 'a' }, to: { dir: 'root', name: 'b' } }), index(), () => true);
    expect(within).toEqual([{ kind: 'rename', pid: 7, object: 'obj', from: 'src/a', to: 'b' }]);
    const inward = interpretEvent(event(FAN_RENAME, { from: { dir: 'elsewhere', name: 'a' }, to: { dir: 'src', name: 'a' } }), index(), () => true);
    expect(inward).toMatchObject([{ kind: 'rename', from: null, to: 'src/a' }]);
  });

  it('directory events keep the index and give no file change, except a rename (source may lie below it)', () => {
    const i = index();
    expect(interpretEvent(event(FAN_CREATE | FAN_ONDIR, { entry: { dir: 'src', name: 'lib' }, object: 'lib' }), i, () => true)).toEqual([]);
    expect(i.pathOf('lib')).toBe('src/lib');
    const renamed = interpretEvent(event(FAN_RENAME | FAN_ONDIR, { from: { dir: 'src', name: 'lib' }, to: { dir: 'root', name: 'lib2' }, object: 'lib' }), i, () => true);
    expect(renamed).toEqual([{ kind: 'directory-rename', pid: 7, object: 'lib', from: 'src/lib', to: 'lib2' }]);
    expect(i.pathOf('lib')).toBe('lib2');
    expect(interpretEvent(event(FAN_DELETE | FAN_ONDIR, { entry: { dir: 'root', name: 'lib2' }, object: 'lib' }), i, () => true)).toEqual([]);
    expect(i.pathOf('lib')).toBeNull();
  });
});
