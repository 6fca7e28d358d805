#!/usr/bin/env bash
# The high-availability test: three fedgate instances behind HAProxy (round-robin, health check
# on /readyz) on a PostgreSQL cluster of their own, under load (brokered logins whose steps hop
# instances, SCIM writes, webhook deliveries); phase A kills one instance with SIGKILL, phase B
# restarts PostgreSQL. The driver (crates/bench/src/ha, `fedgate-ha`) checks and prints the
# numbers; they are also written to target/ha/summary.json. See docs/operations.md#several-instances.
#
# Usage: tests/ha/run.sh
#   FEDGATE_BIN   fedgate binary (default: $CARGO_TARGET_DIR or target, debug/fedgate)
#   HA_DRIVER     the driver (default: the same directory's fedgate-ha)
#   HA_PG_PORT    the test cluster's port (default 5439); the cluster is Debian's
#                 `<version> fedgate_ha`, created once (trust auth on 127.0.0.1), started for the
#                 run and stopped at the end. The main cluster (5432) is never touched.
#   HA_KEEP=1     keep the temp dir (logs, haproxy.cfg) after the run
#
# The driver calls back `tests/ha/run.sh hook ACTION [N]` (kill N, start N, pg-stop, pg-start)
# with HA_DIR set; the hook reads the run's state from $HA_DIR/state.env.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TGT="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TGT" in /*) ;; *) TGT="$ROOT/$TGT" ;; esac
FEDGATE_BIN="${FEDGATE_BIN:-$TGT/debug/fedgate}"
HA_DRIVER="${HA_DRIVER:-$(dirname "$FEDGATE_BIN")/fedgate-ha}"
PG_PORT="${HA_PG_PORT:-5439}"
CLUSTER=fedgate_ha
DB=fedgate_ha
N=3

log() { printf '[ha] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }
pgctl() { $SUDO pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" "$CLUSTER" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# Starts instance $1 (1-based) in the background and waits for /readyz (30 s).
start_instance() {
  local i="$1" port pid
  port="$(eval echo "\$HA_PORT_$i")"
  (
    cd "$HA_DIR"
    export FEDGATE_LISTEN="127.0.0.1:$port" FEDGATE_DATA_DIR="$HA_DIR/data$i"
    exec "$FEDGATE_BIN" serve >>"$HA_DIR/fedgate$i.log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$HA_DIR/fedgate$i.pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || die "instance $i exited at start (log: $HA_DIR/fedgate$i.log)"
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    sleep 0.2
  done
  die "instance $i not ready within 30 s"
}

# ---- hook mode: called by the driver
if [ "${1:-}" = hook ]; then
  [ -n "${HA_DIR:-}" ] && [ -f "$HA_DIR/state.env" ] || die "hook: HA_DIR/state.env missing"
  # shellcheck disable=SC1091
  . "$HA_DIR/state.env"
  case "${2:-}" in
    # SIGKILL, then wait until the process has exited (a zombie or gone: its sockets are closed),
    # so "in flight at the kill" ends when the instance is really dead, not when kill returned.
    kill) pid="$(cat "$HA_DIR/fedgate$3.pid")"; kill -9 "$pid"
          for _ in $(seq 1 500); do
            st="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
            case "$st" in Z|"") break ;; esac
            sleep 0.01
          done ;;
    start) start_instance "$3" ;;
    pg-stop) pgctl stop -m fast ;;
    pg-start) pgctl start ;;
    *) die "hook: unknown action ${2:-}" ;;
  esac
  exit 0
fi

