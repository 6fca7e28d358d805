#!/usr/bin/env bash
# SCIM filters, sorting and paging at 10k / 100k / 1M users (docs/performance.md, "SCIM filters
# at 10k / 100k / 1M users"): a release server on SQLite and on PostgreSQL, one tenant filled
# straight in SQL to each size, every query timed over HTTP one at a time (p50, p99, server CPU
# and statements per request), then a busy minute of mixed SCIM load and the server's RSS.
# One JSON line per measurement.
#
#   scripts/scim-growth.sh [SIZES]        SIZES: comma-separated, default 10000,100000,1000000
#   SCIM_GROWTH_DBS="sqlite postgres"     databases (default both)
#   SCIM_GROWTH_ARGS="--requests 100"     more driver flags (crates/bench/src/bin/scim_growth.rs)
#   SCIM_GROWTH_SERVER=path/to/fedgate    another server binary (a "before" build)
#
# Needs about 3 GB free per database at 1M users (deleted afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-10000,100000,1000000}"
cargo build --release -p fedgate --bin fedgate >&2
cargo build --release -p fedgate-bench --bin scim_growth >&2
BIN="${CARGO_TARGET_DIR:-target}/release"
SERVER="${SCIM_GROWTH_SERVER:-$BIN/fedgate}"
PIN_SERVER=""; PIN_BENCH=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER="taskset -c 0"; PIN_BENCH="taskset -c 1"; fi
for kind in ${SCIM_GROWTH_DBS:-sqlite postgres}; do
  tmp="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  if [ "$kind" = postgres ]; then
    bash scripts/postgres.sh
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS fedgate_scim_growth" -qc "CREATE DATABASE fedgate_scim_growth" postgres >/dev/null
    url="postgres://postgres@127.0.0.1:5432/fedgate_scim_growth"
  else
    url="sqlite://$tmp/fedgate.db?mode=rwc"
  fi
  export FEDGATE_DATABASE_URL="$url" FEDGATE_DATA_DIR="$tmp" FEDGATE_LISTEN="127.0.0.1:$port" \
         FEDGATE_ISSUER="http://127.0.0.1:$port" FEDGATE_DEV_MODE=1 FEDGATE_LOG=warn \
         FEDGATE__RATE_LIMITS__ENABLED=false FEDGATE_METRICS_TOKEN="growth-metrics-$$-$RANDOM"
  "$SERVER" migrate 2>/dev/null
  key="$("$SERVER" admin-key create --name growth 2>/dev/null)"
  $PIN_SERVER "$SERVER" serve 2>"$tmp/server.log" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  sleep 2 # idle
  FEDGATE_ADMIN_KEY="$key" nice -n 10 $PIN_BENCH "$BIN/scim_growth" --url "http://127.0.0.1:$port" \
    --database-url "$url" --server-pid "$pid" --sizes "$SIZES" ${SCIM_GROWTH_ARGS:-} || { kill "$pid"; exit 1; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ "$kind" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS fedgate_scim_growth" postgres >/dev/null
  fi
  rm -rf "$tmp"
done
