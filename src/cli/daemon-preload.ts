/**
 * Preloaded (`node --import`) into the agent's daemon by agent-launch.ts, and bundled on its own:
 * starts the L7 check's worker thread before the CLI's modules load, so its 100-150 ms start
 * runs beside theirs instead of after them (see l7-worker-thread.ts in src/agent).
 */
import { prestartL7Worker } from '../agent/index.js';

const argv = process.argv;
const checkOff = argv.some((arg, i) => arg === '--l7=off' || (arg === '--l7' && argv[i + 1] === 'off'));
if (!checkOff) prestartL7Worker();
