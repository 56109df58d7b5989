/**
 * libnftables in-process: one batch costs ~0.08 ms instead of ~2.7 ms for
 * spawning `nft` (mechanisms.md), which is what lets the DNS proxy add an
 * answer's addresses to a set before the answer is released.
 *
 * nft resolves host names it finds in command text (even inside element lists),
 * so callers must build commands only from validated addresses (`net.isIP`).
 * A context works in the network namespace of the thread that opened it.
 */
import { RunwallError } from '../../protocol/index.js';
import { libnftables, NFT_CTX_OUTPUT_JSON, type Libnftables, type NativePointer } from './ffi.js';

/** The most of a batch quoted in an error's details: a set of 50k elements is not a log line. */
const QUOTED_COMMANDS_MAX = 2000;

export class Nftables {
  private ctx: NativePointer | null;
  private readonly baseFlags: number;

  private constructor(
    private readonly lib: Libnftables,
    ctx: NativePointer,
  ) {
    this.ctx = ctx;
    this.baseFlags = lib.outputGetFlags(ctx) & ~NFT_CTX_OUTPUT_JSON;
  }

  /** RW_PLATFORM_MISSING if libnftables.so.1 cannot be loaded or gives no context. */
  static open(options: { libraryPath?: string } = {}): Nftables {
    const lib = libnftables(options.libraryPath);
    const ctx = lib.ctxNew(0);
    if (ctx === null) throw new RunwallError('RW_PLATFORM_MISSING', 'libnftables could not create a context (nft_ctx_new returned NULL)');
    // Buffer both streams: nft must never write to runwall's own stdout/stderr.
    lib.bufferOutput(ctx);
    lib.bufferError(ctx);
    return new Nftables(lib, ctx);
  }

  /** Runs one batch atomically, as `nft -f` does. RW_NFT_FAILED quotes nft's own error text. */
  run(commands: string): void {
    this.execute(commands, this.baseFlags);
  }

  /** Runs one command with JSON output (e.g. `list table inet runwall_x`) and returns it parsed; null if it printed nothing. */
  runJson(command: string): unknown {
    const output = this.execute(command, this.baseFlags | NFT_CTX_OUTPUT_JSON);
    if (output.trim() === '') return null;
    try {
      return JSON.parse(output) as unknown;
    } catch (cause) {
      throw new RunwallError('RW_INTERNAL', `nftables: JSON output of '${command}' is not JSON`, { output: output.slice(0, QUOTED_COMMANDS_MAX) }, { cause });
    }
  }

  close(): void {
    if (this.ctx === null) return;
    this.lib.ctxFree(this.ctx);
    this.ctx = null;
  }

  private execute(commands: string, flags: number): string {
    const ctx = this.ctx;
    if (ctx === null) throw new RunwallError('RW_INTERNAL', 'nftables: the context was already closed');
    this.lib.outputSetFlags(ctx, flags);
    const status = this.lib.runCmdFromBuffer(ctx, commands);
    // Reading a buffer also rewinds it for the next command: read both every time.
    const output = this.lib.getOutputBuffer(ctx);
    const error = this.lib.getErrorBuffer(ctx);
    if (status !== 0) {
      const text = error.trim() || `nft_run_cmd_from_buffer returned ${status} without a message`;
      throw new RunwallError('RW_NFT_FAILED', `nftables refused the batch: ${text}`, {
        nftError: text,
        commands: commands.length > QUOTED_COMMANDS_MAX ? `${commands.slice(0, QUOTED_COMMANDS_MAX)}…` : commands,
      });
    }
    return output;
  }
}
