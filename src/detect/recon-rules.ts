/**
 * Reconnaissance: asking an IP-echo service for the runner's public address,
 * or reaching for the cloud metadata service (where the machine's credentials
 * are). Judged on dns, connection and http events in every mode, whatever
 * their verdict: a blocked attempt is still an attempt. Pure.
 */
import type { ConnectionEvent, DnsEvent, HttpEvent } from '../protocol/index.js';
import type { Finding, ProcessFacts } from './detection.js';

/** Services whose answer is the caller's public address (names and every name under them). */
export const IP_ECHO_NAMES: readonly string[] = [
  'ipify.org',
  'ifconfig.me',
  'ifconfig.co',
  'ifconfig.io',
  'icanhazip.com',
  'ipinfo.io',
  'ipecho.net',
  'ident.me',
  'tnedi.me',
  'myip.com',
  'myexternalip.com',
  'ipapi.co',
  'ip-api.com',
  'wtfismyip.com',
  'whatismyipaddress.com',
  'checkip.amazonaws.com',
  'checkip.dyndns.org',
  'checkip.dyndns.com',
  'seeip.org',
  'l2.io',
  'ip.sb',
  'myip.opendns.com',
  'whoami.akamai.net',
  'o-o.myaddr.l.google.com',
  'am.i.mullvad.net',
  'ip4.me',
  'ip6.me',
  'ipv4.icanhazip.com',
];

/** Cloud instance metadata services, by name. */
export const METADATA_NAMES: readonly string[] = [
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
  'metadata.oraclecloud.com',
];

/** Cloud instance metadata services, by address (AWS/GCP/Azure/OpenStack, ECS task, EKS pod identity, Alibaba, AWS IPv6). */
export const METADATA_ADDRESSES: readonly string[] = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', 'fd00:ec2::254', 'fd00:ec2::23'];

function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Each zone with the suffix a name under it ends with, made once: every DNS event is checked against all of them. */
function zonesWithSuffixes(zones: readonly string[]): readonly { readonly zone: string; readonly suffix: string }[] {
  return zones.map((zone) => ({ zone, suffix: `.${zone}` }));
}
const IP_ECHO_ZONES = zonesWithSuffixes(IP_ECHO_NAMES);
// Single-label names (`metadata`) match only exactly; a search domain may have been appended (`metadata.example.com` is not it).
const METADATA_ZONES = METADATA_NAMES.map((zone) => ({ zone, suffix: zone.includes('.') ? `.${zone}` : null }));

function underAny(normalised: string, zones: readonly { readonly zone: string; readonly suffix: string | null }[]): string | null {
  for (const { zone, suffix } of zones) if (normalised === zone || (suffix !== null && normalised.endsWith(suffix))) return zone;
  return null;
}

export function ipEchoService(name: string): string | null {
  return underAny(normaliseName(name), IP_ECHO_ZONES);
}

export function metadataName(name: string): string | null {
  return underAny(normaliseName(name), METADATA_ZONES);
}

export function isMetadataAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  return METADATA_ADDRESSES.includes(a);
}

type NetworkEvent = DnsEvent | ConnectionEvent | HttpEvent;

export function detectRecon(event: NetworkEvent, process: ProcessFacts | undefined): Finding[] {
  const base = { time: event.time, process, step: event.step };
  const findings: Finding[] = [];
  if (event.kind === 'dns') {
    const name = normaliseName(event.name);
    const echo = underAny(name, IP_ECHO_ZONES);
    if (echo) findings.push({ ...base, id: 'recon-ip-echo', evidence: { name, service: echo, qtype: event.qtype, verdict: event.verdict } });
    const meta = underAny(name, METADATA_ZONES);
    if (meta) findings.push({ ...base, id: 'recon-metadata', evidence: { name, service: meta, qtype: event.qtype, verdict: event.verdict } });
    // A name that resolves to the metadata address reaches it around an address rule.
    const rebinding = event.answers.find((a) => (a.type === 'A' || a.type === 'AAAA') && isMetadataAddress(a.data));
    if (rebinding && !meta) {
      findings.push({ ...base, id: 'recon-metadata', title: `A name resolved to the cloud metadata address (${event.name} → ${rebinding.data})`, evidence: { name, address: rebinding.data, verdict: event.verdict } });
    }
    return findings;
  }
  if (event.kind === 'connection') {
    if (isMetadataAddress(event.destination)) {
      findings.push({ ...base, id: 'recon-metadata', evidence: { destination: event.destination, port: event.port, protocol: event.protocol, verdict: event.verdict, ...(event.name ? { name: event.name } : {}) } });
    } else if (event.name && ipEchoService(event.name)) {
      findings.push({ ...base, id: 'recon-ip-echo', evidence: { name: event.name, destination: event.destination, port: event.port, verdict: event.verdict } });
    }
    return findings;
  }
  const echo = ipEchoService(event.host);
  if (echo) findings.push({ ...base, id: 'recon-ip-echo', evidence: { name: event.host, service: echo, destination: event.destination, verdict: event.verdict } });
  if (metadataName(event.host) || isMetadataAddress(event.destination) || isMetadataAddress(event.host)) {
    findings.push({ ...base, id: 'recon-metadata', evidence: { host: event.host, destination: event.destination, path: event.path ?? null, verdict: event.verdict } });
  }
  return findings;
}

/** What makes two recon findings the same thing (reported once per run). */
export function reconKey(finding: Finding): string {
  const e = finding.evidence;
  return `${finding.id}:${String(e['service'] ?? e['name'] ?? e['destination'] ?? e['host'] ?? '')}`;
}
