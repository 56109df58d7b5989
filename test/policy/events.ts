// Small builders of run events for the summary and recommendation tests.
import type { ConnectionEvent, DnsEvent, HttpEvent, ProcessRef, RuleRef, RunEvent, TransportProtocol, Verdict } from '../../src/protocol/index.js';

const TIME = '2026-11-26T12:00:00.000Z';
const RULE: RuleRef = { source: 'default-deny', explanation: 'test' };

let seq = 0;
const next = () => ++seq;

export function connection(fields: {
  destination: string;
  port: number | null;
  protocol?: TransportProtocol;
  verdict: Verdict;
  name?: string;
  count?: number;
  process?: ProcessRef;
}): ConnectionEvent {
  return {
    kind: 'connection',
    seq: next(),
    time: TIME,
    protocol: fields.protocol ?? 'tcp',
    family: fields.destination.includes(':') ? 6 : 4,
    destination: fields.destination,
    port: fields.port,
    verdict: fields.verdict,
    rule: RULE,
    count: fields.count ?? 1,
    ...(fields.name === undefined ? {} : { name: fields.name }),
    ...(fields.process === undefined ? {} : { process: fields.process }),
  };
}

export function dns(fields: { name: string; verdict: Verdict; answers?: string[]; rcode?: string; process?: ProcessRef }): DnsEvent {
  return {
    kind: 'dns',
    seq: next(),
    time: TIME,
    name: fields.name,
    qtype: 'A',
    transport: 'udp',
    client: '100.64.0.2:40000',
    verdict: fields.verdict,
    rule: RULE,
    rcode: fields.rcode ?? 'NOERROR',
    answers: (fields.answers ?? []).map((data) => ({ name: fields.name, type: data.includes(':') ? 'AAAA' : 'A', ttl: 60, data })),
    admitted: [],
    ...(fields.process === undefined ? {} : { process: fields.process }),
  };
}

export function http(fields: { host: string; destination: string; port: number; verdict: Verdict }): HttpEvent {
  return { kind: 'http', seq: next(), time: TIME, host: fields.host, destination: fields.destination, port: fields.port, tls: true, verdict: fields.verdict, rule: RULE };
}

export function detection(): RunEvent {
  return { kind: 'detection', seq: next(), time: TIME, id: 'recon-metadata', severity: 'high', title: 'metadata probe', evidence: {}, remedy: 'look' };
}

export function step(): RunEvent {
  return { kind: 'step', seq: next(), time: TIME, action: 'begin', id: 's1', name: 'build' };
}
