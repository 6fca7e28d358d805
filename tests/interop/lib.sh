# Shared by the interop run.sh scripts (source it; bash, set -euo pipefail): a throw-away fedgate
# (dev mode) on a free port with a fresh SQLite file or PostgreSQL database, helper processes
# stopped at exit, the database dropped, fedgate's log printed when anything failed.
#
#   FG_TAG=interop-saml; . "$ROOT/tests/interop/lib.sh"
#   fg_init sqlite|postgres            temp dir ($FG_TMP), exit trap, FEDGATE_* env (not started yet)
#   fg_start_fedgate NAME              migrate, admin key ($FEDGATE_ADMIN_KEY), serve, wait for /readyz
#   fg_track_pid PID [LOGFILE]         also stop PID at exit (before fedgate); LOGFILE printed on failure
#   fg_venv DIR REQUIREMENTS           python venv in DIR with pip install -r REQUIREMENTS when newer
#   fg_npm_ci DIR                      npm ci when node_modules is missing or older than the lock
#   fg_free_port                       prints a free TCP port on 127.0.0.1
#
# Inputs: FEDGATE_BIN (default <repo>/target/debug/fedgate), PGHOST/PGUSER (postgres mode;
# default 127.0.0.1 / postgres), FG_LOG_LINES (how much of fedgate's log a failure prints; default
# 150). Extra settings (e.g. FEDGATE_ALLOW_PRIVATE_NETWORK=1) are exported between fg_init and
# fg_start_fedgate.

