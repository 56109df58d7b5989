// Imports only point down the layers of design.md section 2:
// cli, action > server > agent > detect > policy > protocol; server and agent never import each other.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');
const RANK: Record<string, number> = { protocol: 0, policy: 1, detect: 2, agent: 3, server: 3, cli: 4, action: 4 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return /\.(ts|tsx)$/.test(name) ? [path] : [];
  });
}

function partOf(path: string): string {
  return relative(SRC, path).split('/')[0] ?? '';
}

export function layerViolations(): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const from = partOf(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), match[1] ?? '');
      if (!target.startsWith(SRC)) continue;
      const to = partOf(target);
      if (to === from) continue;
      const fromRank = RANK[from];
      const toRank = RANK[to];
      if (fromRank === undefined || toRank === undefined) {
        out.push(`${relative(SRC, file)}: unknown part '${fromRank === undefined ? from : to}'`);
      } else if (toRank >= fromRank) {
        out.push(`${relative(SRC, file)} imports ${to} (${match[1]}): ${from} may only import parts below it`);
      }
      // One curated index.ts per part: other parts import only that.
      const inner = relative(join(SRC, to), target);
      if (!/^index(\.js|\.ts)?$/.test(inner)) {
        out.push(`${relative(SRC, file)} imports ${match[1]}: import ${to}/index.js, not its internals`);
      }
    }
  }
  return out;
}

describe('layers', () => {
  it('every import points down the layers, through a part index', () => {
    expect(layerViolations()).toEqual([]);
  });

  it('protocol, policy and detect do no I/O', () => {
    const pure = files(SRC).filter((f) => ['protocol', 'policy', 'detect'].includes(partOf(f)));
    const offenders = pure.filter((f) => /from\s+['"]node:(fs|net|dgram|child_process|http|https|os|worker_threads)['"]/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(SRC, f))).toEqual([]);
  });
});
