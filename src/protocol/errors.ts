/**
 * The one registry of runwall's error codes. Every code is documented in
 * docs/errors.md; test/protocol/errors.test.ts keeps the two in step.
 *
 * Errors at boundaries (CLI arguments, policy files, API requests, platform
 * calls) are thrown as RunwallError. On the event path an error becomes data
 * on the event (see `AgentEvent`), never an exception.
 */
export const ERROR_CODES = {
  // Input: the user gave us something we cannot use. Nothing was set up.
  RW_USAGE: 'The command line is not valid (unknown flag, missing command, bad value).',
  RW_ENDPOINT_INVALID: 'An allowed-endpoints entry is malformed (bad host, port or CIDR).',
  RW_POLICY_INVALID: 'A policy file (YAML) is malformed or has an unknown key or value.',
  RW_BLOCKLIST_INVALID: 'A block-list file is malformed (bad entry or missing reason).',
  RW_MODE_INVALID: 'An egress-policy value is neither "audit" nor "block".',
  RW_FILE_UNREADABLE: 'A file named on the command line cannot be read.',
  RW_REPORT_INVALID: 'A run report does not match the RunReport schema.',
  RW_UPSTREAM_INVALID: 'The DNS upstream is not an IP address with an optional port.',
  RW_WORKFLOW_INVALID: 'A workflow file (GitHub Actions YAML) is malformed: bad YAML, an unknown key, a wrong type or an expression that does not parse; the message names the file and line.',
  RW_WORKFLOW_JOB_UNKNOWN: 'The workflow has no job with the id given to --job; the message lists the jobs it has.',
  RW_WORKFLOW_UNSUPPORTED: 'The job cannot be run locally (it calls a reusable workflow with uses:); run the called workflow\'s jobs instead.',
  // Environment: runwall cannot do its job on this machine. Nothing was set up.
  RW_NOT_ROOT: 'runwall exec and runwall agent need root (CAP_NET_ADMIN and CAP_SYS_ADMIN).',
  RW_PLATFORM_MISSING: 'A kernel interface or tool runwall needs (nftables, iproute2, util-linux) is missing.',
  RW_SETUP_FAILED: 'Setting up the sandbox (namespace, veth, nftables table, resolver) failed; it was rolled back.',
  RW_TEARDOWN_FAILED: 'Tearing down the sandbox (processes, cgroup, namespace) did not finish; the message names what is left behind.',
  RW_NFT_FAILED: 'An nftables command was refused by the kernel.',
  RW_DNS_BIND_FAILED: 'The DNS proxy could not bind its listening address.',
  RW_AGENT_RUNNING: 'A runwall agent is already running on this machine.',
  RW_AGENT_NOT_RUNNING: 'No runwall agent is running (no control socket answered).',
  RW_CONTROL_FAILED: 'The agent control socket returned an error or an unreadable reply.',
  // Wire formats decoded on the event path; these become data on events.
  RW_DNS_MALFORMED: 'A DNS message could not be decoded; it was dropped and reported.',
  RW_DNS_UPSTREAM_FAILED: 'The DNS upstream did not answer in time or dropped the connection; the client got SERVFAIL.',
  RW_NFLOG_MALFORMED: 'A netfilter log message could not be decoded.',
  RW_NFLOG_LOST: 'The kernel dropped netfilter log messages because the reader fell behind; some blocked packets were not recorded.',
  RW_TLS_MALFORMED: 'A TLS ClientHello could not be parsed.',
  RW_HTTP_MALFORMED: 'A plain-HTTP request head could not be parsed for its Host; the flow was judged as one without a name.',
  RW_NFQUEUE_MALFORMED: 'A netfilter queue message (a packet held for the TLS/HTTP name check) could not be decoded; the packet was dropped.',
  RW_NFQUEUE_LOST: 'The kernel dropped packets held for the TLS/HTTP name check because the reader fell behind; their senders retransmit them.',
  RW_FANOTIFY_MALFORMED: 'A fanotify event record could not be decoded; the file event was dropped and reported.',
  RW_FILE_EVENTS_LOST: 'The kernel dropped file events (fanotify queue overflow) or the sensor could not place them; some file changes were not recorded.',
  RW_PROCESS_EVENTS_LOST: 'The kernel dropped process or audit events because the reader fell behind; some processes or attributions may be missing.',
  RW_EVENTS_SPOOL_FAILED: 'The events spool (the file where a run\'s events wait for the report, in the agent\'s state directory or beside the exec\'s report) could not be written, or was cut behind runwall\'s back; events not in the file were kept in memory, and the message says which events, if any, are missing from the report.',
  RW_AUDIT_UNAVAILABLE: 'Linux audit cannot be used (not in the kernel, locked, or refused); processes are recorded without audit\'s argv and cwd, and network events are not attributed to processes.',
  // Server.
  RW_AUTH_REQUIRED: 'The request has no valid API key or session.',
  RW_FORBIDDEN: 'The caller may not act on this resource.',
  RW_NOT_FOUND: 'The resource does not exist (or belongs to another tenant).',
  RW_PAYLOAD_TOO_LARGE: 'The upload is larger than the server accepts.',
  RW_PAYLOAD_INVALID: 'The request body is not valid JSON of the documented shape.',
  RW_QUERY_INVALID: 'A query parameter is unknown or its value is outside the documented set.',
  RW_SERVER_LISTEN_FAILED: 'runwall server could not listen on the given host and port (in use, or not an address of this machine).',
  RW_CONFLICT: 'The resource was changed concurrently or already exists.',
  RW_RATE_LIMITED: 'Too many requests from this caller; retry later.',
  RW_DATABASE_FAILED: 'The database refused an operation or a migration failed.',
  RW_GITHUB_FAILED: 'A call to the GitHub API failed.',
  RW_INTERNAL: 'An unexpected internal error; the message says where.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/** Exit status of runwall itself when it cannot do its job (COMMAND's own statuses pass through). */
export const EXIT_RUNWALL_FAILED = 250;
/** Exit status for input runwall refuses (command line, policy, endpoint list, block list): nothing was set up. */
export const EXIT_USAGE = 251;

/** Codes that mean the user's input is wrong (exit 251), as opposed to the machine (exit 250). */
export const INPUT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'RW_USAGE',
  'RW_ENDPOINT_INVALID',
  'RW_POLICY_INVALID',
  'RW_BLOCKLIST_INVALID',
  'RW_MODE_INVALID',
  'RW_FILE_UNREADABLE',
  'RW_REPORT_INVALID',
  'RW_UPSTREAM_INVALID',
  'RW_WORKFLOW_INVALID',
  'RW_WORKFLOW_JOB_UNKNOWN',
  'RW_WORKFLOW_UNSUPPORTED',
]);

export class RunwallError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunwallError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }

  /** One line for a terminal: `runwall: RW_CODE: message`. */
  toLine(): string {
    return `runwall: ${this.code}: ${this.message}`;
  }

  toJSON(): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isRunwallError(value: unknown): value is RunwallError {
  return value instanceof RunwallError;
}
