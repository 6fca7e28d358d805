#!/usr/bin/env bash
# Benchmarks the token endpoint of a release build on loopback, on SQLite and on PostgreSQL.
# Usage: scripts/bench.sh [count] [concurrency]     (results: one JSON line per phase)
# BENCH_PHASE=scim runs the SCIM phases instead of the token endpoint (--scim-users 100000).
# BENCH_PHASES=saml runs complete SAML logins (fixture SAML IdP in the driver) and the ACS alone;
# BENCH_BIN=DIR uses prebuilt fedgate + fedgate-bench from DIR (no build).
# BENCH_ARGS adds driver flags (e.g. BENCH_ARGS=--saml-unsigned-requests).
# BENCH_PHASES=flood: junk ACS posts and authorization requests during legitimate logins
# (scripts/bench.sh 500 16: 500 legitimate logins; rows added and webhooks sent are printed).
# The server runs pinned to CPU 0 and the load driver to CPU 1 when taskset is available, so
# "per core" numbers mean what they say.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-20000}"
CONC="${2:-16}"
# Two builds: the server on its own, so the bench's dependencies (and features) never reach it.
# BENCH_BIN=/dir/with/fedgate+fedgate-bench runs given binaries instead (before/after comparisons).
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN"
else
  cargo build --release -p fedgate --bin fedgate >&2
  cargo build --release -p fedgate-bench >&2
  BIN="${CARGO_TARGET_DIR:-target}/release"
fi
PIN_SERVER=""; PIN_BENCH=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER="taskset -c 0"; PIN_BENCH="taskset -c 1"; fi

run_one() {
  local kind="$1" tmp port url pid key
  tmp="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  if [ "$kind" = postgres ]; then
    bash scripts/postgres.sh
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS fedgate_bench" -qc "CREATE DATABASE fedgate_bench" postgres >/dev/null
    url="postgres://postgres@127.0.0.1:5432/fedgate_bench"
  else
    url="sqlite://$tmp/fedgate.db?mode=rwc"
  fi
  export FEDGATE_DATABASE_URL="$url" FEDGATE_DATA_DIR="$tmp" FEDGATE_LISTEN="127.0.0.1:$port" \
         FEDGATE_ISSUER="http://127.0.0.1:$port" FEDGATE_DEV_MODE=1 FEDGATE_LOG=warn \
         FEDGATE_ALLOW_PRIVATE_NETWORK=1 FEDGATE_METRICS_TOKEN="bench-metrics-$$-$RANDOM"
  $BIN/fedgate migrate 2>/dev/null
  key="$($BIN/fedgate admin-key create --name bench 2>/dev/null)"
  $PIN_SERVER $BIN/fedgate serve 2>"$tmp/server.log" &
  pid=$!
  # A PostgreSQL with autovacuum off (this project's test machine) never gathers statistics on
  # the tables the phases fill, and plans `userName eq` on a 100k-user tenant as a scan (40 ms).
  # Production runs autovacuum (docs/operations.md); stand in for it here.
  analyzer=""
  if [ "$kind" = postgres ] && [ "$(psql -h 127.0.0.1 -U postgres -Atc 'show autovacuum' postgres)" = off ]; then
    (while sleep 5; do psql -h 127.0.0.1 -U postgres -qc ANALYZE fedgate_bench >/dev/null 2>&1; done) &
    analyzer=$!
  fi
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  echo "== $kind ==" >&2
  for phase in $PHASES; do
    FEDGATE_ADMIN_KEY="$key" $PIN_BENCH $BIN/fedgate-bench --url "http://127.0.0.1:$port" --server-pid "$pid" \
       --concurrency "$CONC" --count "$COUNT" ${BENCH_ARGS:-} --json "$phase" | sed "s/^{/{\"db\":\"$kind\",/"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ -n "$analyzer" ]; then kill "$analyzer"; wait "$analyzer" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
# Rate limits are about admission, not throughput: they are off for the throughput phases and
# on (defaults) for `flood`, with loopback trusted as a proxy so the driver can speak for the
# attacker's and the offices' addresses through X-Forwarded-For.
PHASES="${BENCH_PHASES:-${BENCH_PHASE:-token login scim}}"
if [[ " $PHASES " == *" flood "* ]]; then
  export FEDGATE__RATE_LIMITS__TRUSTED_PROXIES=127.0.0.1/32
  [ "$PHASES" = flood ] || echo "note: rate limits stay on for every phase of this run" >&2
else
  export FEDGATE__RATE_LIMITS__ENABLED=false
fi
for kind in ${BENCH_DBS:-sqlite postgres}; do run_one "$kind"; done
