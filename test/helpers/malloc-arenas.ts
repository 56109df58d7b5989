// Run as a child process: `node --import tsx malloc-arenas.ts tuned|default THREADS`. Has glibc print its
// arenas (malloc_stats, to stderr), starts THREADS worker threads that each allocate from malloc, prints them again.
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { tuneMalloc } from '../../src/agent/platform/index.js';

const [mode, threads] = [process.argv[2], Number(process.argv[3] ?? 6)];
if (mode === 'tuned' && !tuneMalloc()) throw new Error('mallopt refused the settings');
const mallocStats = koffi.load('libc.so.6').func('void malloc_stats(void)');
mallocStats();
process.stderr.write('--- threads started\n');
// Each worker allocates ArrayBuffer backing stores (calloc, from its own thread) and keeps them until all have.
const body = `const { parentPort } = require('node:worker_threads'); const kept = []; for (let i = 0; i < 64; i++) kept.push(Buffer.alloc(4096 + i)); parentPort.postMessage(kept.length); setTimeout(() => {}, 200);`;
const workers = Array.from({ length: threads }, () => new Worker(body, { eval: true }));
await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('message', resolve))));
mallocStats();
await Promise.all(workers.map((worker) => worker.terminate()));
