#!/usr/bin/env node
/**
 * The `runwall` command. Its own imports are only these two, in this order, and the rest
 * (run-cli.ts) loads after them: esbuild's chunks do not keep the order of static imports.
 */
// First, so V8's memory settings are in place before the other modules load and allocate.
import './memory-flags.js';
// Second: `runwall agent start` spawns its daemon as this is evaluated, before the rest loads.
import { earlyAgentLaunch, enforcingLine, execStartsL7, l7PreloadUrl } from './agent-launch.js';

// `runwall exec`: its L7 thread starts booting now, beside the loading of everything else.
const preload = execStartsL7(process.argv) ? l7PreloadUrl() : null;
if (preload) await import(preload);

// `runwall agent start`: nothing else loads while the daemon starts (it would take CPU from it); only an error needs the rest.
const launched = earlyAgentLaunch ? await earlyAgentLaunch : null;
if (launched?.kind === 'ready') process.stdout.write(enforcingLine(launched.statusLine));
else await (await import('./run-cli.js')).runCli(launched);