[ -x "$FEDGATE_BIN" ] || die "fedgate binary not found: $FEDGATE_BIN (cargo build first, or set FEDGATE_BIN)"
[ -x "$HA_DRIVER" ] || die "driver not found: $HA_DRIVER (cargo build -p fedgate-bench --bin fedgate-ha)"
command -v haproxy >/dev/null || die "haproxy is required (scripts/deps.sh installs it)"
command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster (Debian's postgresql-common) is required"
[ -n "$(pg_version)" ] || die "no PostgreSQL installed under /etc/postgresql"

HA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-ha.XXXXXX")"
export HA_DIR
HAPROXY_PID=""
cleanup() {
  local rc=$? f pid
  set +e
  for f in "$HA_DIR"/fedgate*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null
  done
  [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null
  for f in "$HA_DIR"/fedgate*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in "$HA_DIR"/fedgate*.log "$HA_DIR"/haproxy.log; do
      [ -s "$f" ] || continue
      log "---- $f (last 40 lines) ----"
      tail -n 40 "$f" >&2
    done
  fi
  pgctl stop -m fast >/dev/null 2>&1
  if [ "${HA_KEEP:-}" = 1 ]; then log "kept $HA_DIR"; else rm -rf "$HA_DIR"; fi
  if [ "$rc" -eq 0 ]; then log "all green"; else log "FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the PostgreSQL cluster of this test (created once; never the main one)
VER="$(pg_version)"
if ! pg_lsclusters -h 2>/dev/null | awk -v c="$CLUSTER" -v v="$VER" '$1==v && $2==c {f=1} END {exit !f}'; then
  log "creating PostgreSQL $VER cluster $CLUSTER on 127.0.0.1:$PG_PORT (trust auth, tests only)"
  $SUDO pg_createcluster "$VER" "$CLUSTER" --port "$PG_PORT" --start-conf manual -- --auth=trust >/dev/null
fi
PG_PORT="$(pg_lsclusters -h | awk -v c="$CLUSTER" -v v="$VER" '$1==v && $2==c {print $3}')"
pg_lsclusters -h | awk -v c="$CLUSTER" -v v="$VER" '$1==v && $2==c {print $4}' | grep -q online || pgctl start
for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p "$PG_PORT" -q && break; sleep 0.2; done
pg_isready -h 127.0.0.1 -p "$PG_PORT" -q || die "cluster $CLUSTER does not answer on $PG_PORT"
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$DB"

# ---- fedgate: one master key, one issuer (the front), one database
FRONT="$(free_port)"
MASTER_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
{
  echo "export FEDGATE_BIN='$FEDGATE_BIN' CLUSTER='$CLUSTER'"
  echo "export FEDGATE_DATABASE_URL='$DATABASE_URL' FEDGATE_MASTER_KEY='$MASTER_KEY'"
  echo "export FEDGATE_ISSUER='http://127.0.0.1:$FRONT' FEDGATE_DEV_MODE=1 FEDGATE_ALLOW_PRIVATE_NETWORK=1"
  # Rate limits are per instance and everything comes from 127.0.0.1: off. Short webhook leases
  # so a killed instance's in-flight deliveries are retried within seconds.
  echo "export FEDGATE__RATE_LIMITS__ENABLED=false FEDGATE__WEBHOOKS__LEASE_SECS=5 FEDGATE__WEBHOOKS__POLL_INTERVAL_MS=200"
  echo "export FEDGATE_LOG='${HA_LOG:-warn}'"
  for i in $(seq 1 $N); do echo "export HA_PORT_$i=$(free_port)"; done
} >"$HA_DIR/state.env"
# shellcheck disable=SC1091
. "$HA_DIR/state.env"
(cd "$HA_DIR" && "$FEDGATE_BIN" migrate >>"$HA_DIR/migrate.log" 2>&1) || die "fedgate migrate failed ($(tail -3 "$HA_DIR/migrate.log"))"
ADMIN_KEY="$(cd "$HA_DIR" && "$FEDGATE_BIN" admin-key create --name ha 2>>"$HA_DIR/migrate.log" | tail -n 1 | tr -d '[:space:]')"
[ -n "$ADMIN_KEY" ] || die "fedgate admin-key create printed no key"
for i in $(seq 1 $N); do start_instance "$i"; done

# ---- HAProxy: round-robin, health check on /readyz, a refused connection retried elsewhere
{
  echo "global"
  echo "  maxconn 4096"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 30s"
  echo "  timeout server 30s"
  echo "  retries 2"
  echo "  option redispatch"
  echo "frontend front"
  echo "  bind 127.0.0.1:$FRONT"
  echo "  default_backend fedgate"
  echo "backend fedgate"
  echo "  balance roundrobin"
  echo "  option httpchk GET /readyz"
  echo "  http-check expect status 200"
  echo "  default-server inter 500ms fall 2 rise 1"
  for i in $(seq 1 $N); do echo "  server fedgate$i 127.0.0.1:$(eval echo "\$HA_PORT_$i") check"; done
} >"$HA_DIR/haproxy.cfg"
haproxy -c -q -f "$HA_DIR/haproxy.cfg" || die "haproxy.cfg does not check"
haproxy -db -f "$HA_DIR/haproxy.cfg" >>"$HA_DIR/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null --max-time 1 "$FEDGATE_ISSUER/readyz" 2>/dev/null && break; sleep 0.2; done
curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" || die "HAProxy front $FEDGATE_ISSUER not answering"
INSTANCES=""
for i in $(seq 1 $N); do INSTANCES="$INSTANCES${INSTANCES:+,}http://127.0.0.1:$(eval echo "\$HA_PORT_$i")"; done
log "PostgreSQL $VER $CLUSTER :$PG_PORT; fedgate x$N ($INSTANCES) behind HAProxy $FEDGATE_ISSUER; dir $HA_DIR"

mkdir -p "$TGT/ha"
FEDGATE_ADMIN_KEY="$ADMIN_KEY" "$HA_DRIVER" --url "$FEDGATE_ISSUER" --instances "$INSTANCES" \
  --database-url "$DATABASE_URL" --hook "bash $HERE/run.sh hook" --out "$TGT/ha/summary.json" ${HA_ARGS:-}
