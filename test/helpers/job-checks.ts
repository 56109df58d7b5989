// Shell checks a job runs inside the sandbox; each prints `NAME EXIT_STATUS`.

/** Each line of the job's output: `NAME EXIT_STATUS`. */
export const CHECKS = `
check() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }
check allowed curl -sf -m 3 http://allowed.test:443/
check allowed6 curl -sf -m 3 -6 http://allowed.test:443/
check cname curl -sf -m 3 http://alias.allowed.test:443/
check wildcard_deep curl -sf -m 3 http://deep.sub.allowed.test:443/
check denied_name curl -sf -m 3 http://other.test:443/
check direct_ip curl -sf -m 3 http://198.51.100.11:443/
check direct_ip6 curl -sf -m 3 http://[2001:db8::11]:443/
check port_mismatch curl -sf -m 3 http://allowed.test:8443/
check udp443 sh -c 'echo quic | nc -u -w1 198.51.100.10 443 | grep -q quic'
check icmp ping -c1 -W1 198.51.100.10
check rogue_udp dig +time=1 +tries=1 @203.0.113.53 allowed.test
check rogue_tcp dig +tcp +time=1 +tries=1 @203.0.113.53 allowed.test
check rogue_dot nc -z -w2 203.0.113.53 853
`;

export function statuses(result: { readonly stdout: string }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of result.stdout.split('\n')) {
    const match = /^(\w+) (\d+)$/.exec(line.trim());
    if (match) out[match[1]!] = Number(match[2]);
  }
  return out;
}
