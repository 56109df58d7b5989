/**
 * Addresses a DNS answer must not open, whatever name it came from: an
 * allowed name (or an attacker's subdomain under an allowed wildcard) that
 * resolves to the cloud metadata service, loopback or a link-local address
 * would otherwise turn an allowed-endpoints entry into a way into the host
 * (DNS rebinding). Such addresses are reachable only through an explicit
 * IP/CIDR allowed-endpoints entry.
 */
import { networkContains, parseCidr, parseIp, type IpNetwork } from './ip.js';

const SPECIAL_NETWORKS: readonly { readonly cidr: string; readonly what: string }[] = [
  { cidr: '0.0.0.0/8', what: 'an unspecified ("this network") address' },
  { cidr: '127.0.0.0/8', what: 'a loopback address' },
  { cidr: '169.254.0.0/16', what: 'a link-local address (cloud metadata services live here)' },
  { cidr: '224.0.0.0/4', what: 'a multicast address' },
  { cidr: '255.255.255.255/32', what: 'the broadcast address' },
  { cidr: '::/128', what: 'the unspecified address' },
  { cidr: '::1/128', what: 'the loopback address' },
  { cidr: 'fe80::/10', what: 'a link-local address' },
  { cidr: 'ff00::/8', what: 'a multicast address' },
  { cidr: 'fd00:ec2::254/128', what: 'the AWS IPv6 metadata service' },
];

// Parsed once: this runs for every address of every DNS answer.
const PARSED: readonly { readonly network: IpNetwork; readonly what: string }[] = SPECIAL_NETWORKS.map(({ cidr, what }) => {
  const parsed = parseCidr(cidr);
  if ('problem' in parsed) throw new Error(`special network ${cidr} ${parsed.problem}`);
  return { network: parsed.network, what };
});

/** Why this address may not be admitted from DNS, or null when it may. */
export function specialAddressReason(ip: string): string | null {
  const address = parseIp(ip);
  if (address === null) return null;
  for (const { network, what } of PARSED) {
    if (networkContains(network, address)) return `${ip} is ${what}`;
  }
  return null;
}
