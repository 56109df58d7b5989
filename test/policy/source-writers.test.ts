import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileSourceWriters,
  globToRegExp,
  parsePolicyFile,
  parseSourceWriterEntry,
  parseSourceWriters,
  resolvePolicy,
} from '../../src/policy/index.js';
import { expectRunwallError, isDeepFrozen } from './helpers.js';

const node = (script: string, ...rest: string[]) => ({ exe: '/usr/bin/node', argv: ['node', script, ...rest] });

describe('allowed-source-writers in a policy file', () => {
  it('reads text entries and mappings into one canonical form', () => {
    const settings = parsePolicyFile(
      [
        'allowed-source-writers:',
        '  - prettier',
        '  - /usr/local/bin/bump-version',
        '  - npm path:package.json path:./package-lock.json',
        '  - process: eslint',
        '    paths: [src/, "docs/*.md"]',
        '  - paths: CHANGELOG.md',
      ].join('\n'),
      'runwall.yml',
    );
    expect(settings.allowedSourceWriters).toEqual([
      { process: 'prettier', text: 'prettier' },
      { process: '/usr/local/bin/bump-version', text: '/usr/local/bin/bump-version' },
      { process: 'npm', paths: ['package.json', 'package-lock.json'], text: 'npm path:package.json path:package-lock.json' },
      { process: 'eslint', paths: ['src/**', 'docs/*.md'], text: 'eslint path:src/** path:docs/*.md' },
      { paths: ['CHANGELOG.md'], text: 'path:CHANGELOG.md' },
    ]);
    expect(isDeepFrozen(settings)).toBe(true);
  });

  it('takes a multi-line text, as an Action input passes it', () => {
    const rules = parseSourceWriters('prettier\n\n# a comment\ngofmt path:**/*.go\n', 'input');
    expect(rules.map((r) => r.text)).toEqual(['prettier', 'gofmt path:**/*.go']);
  });

  it('refuses entries that could excuse more than they say, naming the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['  - path:/etc/passwd', /runwall\.yml:3: allowed-source-writers\[0\]: path '\/etc\/passwd' must be relative/],
      ['  - path:../outside', /'\.\.' segment/],
      ['  - bin/prettier', /absolute exe path/],
      ['  - prettier eslint', /two processes/],
      ['  - path:src/**.ts', /'\*\*' must be a whole segment/],
      ['  - { process: x, path: y }', /unknown key 'path'/],
      ['  - {}', /needs a process, a path:GLOB, or both/],
      ['  - [a, b]', /must be text or a mapping/],
    ];
    for (const [item, message] of cases) {
      const error = expectRunwallError(() => parsePolicyFile(`egress-policy: block\nallowed-source-writers:\n${item}\n`, 'runwall.yml'), 'RW_POLICY_INVALID');
      expect(error.message).toMatch(message);
    }
    expectRunwallError(() => parsePolicyFile('allowed-source-writers: 3\n', 'runwall.yml'), 'RW_POLICY_INVALID');
  });

  it('resolvePolicy carries it into the effective policy with its origin; default: nothing excused', () => {
    const file = { path: 'runwall.yml', settings: parsePolicyFile('allowed-source-writers: [prettier]\n', 'runwall.yml') };
    const policy = resolvePolicy({ flags: {}, file, defaults: { dnsUpstream: '127.0.0.53' } });
    expect(policy.allowedSourceWriters).toEqual([{ process: 'prettier', text: 'prettier' }]);
    expect(policy.origins['allowedSourceWriters']).toBe('policy-file:runwall.yml');
    expect(isDeepFrozen(policy)).toBe(true);
    const none = resolvePolicy({ flags: {}, defaults: { dnsUpstream: '127.0.0.53' } });
    expect(none.allowedSourceWriters).toEqual([]);
  });
});

