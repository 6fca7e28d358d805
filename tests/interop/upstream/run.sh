#!/usr/bin/env bash
# Interop, the real upstream chain: oidc-provider (upstream IdPs, two tenants) -> fedgate ->
# openid-client (the app). Starts a throw-away fedgate (dev mode for http URLs,
# allow_private_network for the IdPs on 127.0.0.1) and runs chain.mjs against it.
#
# Usage: tests/interop/upstream/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-upstream"
FG_LOG_LINES=100
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

command -v node >/dev/null || fg_die "node is required"
fg_init "${1:-sqlite}"
export FEDGATE_ALLOW_PRIVATE_NETWORK=1
fg_start_fedgate interop-upstream
fg_npm_ci "$HERE"
(cd "$HERE" && node --test --test-reporter=tap chain.mjs)
