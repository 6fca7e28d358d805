#!/usr/bin/env bash
# Interop, the real upstream chain: oidc-provider (upstream IdPs, two tenants) -> fedgate ->
# openid-client (the app). Starts a throw-away fedgate (dev mode for http URLs,
# allow_private_network for the IdPs on 127.0.0.1) and runs chain.mjs against it.
#
# Usage: tests/interop/upstream/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
FEDGATE_BIN="${FEDGATE_BIN:-$ROOT/target/debug/fedgate}"
DB_KIND="${1:-sqlite}"
PG_HOST="${PGHOST:-127.0.0.1}"
PG_USER="${PGUSER:-postgres}"

log() { printf '[interop-upstream] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$FEDGATE_BIN" in /*) ;; *) FEDGATE_BIN="$PWD/$FEDGATE_BIN" ;; esac
[ -x "$FEDGATE_BIN" ] || die "fedgate binary not found: $FEDGATE_BIN (build it first, or set FEDGATE_BIN)"
command -v node >/dev/null || die "node is required"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-upstream.XXXXXX")"
LOG="$TMP/fedgate.log"
SERVER_PID=""
PG_DB=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then tail -n 100 "$LOG" >&2; fi
  if [ -n "$PG_DB" ]; then
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -qc "drop database if exists \"$PG_DB\"" >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then log "all green ($DB_KIND)"; else log "FAILED ($DB_KIND, exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export FEDGATE_DATA_DIR="$TMP/data" FEDGATE_LISTEN="127.0.0.1:$PORT" FEDGATE_ISSUER="http://127.0.0.1:$PORT"
export FEDGATE_DEV_MODE=1 FEDGATE_ALLOW_PRIVATE_NETWORK=1
mkdir -p "$FEDGATE_DATA_DIR"
case "$DB_KIND" in
  sqlite) export FEDGATE_DATABASE_URL="sqlite://$TMP/fedgate.db?mode=rwc" ;;
  postgres)
    PG_DB="fedgate_upstream_$(date +%s)_$$"
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "create database \"$PG_DB\"" >/dev/null \
      || { PG_DB=""; die "could not create database"; }
    export FEDGATE_DATABASE_URL="postgres://$PG_USER@$PG_HOST:5432/$PG_DB"
    ;;
  *) die "unknown database kind '$DB_KIND'" ;;
esac

cd "$TMP"
"$FEDGATE_BIN" migrate >>"$LOG" 2>&1 || die "fedgate migrate failed"
ADMIN_KEY="$("$FEDGATE_BIN" admin-key create --name interop-upstream 2>>"$LOG" | tail -n 1 | tr -d '[:space:]')"
[ -n "$ADMIN_KEY" ] || die "no admin key"
"$FEDGATE_BIN" serve >>"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "fedgate serve exited early"
  curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" 2>/dev/null && break
  sleep 0.5
done
curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" || die "fedgate did not become ready"

if [ ! -d "$HERE/node_modules" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  log "npm ci"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi
export FEDGATE_URL="$FEDGATE_ISSUER" FEDGATE_ADMIN_KEY="$ADMIN_KEY"
(cd "$HERE" && node --test --test-reporter=tap chain.mjs)
