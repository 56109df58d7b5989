/**
 * The agent's control socket: a root-only Unix socket speaking one JSON
 * object per line, request then reply. It replaces any polling of status files.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { RunwallError } from '../../protocol/index.js';

export type ControlRequest =
  | { readonly command: 'status' }
  | { readonly command: 'stop'; readonly report?: string }
  | { readonly command: 'step'; readonly action: 'begin' | 'end'; readonly name: string };

export type ControlReply = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: { code: string; message: string } };

const MAX_REQUEST_BYTES = 64 * 1024;

/** Strict: an unknown command or field shape is refused with a coded error, never guessed at. */
export function parseControlRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RunwallError('RW_CONTROL_FAILED', 'control request is not JSON');
  }
  if (typeof value !== 'object' || value === null) throw new RunwallError('RW_CONTROL_FAILED', 'control request is not an object');
  const request = value as Record<string, unknown>;
  switch (request['command']) {
    case 'status':
      return { command: 'status' };
    case 'stop': {
      const report = request['report'];
      if (report !== undefined && typeof report !== 'string') throw new RunwallError('RW_CONTROL_FAILED', "'report' must be a path");
      return report === undefined ? { command: 'stop' } : { command: 'stop', report };
    }
    case 'step': {
      const action = request['action'];
      const name = request['name'];
      if ((action !== 'begin' && action !== 'end') || typeof name !== 'string' || name.length === 0 || name.length > 256) {
        throw new RunwallError('RW_CONTROL_FAILED', "a step marker needs action 'begin'|'end' and a name of 1-256 characters");
      }
      return { command: 'step', action, name };
    }
    default:
      throw new RunwallError('RW_CONTROL_FAILED', `unknown control command ${JSON.stringify(request['command'])}`);
  }
}

export type ControlHandler = (request: ControlRequest) => Promise<unknown>;

export async function listenControl(path: string, handler: ControlHandler): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((socket: Socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES) {
        socket.end(JSON.stringify({ ok: false, error: { code: 'RW_CONTROL_FAILED', message: 'request too large' } }) + '\n');
        return;
      }
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void (async () => {
        let reply: ControlReply;
        try {
          reply = { ok: true, result: await handler(parseControlRequest(line)) };
        } catch (error: unknown) {
          const code = error instanceof RunwallError ? error.code : 'RW_INTERNAL';
          reply = { ok: false, error: { code, message: error instanceof Error ? error.message : String(error) } };
        }
        socket.end(JSON.stringify(reply) + '\n');
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new RunwallError('RW_SETUP_FAILED', `cannot listen on control socket ${path}: ${error.message}`)));
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}

/** Sends one request; RW_AGENT_NOT_RUNNING when nothing answers at `path`. */
export function controlRequest(path: string, request: ControlRequest, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RunwallError('RW_CONTROL_FAILED', `the agent did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new RunwallError('RW_AGENT_NOT_RUNNING', `no runwall agent answers at ${path}`));
      } else {
        reject(new RunwallError('RW_CONTROL_FAILED', `control socket ${path}: ${error.message}`));
      }
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buffer.trim()) as ControlReply;
        if (reply.ok) resolve(reply.result);
        else reject(new RunwallError('RW_CONTROL_FAILED', `${reply.error.code}: ${reply.error.message}`));
      } catch {
        reject(new RunwallError('RW_CONTROL_FAILED', 'the agent sent an unreadable reply'));
      }
    });
  });
}
