#!/usr/bin/env bash
# Interop tests: starts a throw-away fedgate (dev mode) and runs third-party
# relying-party / JWT libraries against it:
#   - Node: openid-client v6 + jose      (oidc/rp.mjs, node --test)
#   - Python: requests + PyJWT[crypto]   (python/verify_tokens.py, pytest)
#
# Usage: tests/interop/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
#   INTEROP_ONLY  "node" or "python" to run one side only
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))"
FEDGATE_BIN="${FEDGATE_BIN:-$ROOT/target/debug/fedgate}"
DB_KIND="${1:-sqlite}"
ONLY="${INTEROP_ONLY:-}"

log() { printf '[interop] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$FEDGATE_BIN" in /*) ;; *) FEDGATE_BIN="$PWD/$FEDGATE_BIN" ;; esac
[ -x "$FEDGATE_BIN" ] || die "fedgate binary not found or not executable: $FEDGATE_BIN (build it first, or set FEDGATE_BIN)"
command -v node >/dev/null || die "node is required"
command -v npm >/dev/null || die "npm is required"
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-interop.XXXXXX")"
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
    log "---- fedgate log (last 200 lines of $LOG) ----"
    tail -n 200 "$LOG" >&2
    log "---- end of fedgate log ----"
  fi
  if [ -n "$PG_DB" ]; then
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "drop database if exists \"$PG_DB\"" >/dev/null 2>&1 \
      || log "warning: could not drop database $PG_DB"
  fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then log "interop: all green"; else log "interop: FAILED (exit $rc)"; fi
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
  sqlite)
    export FEDGATE_DATABASE_URL="sqlite://$TMP/fedgate.db?mode=rwc"
    ;;
  postgres)
    command -v psql >/dev/null || die "psql is required for postgres mode"
    PG_DB="fedgate_interop_$(date +%s)_$$"
    psql -h "$PG_HOST" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "create database \"$PG_DB\"" >/dev/null \
      || { PG_DB=""; die "could not create database on $PG_USER@$PG_HOST"; }
    export FEDGATE_DATABASE_URL="postgres://$PG_USER@$PG_HOST:5432/$PG_DB"
    ;;
  *) die "unknown database kind '$DB_KIND' (use sqlite or postgres)" ;;
esac
log "binary:   $FEDGATE_BIN"
log "issuer:   $FEDGATE_ISSUER"
log "database: $FEDGATE_DATABASE_URL"

# fedgate reads ./fedgate.toml when present: run it from the temp dir so that a
# developer's config in the current directory cannot leak into the test.
cd "$TMP"
"$FEDGATE_BIN" migrate >>"$LOG" 2>&1 || die "fedgate migrate failed"
ADMIN_KEY="$("$FEDGATE_BIN" admin-key create --name interop 2>>"$LOG" | tail -n 1 | tr -d '[:space:]')" \
  || die "fedgate admin-key create failed"
[ -n "$ADMIN_KEY" ] || die "fedgate admin-key create printed no key"

"$FEDGATE_BIN" serve >>"$LOG" 2>&1 &
SERVER_PID=$!
log "fedgate serve pid $SERVER_PID, log $LOG"

ready=""
for _ in $(seq 1 60); do  # 60 x 0.5 s = 30 s
  kill -0 "$SERVER_PID" 2>/dev/null || die "fedgate serve exited early"
  if curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || die "fedgate did not become ready within 30 s"
curl -fsS --max-time 5 -o /dev/null "$FEDGATE_ISSUER/.well-known/openid-configuration" \
  || die "/.well-known/openid-configuration is not served"
log "fedgate is ready"

export FEDGATE_URL="$FEDGATE_ISSUER"
export FEDGATE_ADMIN_KEY="$ADMIN_KEY"
failed=()

# ---- Node: openid-client + jose
if [ -z "$ONLY" ] || [ "$ONLY" = node ]; then
  if [ ! -d "$HERE/oidc/node_modules" ] || [ "$HERE/oidc/package-lock.json" -nt "$HERE/oidc/node_modules/.package-lock.json" ]; then
    log "npm ci (oidc)"
    (cd "$HERE/oidc" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi
  log "node --test oidc/rp.mjs"
  (cd "$HERE/oidc" && node --test --test-reporter=tap rp.mjs) || failed+=("node oidc/rp.mjs")
fi

# ---- Python: requests + PyJWT
if [ -z "$ONLY" ] || [ "$ONLY" = python ]; then
  VENV="$HERE/python/.venv"
  STAMP="$VENV/.requirements.stamp"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed"
  fi
  if [ ! -f "$STAMP" ] || [ "$HERE/python/requirements.txt" -nt "$STAMP" ]; then
    log "pip install -r python/requirements.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/python/requirements.txt" \
      || die "pip install failed"
    touch "$STAMP"
  fi
  log "pytest -q python/verify_tokens.py"
  (cd "$HERE" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider python/verify_tokens.py) \
    || failed+=("pytest python/verify_tokens.py")
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  failed+=("fedgate serve died during the tests")
fi
if [ "${#failed[@]}" -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
