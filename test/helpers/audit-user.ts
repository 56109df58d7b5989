// A runwall-like audit user in its own process, for tests of the machine-wide audit status:
// opens the process sensor's and the detector's audit streams, says "ready", and on a line
// "close" on stdin closes them, says "closed" and exits. Killed, it leaves its rules behind.
import { createInterface } from 'node:readline';
import { AuditStream, DetectAuditStream } from '../../src/agent/platform/index.js';

const stream = await AuditStream.open(() => undefined, (problem) => process.stderr.write(`${problem.message}\n`));
const detect = await DetectAuditStream.open({ agentPid: null }, () => undefined, (message) => process.stderr.write(`${message}\n`));
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'close') continue;
  await detect.close();
  await stream.close();
  process.stdout.write('closed\n');
  process.exit(0);
}
