// The run report and event stream a real run writes: schema-valid, complete, readable; the policy file with flags on top.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/protocol/index.js';
import { createInternet, type Internet } from '../../helpers/internet.js';
import { statuses } from '../../helpers/job-checks.js';
import { REPO, RUNWALL, eventsOf, execInHost, type ExecResult } from '../../helpers/runwall-cli.js';

const schema = JSON.parse(readFileSync(resolve(REPO, 'schema/run-report.schema.json'), 'utf8')) as object;

let internet: Internet;
let result: ExecResult;
const dir = mkdtempSync(join(tmpdir(), 'runwall-report-'));
const policyFile = join(dir, 'policy.yml');
writeFileSync(
  policyFile,
  ['egress-policy: audit', 'allowed-endpoints:', '  - allowed.test:443', '  - "*.allowed.test"', 'dns-upstream: 198.51.100.53', ''].join('\n'),
);

beforeAll(async () => {
  internet = await createInternet();
  // The flag wins over the file's `egress-policy: audit`.
  result = await execInHost(
    internet,
    ['--policy', policyFile, '--egress-policy', 'block'],
    `check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
     check a curl -sf -m 3 http://allowed.test:443/
     check txt sh -c 'dig +short TXT allowed.test | grep -q v=allowed'
     check https sh -c 'dig +short -t TYPE65 allowed.test | grep -q .'
     check aaaa sh -c 'dig +short AAAA allowed.test | grep -q 2001:db8::10'
     check tcp sh -c 'dig +tcp +short www.allowed.test | grep -q 198.51.100.12'
     check cname sh -c 'dig +short alias.allowed.test | grep -q 198.51.100.20'
     check blocked curl -sf -m 3 http://other.test:443/`,
  );
}, 90_000);
afterAll(async () => {
  await internet?.destroy();
});

describe('run report of a real run', () => {
  it('takes settings from the policy file, with command-line flags winning', () => {
    const policy = result.report!.policy;
    expect(policy.egressPolicy).toBe('block');
    expect(policy.origins['egressPolicy']).toBe('flag');
    expect(policy.origins['allowedEndpoints']).toBe(`policy-file:${policyFile}`);
    expect(policy.allowedEndpoints.map((e) => e.text)).toEqual(['allowed.test:443', '*.allowed.test:443']);
    expect(statuses(result)['blocked']).toBe(6);
  });

  it('passes every record type for allowed names, over UDP and TCP', () => {
    expect(statuses(result)).toMatchObject({ a: 0, txt: 0, https: 0, aaaa: 0, tcp: 0, cname: 0 });
    const types = new Set(eventsOf(result.report!, 'dns').filter((e) => e.verdict === 'allowed').map((e) => `${e.qtype}/${e.transport}`));
    expect([...types]).toEqual(expect.arrayContaining(['TXT/udp', 'HTTPS/udp', 'AAAA/udp', 'A/tcp']));
    const https = eventsOf(result.report!, 'dns').find((e) => e.qtype === 'HTTPS');
    expect(https?.admitted).toEqual(expect.arrayContaining(['198.51.100.10:443']));
  });

  it('matches the published JSON Schema', () => {
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
    expect(validate(result.report), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true);
  });

  it('streams the same events, in order, as JSON lines', () => {
    const lines = readFileSync(result.eventsPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as RunEvent);
    expect(lines.map((e) => e.seq)).toEqual(result.report!.events.map((e) => e.seq));
    expect(lines.map((e) => e.seq)).toEqual(lines.map((_, i) => i + 1));
  });

  it('`runwall report` prints it as a table with the reason and the fix for each block', async () => {
    const printed = await internet.runInHost([...RUNWALL, 'report', result.reportPath], { cwd: REPO });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/BLOCKED\s+other\.test/);
    expect(printed.stdout).toMatch(/allowed\s+allowed\.test\s+443/);
    expect(printed.stdout).toContain('add `other.test:443` to allowed-endpoints');
    expect(printed.stdout).toContain('allowed.test:443');
  });

  it('`runwall report` refuses a file that is not a report, naming the problem', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ schemaVersion: 1, run: {} }));
    const printed = await internet.runInHost([...RUNWALL, 'report', bad], { cwd: REPO });
    expect(printed.code).toBe(251);
    expect(printed.stderr).toMatch(/RW_REPORT_INVALID/);
  });
});
