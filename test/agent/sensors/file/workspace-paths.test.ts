import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldDirectory, isWithin, maySource, parseGitLsFiles } from '../../../../src/agent/sensors/file/workspace-paths.js';

const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,10}$/).filter((s) => s !== '.' && s !== '..');
const relPath = fc.array(fc.oneof(segment, fc.constantFrom('node_modules', '.git', 'src')), { minLength: 1, maxLength: 6 }).map((p) => p.join('/'));

describe('source paths', () => {
  it('git ls-files -z output: tracked paths, minus node_modules and .git, sorted and unique', () => {
    const out = parseGitLsFiles('src/b.ts\0README.md\0node_modules/x/index.js\0packages/a/node_modules/y.js\0src/b.ts\0.gitignore\0');
    expect(out).toEqual(['.gitignore', 'README.md', 'src/b.ts']);
    expect(parseGitLsFiles('')).toEqual([]);
    expect(parseGitLsFiles('/etc/passwd\0../x\0a//b\0ok\0')).toEqual(['ok']);
  });

  it('a path inside node_modules or .git at any depth is never source', () => {
    fc.assert(
      fc.property(relPath, (path) => {
        expect(maySource(path)).toBe(!path.split('/').some((s) => s === 'node_modules' || s === '.git'));
      }),
    );
  });
});

describe('foldDirectory', () => {
  it('folds installs and git internals at their own directory, other files by top-level directory', () => {
    expect(foldDirectory('node_modules/a/b/c.js')).toBe('node_modules/');
    expect(foldDirectory('packages/web/node_modules/x/y.js')).toBe('packages/web/node_modules/');
    expect(foldDirectory('.git/objects/ab/cdef')).toBe('.git/');
    expect(foldDirectory('dist/js/app.js')).toBe('dist/');
    expect(foldDirectory('out.txt')).toBe('./');
    expect(foldDirectory('node_modules')).toBe('./');
  });

  it('is always a directory that contains the path (or ./), so counts can be read as "under this directory"', () => {
    fc.assert(
      fc.property(relPath, (path) => {
        const dir = foldDirectory(path);
        expect(dir.endsWith('/')).toBe(true);
        if (dir !== './') expect(path.startsWith(dir)).toBe(true);
        expect(isWithin(path, dir === './' ? '' : dir.slice(0, -1))).toBe(true);
      }),
    );
  });

  it('isWithin is a segment-wise prefix test', () => {
    expect(isWithin('src/a', 'src')).toBe(true);
    expect(isWithin('src', 'src')).toBe(true);
    expect(isWithin('srcx/a', 'src')).toBe(false);
    expect(isWithin('anything', '')).toBe(true);
  });
});
