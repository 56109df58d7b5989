#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for tests and benchmarks, listening only
# on 127.0.0.1 and a unix socket in its own temporary directory.
#   scripts/pg-start.sh [PORT]          PORT defaults to a free one
# Prints two lines for the caller:  RUNWALL_PG_DIR=<dir>  and  RUNWALL_PG_URL=postgres://...
# Stop and remove it with scripts/pg-stop.sh <dir>.
# Root cannot run postgres: as root the cluster runs as the `postgres` user.
# RUNWALL_PG_DURABLE=1 keeps fsync on (benchmarks); tests turn it off for speed.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/postgres" ]; then
  echo "pg-start: PostgreSQL is not installed (run scripts/install-deps.sh)" >&2
  exit 2
fi

port=${1:-}
if [ -z "$port" ]; then
  for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
  done
fi
[ -n "$port" ] || { echo "pg-start: no free port found" >&2; exit 2; }

dir=$(mktemp -d /tmp/runwall-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "pg-start: no 'postgres' user (is the postgresql package installed?)" >&2; exit 2; }
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
chmod 700 "$dir"

cleanup_on_error() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup_on_error ERR

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1

opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=100 -c shared_buffers=128MB"
if [ "${RUNWALL_PG_DURABLE:-0}" != 1 ]; then
  opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
"${as_pg[@]}" "$bindir/createdb" -h "$dir" -p "$port" -U postgres runwall

trap - ERR
echo "RUNWALL_PG_DIR=$dir"
echo "RUNWALL_PG_URL=postgres://postgres@127.0.0.1:$port/runwall"
