// The fanotify group on a real tmpfs: what the kernel reports for real writes, renames and deletes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAN_CLOSE_WRITE,
  FAN_CREATE,
  FAN_DELETE,
  FAN_MODIFY,
  FAN_ONDIR,
  FAN_RENAME,
  type FanotifyEvent,
} from '../../../src/agent/platform/fanotify-event.js';
import { FanotifyGroup, filesystemIdOf, handleKeyOfPath } from '../../../src/agent/platform/fanotify.js';

describe('FanotifyGroup on a tmpfs', () => {
  let root: string;
  let fsid: string;
  const events: FanotifyEvent[] = [];
  const errors: string[] = [];
  let overflows = 0;
  let group: FanotifyGroup;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), `runwall-fanotify-${process.pid}-`));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', `runwall-fanotify-${process.pid}`, root]);
    fsid = filesystemIdOf(root)!;
    group = FanotifyGroup.open(
      (batch) => {
        events.push(...batch.events);
        overflows += batch.overflows;
        errors.push(...batch.errors.map((e) => e.message));
      },
      (message) => errors.push(message),
    );
    group.markFilesystem(root);
  });

  afterAll(async () => {
    await group?.close();
    execFileSync('umount', ['-l', root]);
    rmSync(root, { recursive: true, force: true });
  });

  const ofName = (name: string) => events.filter((e) => e.entry?.name === name || e.from?.name === name || e.to?.name === name);
  const own = (e: FanotifyEvent) => e.pid === process.pid;

  it('reports create, write, rename and delete with the writer pid and handles that match the paths', () => {
    events.length = 0;
    const dir = join(root, 'src');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.ts'), 'export {}\n');
    renameSync(join(dir, 'a.ts'), join(root, 'b.ts'));
    unlinkSync(join(root, 'b.ts'));
    group.drain();
    expect(errors).toEqual([]);
    const rootKey = handleKeyOfPath(root, fsid);
    const dirKey = handleKeyOfPath(dir, fsid);
    expect(rootKey).not.toBeNull();

    const mkdir = ofName('src')[0];
    expect(mkdir?.mask).toBe(FAN_CREATE | FAN_ONDIR);
    expect(mkdir?.entry?.dir).toBe(rootKey);
    expect(mkdir?.object).toBe(dirKey); // the new directory's own handle: no lookup needed later

    const [written, renamed, deleted] = ofName('a.ts').concat(ofName('b.ts').filter((e) => e.mask & FAN_DELETE));
    expect(written?.mask).toBe(FAN_CREATE | FAN_MODIFY | FAN_CLOSE_WRITE); // queued events of one object merge
    expect(written?.entry?.dir).toBe(dirKey);
    expect(renamed?.mask).toBe(FAN_RENAME);
    expect(renamed?.from).toEqual({ dir: dirKey, name: 'a.ts' });
    expect(renamed?.to).toEqual({ dir: rootKey, name: 'b.ts' });
    expect(renamed?.object).toBe(written?.object);
    expect(deleted?.mask).toBe(FAN_DELETE);
    expect([written, renamed, deleted].every((e) => e && own(e))).toBe(true);
  });

  it("names another process's writes by that process's pid, and a touch is a close without a modify", () => {
    events.length = 0;
    const child = execFileSync('sh', ['-c', `echo $$; echo x > ${root}/by-child; touch ${root}/by-child`], { encoding: 'utf8' });
    const shellPid = Number(child.trim());
    group.drain();
    const seen = ofName('by-child');
    expect(seen[0]?.pid).toBe(shellPid);
    expect((seen[0]?.mask ?? 0) & FAN_MODIFY).toBe(FAN_MODIFY);
    const touch = seen.at(-1)!;
    expect(touch.pid).not.toBe(shellPid);
    expect(touch.mask).toBe(FAN_CLOSE_WRITE);
  });

  it('turns a directory handle back into its path, and a removed one into null', () => {
    const dir = join(root, 'resolve-me');
    mkdirSync(dir);
    const key = handleKeyOfPath(dir, fsid)!;
    expect(group.pathOfHandle(key)).toBe(dir);
    rmdirSync(dir);
    expect(group.pathOfHandle(key)).toBeNull();
    expect(group.pathOfHandle('not-a-key')).toBeNull();
  });

  it('delivers from the event loop without a drain, and loses nothing in a burst of 5,000 files', async () => {
    events.length = 0;
    const dir = join(root, 'burst');
    mkdirSync(dir);
    execFileSync('sh', ['-c', `cd ${dir} && i=0; while [ $i -lt 5000 ]; do echo $i > f$i; i=$((i+1)); done`]);
    const deadline = Date.now() + 10_000;
    const creates = () => events.filter((e) => e.mask & FAN_CREATE && e.entry?.name.startsWith('f')).length;
    while (creates() < 5000 && Date.now() < deadline) await sleep(20);
    expect(creates()).toBe(5000);
    expect(overflows).toBe(0);
  });
});