FG_TAG="${FG_TAG:-interop}"
FG_LOG_LINES="${FG_LOG_LINES:-150}"
FG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FEDGATE_BIN="${FEDGATE_BIN:-$FG_ROOT/target/debug/fedgate}"
case "$FEDGATE_BIN" in /*) ;; *) FEDGATE_BIN="$PWD/$FEDGATE_BIN" ;; esac
FG_PG_HOST="${PGHOST:-127.0.0.1}"
FG_PG_USER="${PGUSER:-postgres}"
FG_TMP=""
FG_LOG=""
FG_SERVER_PID=""
FG_PG_DB=""
FG_DB_KIND=""
FG_PIDS=()
FG_LOGS=()

fg_log() { printf '[%s] %s\n' "$FG_TAG" "$*" >&2; }
fg_die() { fg_log "ERROR: $*"; exit 1; }

fg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

fg_stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

fg_track_pid() {
  FG_PIDS+=("$1")
  if [ -n "${2:-}" ]; then FG_LOGS+=("$2"); fi
}

fg_cleanup() {
  local rc=$?
  set +e
  local pid
  for pid in "${FG_PIDS[@]}"; do fg_stop_pid "$pid"; done
  fg_stop_pid "$FG_SERVER_PID"
  local f
  for f in "${FG_LOGS[@]}"; do
    if [ "$rc" -ne 0 ] && [ -f "$f" ]; then
      fg_log "---- $f (last 60 lines) ----"
      tail -n 60 "$f" >&2
    fi
  done
  if [ "$rc" -ne 0 ] && [ -n "$FG_LOG" ] && [ -f "$FG_LOG" ]; then
    fg_log "---- fedgate log (last $FG_LOG_LINES lines of $FG_LOG) ----"
    tail -n "$FG_LOG_LINES" "$FG_LOG" >&2
    fg_log "---- end of fedgate log ----"
  fi
  if [ -n "$FG_PG_DB" ]; then
    psql -h "$FG_PG_HOST" -U "$FG_PG_USER" -d postgres -qc "drop database if exists \"$FG_PG_DB\"" >/dev/null 2>&1 \
      || fg_log "warning: could not drop database $FG_PG_DB"
  fi
  [ -n "$FG_TMP" ] && rm -rf "$FG_TMP"
  if [ "$rc" -eq 0 ]; then fg_log "all green ($FG_DB_KIND)"; else fg_log "FAILED ($FG_DB_KIND, exit $rc)"; fi
  exit "$rc"
}

fg_init() {
  FG_DB_KIND="${1:-sqlite}"
  [ -x "$FEDGATE_BIN" ] || fg_die "fedgate binary not found or not executable: $FEDGATE_BIN (build it first, or set FEDGATE_BIN)"
  command -v python3 >/dev/null || fg_die "python3 is required"
  command -v curl >/dev/null || fg_die "curl is required"
  FG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-$FG_TAG.XXXXXX")"
  FG_LOG="$FG_TMP/fedgate.log"
  trap fg_cleanup EXIT
  trap 'exit 130' INT TERM
  local port
  port="$(fg_free_port)"
  export FEDGATE_DATA_DIR="$FG_TMP/data" FEDGATE_LISTEN="127.0.0.1:$port" FEDGATE_ISSUER="http://127.0.0.1:$port"
  export FEDGATE_DEV_MODE=1
  mkdir -p "$FEDGATE_DATA_DIR"
  case "$FG_DB_KIND" in
    sqlite) export FEDGATE_DATABASE_URL="sqlite://$FG_TMP/fedgate.db?mode=rwc" ;;
    postgres)
      command -v psql >/dev/null || fg_die "psql is required for postgres mode"
      FG_PG_DB="fedgate_${FG_TAG//[^a-z0-9]/_}_$(date +%s)_$$"
      psql -h "$FG_PG_HOST" -U "$FG_PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "create database \"$FG_PG_DB\"" >/dev/null \
        || { FG_PG_DB=""; fg_die "could not create a database on $FG_PG_USER@$FG_PG_HOST"; }
      export FEDGATE_DATABASE_URL="postgres://$FG_PG_USER@$FG_PG_HOST:5432/$FG_PG_DB"
      ;;
    *) fg_die "unknown database kind '$FG_DB_KIND' (use sqlite or postgres)" ;;
  esac
}

fg_start_fedgate() {
  local name="${1:-$FG_TAG}" key ready=""
  # fedgate reads ./fedgate.toml when present: run it from the temp dir so that a developer's
  # config in the current directory cannot leak into the test.
  pushd "$FG_TMP" >/dev/null
  "$FEDGATE_BIN" migrate >>"$FG_LOG" 2>&1 || fg_die "fedgate migrate failed"
  key="$("$FEDGATE_BIN" admin-key create --name "$name" 2>>"$FG_LOG" | tail -n 1 | tr -d '[:space:]')" \
    || fg_die "fedgate admin-key create failed"
  [ -n "$key" ] || fg_die "fedgate admin-key create printed no key"
  "$FEDGATE_BIN" serve >>"$FG_LOG" 2>&1 &
  FG_SERVER_PID=$!
  popd >/dev/null
  for _ in $(seq 1 60); do  # 60 x 0.5 s = 30 s
    kill -0 "$FG_SERVER_PID" 2>/dev/null || fg_die "fedgate serve exited early"
    if curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.5
  done
  [ -n "$ready" ] || fg_die "fedgate did not become ready within 30 s"
  export FEDGATE_URL="$FEDGATE_ISSUER" FEDGATE_ADMIN_KEY="$key"
  fg_log "fedgate $FEDGATE_ISSUER ($FG_DB_KIND, pid $FG_SERVER_PID, log $FG_LOG)"
}

fg_server_alive() { kill -0 "$FG_SERVER_PID" 2>/dev/null; }

fg_venv() {
  local dir="$1" req="$2"
  local stamp="$dir/.requirements.stamp"
  if [ ! -x "$dir/bin/python" ]; then
    fg_log "creating venv $dir"
    python3 -m venv "$dir" || fg_die "python3 -m venv failed"
  fi
  if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
    fg_log "pip install -r $req"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || fg_die "pip install failed"
    touch "$stamp"
  fi
}

fg_npm_ci() {
  local dir="$1"
  command -v npm >/dev/null || fg_die "npm is required"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    fg_log "npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || fg_die "npm ci failed"
  fi
}
