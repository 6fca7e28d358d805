#!/usr/bin/env bash
# Browser E2E of the setup portal: a throw-away fedgate (dev mode) whose DNS resolver is a
# dnsmasq on a free port (started by flow.mjs with the records each step needs), Debian's
# chromium driven by playwright-core (pinned in package-lock.json). Screenshots and timings.json
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

fg_init "$MODE"
DNS_PORT="$(fg_free_port)"
export FEDGATE__DNS__RESOLVER="127.0.0.1:$DNS_PORT"
fg_npm_ci "$HERE"
fg_start_fedgate interop-portal
SHOTS="$FG_ROOT/target/e2e-screenshots/$MODE"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
(cd "$HERE" && DNS_PORT="$DNS_PORT" CHROMIUM="$CHROMIUM" E2E_SCREENSHOTS="$SHOTS" \
  node --test --test-reporter=tap flow.mjs)
fg_server_alive || fg_die "fedgate serve died during the tests"
fg_log "screenshots and timings: $SHOTS"
