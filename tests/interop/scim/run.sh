#!/usr/bin/env bash
# SCIM interop: starts a throw-away fedgate (dev mode), creates a tenant and a SCIM token through
# the admin API, and runs every scim2-tester check (PyPI, pinned in requirements.txt) against
# /scim/v2/<tenant>. Exits non-zero when any check fails.
#
# Usage: tests/interop/scim/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../../.." && pwd))"
FEDGATE_BIN="${FEDGATE_BIN:-$ROOT/target/debug/fedgate}"
DB_KIND="${1:-sqlite}"

log() { printf '[scim-interop] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$FEDGATE_BIN" in /*) ;; *) FEDGATE_BIN="$PWD/$FEDGATE_BIN" ;; esac
[ -x "$FEDGATE_BIN" ] || die "fedgate binary not found or not executable: $FEDGATE_BIN (build it first, or set FEDGATE_BIN)"
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-scim-interop.XXXXXX")"
LOG="$TMP/fedgate.log"
SERVER_PID=""
PG_DB=""
PG_HOST="${PGHOST:-127.0.0.1}"
PG_USER="${PGUSER:-postgres}"

cleanup() {
  local rc=$?
  set +e
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
    log "---- fedgate log (last 100 lines) ----"
    tail -n 100 "$LOG" >&2
  fi
  if [ -n "$PG_DB" ]; then
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -qc "drop database if exists \"$PG_DB\"" >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then log "scim interop ($DB_KIND): all green"; else log "scim interop ($DB_KIND): FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export FEDGATE_DATA_DIR="$TMP/data"
export FEDGATE_LISTEN="127.0.0.1:$PORT"
export FEDGATE_ISSUER="http://127.0.0.1:$PORT"
export FEDGATE_DEV_MODE=1
mkdir -p "$FEDGATE_DATA_DIR"
case "$DB_KIND" in
  sqlite) export FEDGATE_DATABASE_URL="sqlite://$TMP/fedgate.db?mode=rwc" ;;
  postgres)
    command -v psql >/dev/null || die "psql is required for postgres mode"
    PG_DB="fedgate_scim_interop_$(date +%s)_$$"
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "create database \"$PG_DB\"" >/dev/null \
      || { PG_DB=""; die "could not create database on $PG_USER@$PG_HOST"; }
    export FEDGATE_DATABASE_URL="postgres://$PG_USER@$PG_HOST:5432/$PG_DB"
    ;;
  *) die "unknown database kind '$DB_KIND' (use sqlite or postgres)" ;;
esac

cd "$TMP"
"$FEDGATE_BIN" migrate >>"$LOG" 2>&1 || die "fedgate migrate failed"
ADMIN_KEY="$("$FEDGATE_BIN" admin-key create --name scim-interop 2>>"$LOG" | tail -n 1 | tr -d '[:space:]')"
[ -n "$ADMIN_KEY" ] || die "fedgate admin-key create printed no key"
"$FEDGATE_BIN" serve >>"$LOG" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 1 60); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "fedgate serve exited early"
  if curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || die "fedgate did not become ready within 30 s"

admin() { curl -fsS --max-time 10 -H "Authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' "$@"; }
admin -d '{"name":"SCIM interop","slug":"scim-interop","domains":["scim-interop.test"]}' \
  "$FEDGATE_ISSUER/admin/v1/tenants" >/dev/null || die "could not create the tenant"
SCIM_TOKEN="$(admin -d '{"name":"scim2-tester"}' "$FEDGATE_ISSUER/admin/v1/tenants/scim-interop/scim-tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')" || die "could not create a SCIM token"

VENV="$HERE/.venv"
STAMP="$VENV/.requirements.stamp"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
fi
if [ ! -f "$STAMP" ] || [ "$HERE/requirements.txt" -nt "$STAMP" ]; then
  log "pip install -r requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" || die "pip install failed"
  touch "$STAMP"
fi
log "scim2-tester against $FEDGATE_ISSUER/scim/v2/scim-interop"
SCIM_URL="$FEDGATE_ISSUER/scim/v2/scim-interop" SCIM_TOKEN="$SCIM_TOKEN" "$VENV/bin/python" "$HERE/check.py"
kill -0 "$SERVER_PID" 2>/dev/null || die "fedgate serve died during the checks"
