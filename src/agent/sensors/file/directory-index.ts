/**
 * Which directory a fanotify handle names, as a path relative to the
 * workspace, kept up to date from the events themselves (a directory created,
 * renamed or removed) so that changes inside a directory that is already gone
 * when its events are handled (`rm -rf node_modules`) are still placed.
 * A tree of names: a rename moves a whole subtree in one step, a removal
 * forgets one. Handles never seen are looked up once through `resolve` (the
 * live absolute path) and remembered; those outside the workspace are
 * remembered as outside. Pure apart from the injected lookup.
 */
import { joinRelative } from './workspace-paths.js';

/** Unknown handles remembered as outside the workspace before that memory is reset. */
const MAX_OUTSIDE = 100_000;

interface DirNode {
  name: string;
  parent: DirNode | null;
  readonly children: Map<string, DirNode>;
  key: string | null;
}

export class DirectoryIndex {
  readonly #root: DirNode = { name: '', parent: null, children: new Map(), key: null };
  readonly #byKey = new Map<string, DirNode>();
  readonly #outside = new Set<string>();
  #lookups = 0;

  /**
   * @param workspace absolute path of the watched tree, without a trailing slash
   * @param resolve the current absolute path of a directory handle, or null when it is gone
   */
  constructor(
    private readonly workspace: string,
    private readonly resolve: (key: string) => string | null,
  ) {}

  /** Handles that needed a lookup (for the sensor's closing note). */
  get lookups(): number {
    return this.#lookups;
  }

  /** Directories known by handle. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Whether the handle names a directory known to be in the workspace (no lookup). */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** Records the directory at `path` ('' is the workspace itself) as named by `key`. */
  set(key: string, path: string): void {
    let node = this.#root;
    if (path !== '') {
      for (const name of path.split('/')) {
        let child = node.children.get(name);
        if (!child) {
          child = { name, parent: node, children: new Map(), key: null };
          node.children.set(name, child);
        }
        node = child;
      }
    }
    this.#bind(node, key);
  }

  /** The directory's path relative to the workspace, or null when it is outside (or was gone before it was ever seen). */
  pathOf(key: string): string | null {
    const node = this.#byKey.get(key);
    if (node) return this.#pathOfNode(node);
    if (this.#outside.has(key)) return null;
    this.#lookups += 1;
    const absolute = this.resolve(key);
    const relative = absolute === null ? null : this.#relative(absolute);
    if (relative === null) {
      if (this.#outside.size >= MAX_OUTSIDE) this.#outside.clear();
      this.#outside.add(key);
      return null;
    }
    this.set(key, relative);
    return relative;
  }

  /** A directory was created: `parent` is the handle of the directory it was made in. */
  created(key: string | null, parent: string, name: string): void {
    const parentPath = this.pathOf(parent);
    if (key === null || parentPath === null) return;
    this.set(key, joinRelative(parentPath, name));
  }

  /** A directory was renamed: moved within the workspace, in from outside, or out. */
  moved(key: string | null, from: { dir: string; name: string }, to: { dir: string; name: string }): void {
    const toParent = this.pathOf(to.dir);
    const node = (key !== null ? this.#byKey.get(key) : undefined) ?? this.#childAt(from.dir, from.name);
    if (toParent === null) {
      if (node) this.#detach(node);
      return;
    }
    if (!node) {
      // Came from outside: what lies below it may have been remembered as outside.
      this.#outside.clear();
      if (key !== null) this.set(key, joinRelative(toParent, to.name));
      return;
    }
    const target = toParent === '' ? this.#root : this.#nodeAt(toParent);
    if (!target) {
      if (key !== null) this.set(key, joinRelative(toParent, to.name));
      return;
    }
    const replaced = target.children.get(to.name);
    if (replaced && replaced !== node) this.#detach(replaced);
    node.parent?.children.delete(node.name);
    node.name = to.name;
    node.parent = target;
    target.children.set(to.name, node);
  }

  /** A directory was removed. */
  removed(key: string | null, parent: string, name: string): void {
    const node = (key !== null ? this.#byKey.get(key) : undefined) ?? this.#childAt(parent, name);
    if (node) this.#detach(node);
  }

  #bind(node: DirNode, key: string): void {
    const previous = this.#byKey.get(key);
    if (previous && previous !== node) previous.key = null;
    if (node.key !== null && node.key !== key) this.#byKey.delete(node.key);
    node.key = key;
    this.#byKey.set(key, node);
    this.#outside.delete(key);
  }

  #childAt(parentKey: string, name: string): DirNode | undefined {
    return this.#byKey.get(parentKey)?.children.get(name);
  }

  #nodeAt(path: string): DirNode | undefined {
    let node: DirNode | undefined = this.#root;
    for (const name of path.split('/')) node = node?.children.get(name);
    return node;
  }

  /** Unlinks a subtree and forgets every handle in it. Iterative: a deep tree cannot overflow the stack. */
  #detach(node: DirNode): void {
    node.parent?.children.delete(node.name);
    node.parent = null;
    const stack = [node];
    for (let next = stack.pop(); next; next = stack.pop()) {
      if (next.key !== null && this.#byKey.get(next.key) === next) this.#byKey.delete(next.key);
      next.key = null;
      stack.push(...next.children.values());
    }
  }

  #pathOfNode(node: DirNode): string | null {
    const names: string[] = [];
    let at: DirNode | null = node;
    while (at && at !== this.#root) {
      names.push(at.name);
      at = at.parent;
    }
    return at === this.#root ? names.reverse().join('/') : null;
  }

  #relative(absolute: string): string | null {
    if (absolute === this.workspace) return '';
    if (!absolute.startsWith(`${this.workspace}/`)) return null;
    return absolute.slice(this.workspace.length + 1);
  }
}
