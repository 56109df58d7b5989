#!/usr/bin/env node
/**
 * The `runwall` command. Its own imports are only these two, in this order, and the rest
 * (run-cli.ts) loads after them: esbuild's chunks do not keep the order of static imports.
 */
// First, so V8's memory settings are in place before the other modules load and allocate.
import './memory-flags.js';
// Second: `runwall agent start` spawns its daemon as this is evaluated, before the rest loads.
import { earlyAgentLaunch } from './agent-launch.js';

await (await import('./run-cli.js')).runCli(earlyAgentLaunch);
