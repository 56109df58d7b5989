// Running the bench's commands: timed, bounded, failures said in a line a person can read.
import { describe, expect, it } from 'vitest';
import { describeCommand, run, runChecked } from '../../bench/processes.js';

describe('bench commands', () => {
  it('names a command by its programs, not their paths, and cuts long argument lists', () => {
    expect(describeCommand(['/usr/bin/node', '/work/main/dist/cli/main.js', 'agent', 'start'])).toBe('node main.js agent start');
    expect(describeCommand(['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toBe('a b c d e f …');
    expect(describeCommand(['sh', '-c', 'echo a/b c'])).toBe('sh -c echo a/b c');
  });

  it('a failing command is an error carrying its exit status and the end of its stderr on one line', async () => {
    await expect(runChecked(['sh', '-c', 'echo first >&2; echo "RW_SETUP_FAILED: no" >&2; exit 3'], { timeoutMs: 5_000 })).rejects.toThrow(
      /^sh -c .* exited 3: first \| RW_SETUP_FAILED: no$/,
    );
  });

  it('a command past its time is killed with everything it started', async () => {
    const result = await run(['sh', '-c', 'sleep 30 & sleep 30'], { timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.wallMs).toBeLessThan(10_000);
  });

  it("samples a command's peak RSS while it runs", async () => {
    const result = await run([process.execPath, '-e', 'const b = Buffer.alloc(64 * 1024 * 1024, 1); setTimeout(() => console.log(b.length), 400)'], {
      timeoutMs: 10_000,
      sampleRssEveryMs: 20,
    });
    expect(result.stdout.trim()).toBe(String(64 * 1024 * 1024));
    expect(result.peakRssBytes).toBeGreaterThan(64 * 1024 * 1024);
  });
});
