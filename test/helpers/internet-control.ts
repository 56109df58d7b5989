// The control channel between a test (internet.ts) and the internet's server process
// (internet-server.ts): one JSON object per line over the server's stdin/stdout.
// Requests carry an id; every reply names the id it answers. Pure parsing only.

export type HitKind = 'http' | 'tls' | 'udp' | 'dns-rogue';

/** One thing a server of the internet saw. `host`: HTTP Host header, TLS SNI, or the queried name. */
export interface Hit {
  readonly kind: HitKind;
  readonly local: string;
  readonly port: number;
  readonly from: string;
  readonly host?: string;
}

/** One query the upstream resolver (198.51.100.53 / 2001:db8::53) received. */
export interface DnsQuery {
  readonly name: string;
  readonly type: string;
  readonly transport: 'udp' | 'tcp';
  readonly server: string;
  readonly from: string;
}

export type ControlRequest =
  | { readonly id: number; readonly op: 'hits' }
  | { readonly id: number; readonly op: 'clear-hits' }
  | { readonly id: number; readonly op: 'queries' }
  | { readonly id: number; readonly op: 'clear-queries' }
  | { readonly id: number; readonly op: 'set'; readonly name: string; readonly records: readonly unknown[] };

export type ControlOp = ControlRequest['op'];
const OPS: readonly ControlOp[] = ['hits', 'clear-hits', 'queries', 'clear-queries', 'set'];

export type ControlMessage =
  | { readonly kind: 'ready'; readonly pid: number }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: false; readonly error: string };

export class ControlProtocolError extends Error {
  override readonly name = 'ControlProtocolError';
}

function parseObject(line: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ControlProtocolError(`not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ControlProtocolError(`not a JSON object: ${line.slice(0, 200)}`);
  }
  return value as Record<string, unknown>;
}

function parseId(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ControlProtocolError(`bad request id ${JSON.stringify(value)}`);
  }
  return value;
}

/** Parses one request line (server side). Unknown operations are errors. */
export function parseControlRequest(line: string): ControlRequest {
  const object = parseObject(line);
  const id = parseId(object.id);
  const op = object.op;
  if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) {
    throw new ControlProtocolError(`unknown operation ${JSON.stringify(op)}`);
  }
  if (op === 'set') {
    if (typeof object.name !== 'string') throw new ControlProtocolError('set: name must be a string');
    if (!Array.isArray(object.records)) throw new ControlProtocolError('set: records must be a list');
    return Object.freeze({ id, op, name: object.name, records: Object.freeze([...(object.records as unknown[])]) });
  }
  return Object.freeze({ id, op: op as Exclude<ControlOp, 'set'> });
}

/** Parses one line from the server (test side). */
export function parseControlMessage(line: string): ControlMessage {
  const object = parseObject(line);
  if (object.ready === true) {
    const pid = object.pid;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) throw new ControlProtocolError('ready: bad pid');
    return { kind: 'ready', pid };
  }
  const id = parseId(object.id);
  if (object.ok === true) return { kind: 'reply', id, ok: true, result: object.result };
  if (object.ok === false && typeof object.error === 'string') return { kind: 'reply', id, ok: false, error: object.error };
  throw new ControlProtocolError(`not a reply: ${line.slice(0, 200)}`);
}

export function encodeLine(message: object): string {
  return `${JSON.stringify(message)}\n`;
}
