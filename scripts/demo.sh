#!/usr/bin/env bash
# make demo: needs root (namespaces, nftables). A fresh demo database each time, so the first-start key is shown.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make demo needs root (it builds network namespaces and nftables rules)" >&2; exit 1; }
rm -rf demo-out
exec npx tsx scripts/demo.ts
