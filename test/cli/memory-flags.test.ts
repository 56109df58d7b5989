// The long-running commands get V8's memory-saving settings; the short ones and the server keep V8's defaults.
import { describe, expect, it } from 'vitest';
import { memoryFlagsFor } from '../../src/cli/memory-flags.js';

describe('memoryFlagsFor', () => {
  it('gives runwall exec and runwall agent a slower-growing old generation, nothing else', () => {
    expect(memoryFlagsFor('exec')).toEqual(['--heap-growing-percent=30']);
    expect(memoryFlagsFor('agent')).toEqual(['--heap-growing-percent=30']);
    for (const command of ['server', 'report', '--version', 'help', undefined]) expect(memoryFlagsFor(command)).toEqual([]);
  });
});
