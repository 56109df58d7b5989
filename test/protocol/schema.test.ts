import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseRunReport, runReportJsonSchema, RUNWALL_VERSION } from '../../src/protocol/index.js';
import { sampleReport } from '../helpers/sample-report.js';

const schemaFile = resolve(import.meta.dirname, '../../schema/run-report.schema.json');

describe('run report schema', () => {
  it('the checked-in JSON Schema is the one the protocol generates (run: npx tsx scripts/gen-schema.ts)', () => {
    expect(JSON.parse(readFileSync(schemaFile, 'utf8'))).toEqual(runReportJsonSchema());
  });

  it('a plain JSON Schema validator accepts a full report and rejects a broken one', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8')));
    const report = sampleReport();
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    const broken = structuredClone(report) as unknown as { events: Array<{ verdict?: string }> };
    broken.events[0]!.verdict = 'maybe';
    expect(validate(broken)).toBe(false);
  });

  it('parseRunReport names the field that is wrong', () => {
    const report = sampleReport() as unknown as Record<string, unknown>;
    expect(() => parseRunReport({ ...report, schemaVersion: 2 })).toThrow(/RW_REPORT_INVALID|schemaVersion/);
    expect(parseRunReport(sampleReport()).run.tool.version).toBe(RUNWALL_VERSION);
  });

  it('the version constant matches package.json', () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(RUNWALL_VERSION).toBe(pkg.version);
  });
});
