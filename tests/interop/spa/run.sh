#!/usr/bin/env bash
# Browser test of CORS for single-page apps: a throw-away fedgate (dev mode), two static pages on
# their own localhost origins (one registered as a public client's web origin, one not), and
# Debian's chromium driven by playwright-core (pinned in package-lock.json). See spa.mjs.
#
# Usage: tests/interop/spa/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   CHROMIUM      chromium binary (default: /usr/bin/chromium)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-spa"
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

command -v node >/dev/null || fg_die "node is required"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || fg_die "chromium is required (Debian: apt-get install chromium; scripts/deps.sh installs it)"
fg_init "${1:-sqlite}"
fg_npm_ci "$HERE"
fg_start_fedgate interop-spa
(cd "$HERE" && CHROMIUM="$CHROMIUM" node --test --test-reporter=tap spa.mjs)
fg_server_alive || fg_die "fedgate serve died during the tests"
