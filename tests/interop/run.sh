#!/usr/bin/env bash
# Interop tests: starts a throw-away fedgate (dev mode) and runs third-party
# relying-party / JWT libraries against it:
#   - Node: openid-client v6 + jose      (oidc/rp.mjs, oidc/machine.mjs: node --test)
#   - Python: requests + PyJWT[crypto]   (python/verify_tokens.py, pytest)
#
# Usage: tests/interop/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
#   INTEROP_ONLY  "node" or "python" to run one side only
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop"
FG_LOG_LINES=200
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ONLY="${INTEROP_ONLY:-}"

command -v node >/dev/null || fg_die "node is required"
command -v npm >/dev/null || fg_die "npm is required"
fg_init "${1:-sqlite}"
fg_log "binary:   $FEDGATE_BIN"
fg_log "database: $FEDGATE_DATABASE_URL"
fg_start_fedgate interop
curl -fsS --max-time 5 -o /dev/null "$FEDGATE_ISSUER/.well-known/openid-configuration" \
  || fg_die "/.well-known/openid-configuration is not served"

failed=()

# ---- Node: openid-client + jose
if [ -z "$ONLY" ] || [ "$ONLY" = node ]; then
  fg_npm_ci "$HERE/oidc"
  fg_log "node --test oidc/rp.mjs"
  (cd "$HERE/oidc" && node --test --test-reporter=tap rp.mjs) || failed+=("node oidc/rp.mjs")
  fg_log "node --test oidc/machine.mjs"
  (cd "$HERE/oidc" && node --test --test-reporter=tap machine.mjs) || failed+=("node oidc/machine.mjs")
fi

# ---- Python: requests + PyJWT
if [ -z "$ONLY" ] || [ "$ONLY" = python ]; then
  fg_venv "$HERE/python/.venv" "$HERE/python/requirements.txt"
  fg_log "pytest -q python/verify_tokens.py"
  (cd "$HERE" && "$HERE/python/.venv/bin/python" -m pytest -q -p no:cacheprovider python/verify_tokens.py) \
    || failed+=("pytest python/verify_tokens.py")
fi

fg_server_alive || failed+=("fedgate serve died during the tests")
if [ "${#failed[@]}" -gt 0 ]; then
  fg_log "failed: ${failed[*]}"
  exit 1
fi
