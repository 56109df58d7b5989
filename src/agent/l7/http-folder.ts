/**
 * Folds repeats of one L7 flow (same verdict, TLS or not, name, address,
 * port and explanation) seen within `windowMs` into one `http` event with a count, as
 * ConnectionFolder does for connections: 200 connections to one allowed name
 * make one line. The first sighting waits at most `windowMs`.
 */
import { WindowFolder } from '../engine/window-folder.js';
import type { HttpDraft } from './l7-decision.js';

export class HttpFolder extends WindowFolder<HttpDraft> {
  constructor(windowMs: number, emit: (event: HttpDraft) => void) {
    super(
      windowMs,
      (event) => JSON.stringify([event.verdict, event.tls, event.host, event.destination, event.port, event.rule.explanation, event.error?.code ?? null]),
      emit,
    );
  }
}
