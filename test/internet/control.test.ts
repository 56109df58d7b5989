// The line protocol between a test and its internet's server process.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ControlProtocolError,
  encodeLine,
  parseControlMessage,
  parseControlRequest,
  type ControlRequest,
} from '../helpers/internet-control.js';

const requests: fc.Arbitrary<ControlRequest> = fc.oneof(
  fc.record({ id: fc.nat(), op: fc.constantFrom('hits' as const, 'clear-hits' as const, 'queries' as const, 'clear-queries' as const) }),
  fc.record({ id: fc.nat(), op: fc.constant('set' as const), name: fc.string(), records: fc.array(fc.jsonValue()) }),
);

describe('control protocol', () => {
  it('every request survives a trip through one line', () => {
    fc.assert(
      fc.property(requests, (request) => {
        const line = encodeLine(request);
        expect(line.endsWith('\n')).toBe(true);
        expect(line.indexOf('\n')).toBe(line.length - 1);
        // JSON has no -0; compare as JSON would.
        expect(parseControlRequest(line.trimEnd())).toEqual(JSON.parse(JSON.stringify(request)));
      }),
    );
  });

  it('refuses unknown operations, bad ids and non-objects', () => {
    for (const line of ['', 'null', '[]', '{"id":1}', '{"id":1,"op":"reboot"}', '{"id":-1,"op":"hits"}', '{"id":"1","op":"hits"}', '{"id":1,"op":"set","name":"a.test"}']) {
      expect(() => parseControlRequest(line), line).toThrow(ControlProtocolError);
    }
  });

  it('tells ready lines from replies, and refuses anything else', () => {
    expect(parseControlMessage('{"ready":true,"pid":42}')).toEqual({ kind: 'ready', pid: 42 });
    expect(parseControlMessage('{"id":3,"ok":true,"result":[1]}')).toEqual({ kind: 'reply', id: 3, ok: true, result: [1] });
    expect(parseControlMessage('{"id":3,"ok":false,"error":"no"}')).toEqual({ kind: 'reply', id: 3, ok: false, error: 'no' });
    for (const line of ['{"ready":true}', '{"id":3,"ok":false}', '{"id":3}', 'ok']) {
      expect(() => parseControlMessage(line), line).toThrow(ControlProtocolError);
    }
  });
});
