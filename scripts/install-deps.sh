#!/usr/bin/env bash
# Installs what runwall's build, tests, demo and benchmarks need on a fresh Debian machine, as root.
# Idempotent: installs only what is missing. Debian packages with apt, the rest with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have nft        || need+=(nftables)
have ip         || need+=(iproute2)
have dig        || need+=(dnsutils)
have conntrack  || need+=(conntrack)
have dnsmasq    || need+=(dnsmasq-base)
have dnsperf    || need+=(dnsperf)
have setpriv    || need+=(util-linux)
have iptables   || need+=(iptables)
have ping       || need+=(iputils-ping)
have nc         || need+=(netcat-openbsd)
have socat      || need+=(socat)
have curl       || need+=(curl)
# Tests run a real `sudo` in a job to see the sudo detection fire.
have sudo       || need+=(sudo)
[ -e /usr/lib/x86_64-linux-gnu/libnftables.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libnftables.so.1 ] || need+=(libnftables1)
if [ "${RUNWALL_WITH_POSTGRES:-1}" = 1 ]; then
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
fi
if [ "${RUNWALL_WITH_CHROMIUM:-1}" = 1 ]; then
  have chromium || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Node packages from the lock file; node_modules is reused when the lock has not changed.
stamp=node_modules/.runwall-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
