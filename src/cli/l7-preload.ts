/**
 * Starts the L7 check's worker thread before the CLI's modules load, so its 100-150 ms start runs
 * beside theirs instead of after them (see l7-worker-thread.ts in src/agent). Bundled on its own;
 * loaded by `runwall exec` from main.ts, before anything else (the agent's daemon runs its L7
 * check in its own thread: no worker to start).
 */
import { prestartL7Worker } from '../agent/index.js';

// runwall's own options only: what follows `--` is the job's command line.
const end = process.argv.indexOf('--');
const own = end < 0 ? process.argv : process.argv.slice(0, end);
const checkOff = own.some((arg, i) => arg === '--l7=off' || (arg === '--l7' && own[i + 1] === 'off'));
if (!checkOff) prestartL7Worker();
