#!/usr/bin/env bash
# Stops and removes a cluster started by scripts/pg-start.sh.
#   scripts/pg-stop.sh <dir>
set -euo pipefail
dir=${1:?usage: pg-stop.sh <dir printed by pg-start.sh>}
case "$dir" in /tmp/runwall-pg.*) ;; *) echo "pg-stop: refusing to remove '$dir' (not a pg-start.sh directory)" >&2; exit 2 ;; esac
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -d "$dir/data" ] && [ -n "$bindir" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  else
    "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
fi
rm -rf "$dir"
