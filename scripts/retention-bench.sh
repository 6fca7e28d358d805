#!/usr/bin/env bash
# Retention at scale (docs/performance.md, "Retention at 10M rows"): fills login traces and
# events with N rows each (default 10,000,000; N/10 for the SCIM request log, deliveries, their
# attempts and the audit log) directly in SQL, then runs fedgate's prune functions until the
# expired 20 % is gone while a writer keeps emitting events. One JSON line per measurement.
#
#   scripts/retention-bench.sh [N]          RETENTION_DBS="sqlite postgres" (default both)
#   RETENTION_ARGS="--expired 0.1"          more flags for the driver (crates/bench/src/bin/retention.rs)
#
# Needs about 12 GB free for N = 10M on SQLite (the database is deleted afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000000}"
cargo build --release -p fedgate-bench --bin retention >&2
BIN="${CARGO_TARGET_DIR:-target}/release/retention"
for kind in ${RETENTION_DBS:-sqlite postgres}; do
  tmp="$(mktemp -d)"
  if [ "$kind" = postgres ]; then
    bash scripts/postgres.sh
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS fedgate_retention" -qc "CREATE DATABASE fedgate_retention" postgres >/dev/null
    url="postgres://postgres@127.0.0.1:5432/fedgate_retention"
  else
    url="sqlite://$tmp/fedgate.db?mode=rwc"
  fi
  "$BIN" --database-url "$url" --rows "$N" ${RETENTION_ARGS:-}
  if [ "$kind" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS fedgate_retention" postgres >/dev/null
  fi
  rm -rf "$tmp"
done
