/**
 * Starts the L7 check's worker thread before the CLI's modules load, so its 100-150 ms start runs
 * beside theirs instead of after them (see l7-worker-thread.ts in src/agent). Bundled on its own;
 * loaded by main.ts before anything else when `runwall exec` will run the check (execStartsL7 in
 * agent-launch.ts decides; the agent's daemon runs its check in its own thread: no worker to start).
 */
import { prestartL7Worker } from '../agent/index.js';

prestartL7Worker();
