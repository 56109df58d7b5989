/**
 * One error body for every failure: `{ error: { code, message, details? } }`,
 * with the HTTP status that belongs to the code.
 */
import { RunwallError, type ErrorCode } from '../../protocol/index.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  RW_AUTH_REQUIRED: 401,
  RW_FORBIDDEN: 403,
  RW_NOT_FOUND: 404,
  RW_CONFLICT: 409,
  RW_PAYLOAD_TOO_LARGE: 413,
  RW_RATE_LIMITED: 429,
  RW_PAYLOAD_INVALID: 400,
  RW_QUERY_INVALID: 400,
  RW_REPORT_INVALID: 400,
  RW_ENDPOINT_INVALID: 400,
  RW_POLICY_INVALID: 400,
  RW_BLOCKLIST_INVALID: 400,
  RW_MODE_INVALID: 400,
  RW_DATABASE_FAILED: 503,
  RW_GITHUB_FAILED: 502,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly details?: Readonly<Record<string, unknown>> };
}

export function errorBody(error: RunwallError): ErrorBody {
  const details = Object.keys(error.details).length > 0 ? { details: error.details } : {};
  return { error: { code: error.code, message: error.message, ...details } };
}

/** Fastify's own errors (body parsing, limits) as coded errors with their status; anything unknown is internal. */
export function fromFastifyError(error: unknown, limits: { bodyLimit: number; contentLength: number | null }): { error: RunwallError; status: number } {
  const coded = codedError(error, limits);
  const unsupportedMedia = typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
  return { error: coded, status: unsupportedMedia ? 415 : statusOf(coded.code) };
}

function codedError(error: unknown, limits: { bodyLimit: number; contentLength: number | null }): RunwallError {
  if (error instanceof RunwallError) return error;
  const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const size = limits.contentLength === null ? 'larger than that' : `${limits.contentLength} bytes`;
      return new RunwallError(
        'RW_PAYLOAD_TOO_LARGE',
        `the upload is ${size}; this server accepts at most ${limits.bodyLimit} bytes per request (send events in batches to POST /api/v1/runs/{runId}/events)`,
        { limit: limits.bodyLimit, ...(limits.contentLength === null ? {} : { size: limits.contentLength }) },
      );
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RunwallError('RW_PAYLOAD_INVALID', 'the body must be JSON: send Content-Type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RunwallError('RW_PAYLOAD_INVALID', 'the body is empty; this endpoint needs a JSON document');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new RunwallError('RW_PAYLOAD_INVALID', 'the Content-Length header does not match the body');
    default:
      if (code.startsWith('FST_ERR_CTP')) return new RunwallError('RW_PAYLOAD_INVALID', message);
      return new RunwallError('RW_INTERNAL', `unexpected error: ${message}`);
  }
}