describe('matching a change against allowed-source-writers', () => {
  const matcher = compileSourceWriters(
    parseSourceWriters(['prettier', '/usr/bin/bump', 'npm path:package.json', 'path:CHANGELOG.md', 'path:docs/'], 'test'),
  );

  it('a basename matches the exe, argv[0] or the script an interpreter runs', () => {
    expect(matcher.match({ exe: '/opt/bin/prettier', argv: ['prettier', '--write', '.'] }, 'src/a.ts')?.text).toBe('prettier');
    expect(matcher.match(node('/w/node_modules/.bin/prettier', '--write'), 'src/a.ts')?.text).toBe('prettier');
    expect(matcher.match(node('/w/build.js'), 'src/a.ts')).toBeNull();
  });

  it('an exe path matches only that path, and a process with paths only those paths', () => {
    expect(matcher.match({ exe: '/usr/bin/bump', argv: ['bump'] }, 'VERSION')?.text).toBe('/usr/bin/bump');
    expect(matcher.match({ exe: '/tmp/bump', argv: ['bump'] }, 'VERSION')).toBeNull();
    expect(matcher.match(node('/usr/lib/node_modules/npm/bin/npm-cli.js'), 'package.json')).toBeNull(); // npm's script is npm-cli.js
    expect(matcher.match({ exe: '/usr/bin/npm', argv: ['npm', 'version'] }, 'package.json')?.text).toBe('npm path:package.json');
    expect(matcher.match({ exe: '/usr/bin/npm', argv: ['npm', 'version'] }, 'src/index.ts')).toBeNull();
  });

  it('a path rule excuses any writer, and an unknown writer only by path', () => {
    expect(matcher.match({ exe: null, argv: [] }, 'CHANGELOG.md')?.text).toBe('path:CHANGELOG.md');
    expect(matcher.match({ exe: null, argv: [] }, 'docs/a/b.md')?.text).toBe('path:docs/**');
    expect(matcher.match({ exe: null, argv: [] }, 'src/CHANGELOG.md')).toBeNull();
  });
});

describe('globToRegExp', () => {
  const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,8}$/).filter((s) => s !== '.' && s !== '..');
  const relPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/'));

  it('a glob without wildcards matches exactly itself, even with regex characters in it', () => {
    fc.assert(
      fc.property(relPath, relPath, (a, b) => {
        expect(globToRegExp(a).test(b)).toBe(a === b);
      }),
    );
    expect(globToRegExp('a+b(c).txt').test('a+b(c).txt')).toBe(true);
    expect(globToRegExp('a.txt').test('aXtxt')).toBe(false);
  });

  it('`*` never crosses a `/`; `**` spans any depth; `dir/**` is everything below dir', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 5 }), (parts) => {
        const path = parts.join('/');
        expect(globToRegExp('*').test(path)).toBe(parts.length === 1);
        expect(globToRegExp('**/' + parts[parts.length - 1]).test(path)).toBe(true);
        expect(globToRegExp(`${parts[0]}/**`).test(path)).toBe(parts.length > 1);
      }),
    );
    expect(globToRegExp('src/**/*.ts').test('src/index.ts')).toBe(true);
    expect(globToRegExp('src/**/*.ts').test('src/a/b/c.ts')).toBe(true);
    expect(globToRegExp('src/*.ts').test('src/a/c.ts')).toBe(false);
    expect(globToRegExp('v?.txt').test('v1.txt')).toBe(true);
  });

  it('the canonical text of an entry parses back to the same entry', () => {
    const entry = fc.tuple(
      fc.option(fc.oneof(segment, segment.map((s) => `/usr/bin/${s}`)), { nil: undefined }),
      fc.array(relPath, { maxLength: 3 }),
    ).filter(([process, paths]) => process !== undefined || paths.length > 0);
    fc.assert(
      fc.property(entry, ([process, paths]) => {
        const text = [...(process ? [process] : []), ...paths.map((p) => `path:${p}`)].join(' ');
        const parsed = parseSourceWriterEntry(text, 'test');
        expect(parseSourceWriterEntry(parsed.text, 'test')).toEqual(parsed);
      }),
    );
  });
});
