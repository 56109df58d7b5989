/**
 * Paths inside the watched workspace: what may count as source, and the
 * directory a non-source change is folded into. Relative, `/`-separated, no
 * leading `./`. Pure.
 */

/** Directories whose contents are never source, at any depth: installed packages and git's own store. */
export const NEVER_SOURCE_DIRS: ReadonlySet<string> = new Set(['node_modules', '.git']);

/** Non-source events shown one by one per fold directory before the rest are counted. */
export const INDIVIDUAL_PER_DIRECTORY = 20;
/** Non-source events shown one by one in a whole run before everything is counted. */
export const INDIVIDUAL_PER_RUN = 200;
/** Fold directories kept apart; changes in any further directory are counted under `./` (the workspace). */
export const MAX_FOLD_DIRECTORIES = 50;

export function joinRelative(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** Whether a path may be source: not inside node_modules or .git at any depth. */
export function maySource(path: string): boolean {
  return !path.split('/').some((segment) => NEVER_SOURCE_DIRS.has(segment));
}

/**
 * The source list from `git ls-files -z` run in the workspace: paths relative
 * to it, minus anything under node_modules or .git. Sorted, unique.
 */
export function parseGitLsFiles(output: string): string[] {
  const paths = new Set<string>();
  for (const path of output.split('\0')) {
    if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) continue;
    if (maySource(path)) paths.add(path);
  }
  return [...paths].sort();
}

/**
 * The directory a non-source change is counted under: the path through the
 * first node_modules or .git segment (`node_modules/`, `packages/a/node_modules/`),
 * otherwise the top-level directory (`dist/`), or `./` for a file at the top.
 * Few enough keys that a 10,000-file install folds into a handful of events.
 */
export function foldDirectory(path: string): string {
  const segments = path.split('/');
  const never = segments.findIndex((segment, index) => index < segments.length - 1 && NEVER_SOURCE_DIRS.has(segment));
  if (never >= 0) return `${segments.slice(0, never + 1).join('/')}/`;
  if (segments.length === 1) return './';
  return `${segments[0]}/`;
}

/** Whether `path` is `dir` or lies below it (both relative; '' is the workspace itself). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}
