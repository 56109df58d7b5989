// Writes schema/run-report.schema.json from the protocol's TypeBox definitions.
import { writeFileSync } from 'node:fs';
import { runReportJsonSchema } from '../src/protocol/index.js';

writeFileSync(new URL('../schema/run-report.schema.json', import.meta.url), JSON.stringify(runReportJsonSchema(), null, 2) + '\n');
