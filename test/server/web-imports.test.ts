// The web app is browser code: it imports its own modules and protocol *types* only (design.md section 2).
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const WEB = resolve(import.meta.dirname, '../../src/server/web');

describe('web app imports', () => {
  it('imports only its own modules and type-only protocol imports', () => {
    const offenders: string[] = [];
    for (const name of readdirSync(WEB).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(WEB, name), 'utf8');
      for (const match of text.matchAll(/^import\s+(type\s+)?[^'"]*from\s+['"]([^'"]+)['"]/gm)) {
        const [, typeOnly, target = ''] = match;
        const ownModule = /^\.\/[a-z0-9-]+\.js$/.test(target);
        const protocolTypes = target === '../../protocol/index.js' && typeOnly !== undefined;
        if (!ownModule && !protocolTypes) offenders.push(`${name}: ${match[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
