#!/usr/bin/env bash
# Interop, the real upstream chain: oidc-provider (upstream IdPs, two tenants) -> fedgate ->
# openid-client (the app). Starts a throw-away fedgate (dev mode for http URLs,
# allow_private_network for the IdPs on 127.0.0.1) and runs chain.mjs against it, then
# selfserve.mjs: an app's self-serve sign-up (its default tenant's "Continue with Google", an
# enterprise domain typed) in Debian's chromium driven by playwright-core, with screenshots in
# target/e2e-screenshots/<mode>/.
#
# Usage: tests/interop/upstream/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   CHROMIUM      chromium binary (default: /usr/bin/chromium)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-upstream"
FG_LOG_LINES=100
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

command -v node >/dev/null || fg_die "node is required"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || fg_die "chromium is required (Debian: apt-get install chromium; scripts/deps.sh installs it)"
fg_init "${1:-sqlite}"
export FEDGATE_ALLOW_PRIVATE_NETWORK=1
fg_start_fedgate interop-upstream
fg_npm_ci "$HERE"
(cd "$HERE" && node --test --test-reporter=tap chain.mjs)
SHOTS="$FG_ROOT/target/e2e-screenshots/selfserve-$FG_DB_KIND"
mkdir -p "$SHOTS"
(cd "$HERE" && CHROMIUM="$CHROMIUM" E2E_SCREENSHOTS="$SHOTS" node --test --test-reporter=tap selfserve.mjs)
fg_server_alive || fg_die "fedgate serve died during the tests"
