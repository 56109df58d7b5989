/**
 * One decoded fanotify event as the changes it stands for, placed in the
 * workspace (paths relative to it) through the directory index, which it
 * keeps up to date for directory events. Events outside the workspace give
 * nothing. Pure apart from the injected existence check.
 */
import { FAN_CLOSE_WRITE, FAN_CREATE, FAN_DELETE, FAN_MODIFY, FAN_ONDIR, FAN_RENAME, type FanotifyEvent } from '../../platform/index.js';
import type { DirectoryIndex } from './directory-index.js';
import { joinRelative } from './workspace-paths.js';

interface ChangeBase {
  readonly pid: number;
  /** The object's handle key: one file across renames. */
  readonly object: string | null;
}

export type FileChange =
  | (ChangeBase & { readonly kind: 'create' | 'modify' | 'close-write' | 'delete'; readonly path: string })
  /** A file renamed; a null side lies outside the workspace. */
  | (ChangeBase & { readonly kind: 'rename'; readonly from: string | null; readonly to: string | null })
  /** A directory renamed: every file below `from` now lies below `to` (null: outside). */
  | (ChangeBase & { readonly kind: 'directory-rename'; readonly from: string; readonly to: string | null });

/**
 * @param exists whether `path` (relative) exists now; decides the order of a
 *   create and a delete the kernel merged into one event
 */
export function interpretEvent(event: FanotifyEvent, index: DirectoryIndex, exists: (path: string) => boolean): FileChange[] {
  const { mask, pid, object } = event;
  const isDirectory = (mask & FAN_ONDIR) !== 0;

  if (mask & FAN_RENAME) {
    if (!event.from || !event.to) return [];
    const fromParent = index.pathOf(event.from.dir);
    const from = fromParent === null ? null : joinRelative(fromParent, event.from.name);
    if (isDirectory) {
      index.moved(object, event.from, event.to);
      const toParent = index.pathOf(event.to.dir);
      const to = toParent === null ? null : joinRelative(toParent, event.to.name);
      return from === null ? [] : [{ kind: 'directory-rename', pid, object, from, to }];
    }
    const toParent = index.pathOf(event.to.dir);
    const to = toParent === null ? null : joinRelative(toParent, event.to.name);
    if (from === null && to === null) return [];
    return [{ kind: 'rename', pid, object, from, to }];
  }

  if (!event.entry) return [];
  if (isDirectory) {
    if (mask & FAN_CREATE) index.created(object, event.entry.dir, event.entry.name);
    if (mask & FAN_DELETE) index.removed(object, event.entry.dir, event.entry.name);
    return [];
  }
  const parent = index.pathOf(event.entry.dir);
  if (parent === null) return [];
  const path = joinRelative(parent, event.entry.name);
  const at = (kind: 'create' | 'modify' | 'close-write' | 'delete') => ({ kind, pid, object, path }) as const;
  const content: FileChange[] = [];
  if (mask & FAN_MODIFY) content.push(at('modify'));
  if (mask & FAN_CLOSE_WRITE) content.push(at('close-write'));
  const created = (mask & FAN_CREATE) !== 0;
  const deleted = (mask & FAN_DELETE) !== 0;
  if (created && deleted) {
    // Merged: it was either replaced (deleted, then made again) or a temporary file (made, then deleted).
    return exists(path) ? [at('delete'), at('create'), ...content] : [at('create'), ...content, at('delete')];
  }
  return [...(created ? [at('create')] : []), ...content, ...(deleted ? [at('delete')] : [])];
}
