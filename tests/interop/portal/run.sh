#!/usr/bin/env bash
# Browser E2E of the setup portal: the pysaml2 IdP of tests/interop/saml (the customer's SAML
# IdP), a throw-away fedgate (dev mode) whose DNS resolver is a
# dnsmasq on a free port (started by flow.mjs with the records each step needs), Debian's
# chromium driven by playwright-core (pinned in package-lock.json). Last, an operator bootstrapped
# with `fedgate console bootstrap` finds a failed login in the console. Screenshots and timings.json
# go to target/e2e-screenshots/.
#
# Usage: tests/interop/portal/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   CHROMIUM      chromium binary (default: /usr/bin/chromium)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-portal"
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
MODE="${1:-sqlite}"

command -v node >/dev/null || fg_die "node is required"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || fg_die "chromium is required (Debian: apt-get install chromium; scripts/deps.sh installs it)"
command -v dnsmasq >/dev/null || fg_die "dnsmasq is required (Debian: apt-get install dnsmasq-base; scripts/deps.sh installs it)"

SAML_DIR="$HERE/../saml"

start_idp() {  # the pysaml2 IdP of tests/interop/saml (its venv), as saml/run.sh starts it
  local out="$FG_TMP/idp.out" err="$FG_TMP/idp.log" url=""
  mkdir -p "$FG_TMP/idp"
  : >"$out"
  "$SAML_DIR/.venv/bin/python" -u "$SAML_DIR/idp.py" --port 0 --workdir "$FG_TMP/idp" >"$out" 2>"$err" &
  local pid=$!
  fg_track_pid "$pid" "$err"
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^READY //p' "$out" 2>/dev/null | head -n 1 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || fg_die "idp.py exited early: $(tail -n 20 "$err")"
    sleep 0.1
  done
  [ -n "$url" ] || fg_die "idp.py did not start within 10 s"
  export SAML_IDP_URL="$url"
  fg_log "pysaml2 IdP $url (pid $pid)"
}

command -v xmlsec1 >/dev/null || fg_die "xmlsec1 is required (scripts/deps.sh installs it)"
fg_init "$MODE"
export FEDGATE_ALLOW_PRIVATE_NETWORK=1
fg_venv "$SAML_DIR/.venv" "$SAML_DIR/requirements.txt"
DNS_PORT="$(fg_free_port)"
export FEDGATE__DNS__RESOLVER="127.0.0.1:$DNS_PORT"
fg_npm_ci "$HERE"
fg_start_fedgate interop-portal
# The console's operator, bootstrapped beside the running server (a CLI command on the same
# database; dev mode gives the operators' tenant a dev connection, so no IdP is needed).
export CONSOLE_OPERATOR="operator@ops.e2e.test"
(cd "$FG_TMP" && "$FEDGATE_BIN" console bootstrap --email "$CONSOLE_OPERATOR" >>"$FG_LOG" 2>&1) \
  || fg_die "fedgate console bootstrap failed"
start_idp
SHOTS="$FG_ROOT/target/e2e-screenshots/$MODE"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
(cd "$HERE" && DNS_PORT="$DNS_PORT" CHROMIUM="$CHROMIUM" E2E_SCREENSHOTS="$SHOTS" \
  node --test --test-reporter=tap flow.mjs)
fg_server_alive || fg_die "fedgate serve died during the tests"
fg_log "screenshots and timings: $SHOTS"
