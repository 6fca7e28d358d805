#!/usr/bin/env bash
# The "verify tokens in your app" examples against a live fedgate: starts a throw-away fedgate
# (dev mode), logs in through the dev connection (get_tokens.py, standard library only) and runs
#   - examples/verify-node   (jose, node --test)
#   - examples/verify-python (PyJWT + cryptography, pytest)
# against real tokens: a valid access token is accepted; a token for another client (wrong
# audience), a tampered signature, an ID token used as an access token, another tenant, an
# algorithm outside the allow-list are refused.
#
# One database is enough (the examples only read tokens and the JWKS): `make interop` runs it on
# SQLite. Usage: tests/interop/verify/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   VERIFY_ONLY   "node" or "python" to run one side only
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="verify-interop"
FG_LOG_LINES=100
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
EXAMPLES="$FG_ROOT/examples"
ONLY="${VERIFY_ONLY:-}"

command -v node >/dev/null || fg_die "node is required"
fg_init "${1:-sqlite}"
fg_start_fedgate verify-interop
export FEDGATE_TOKENS="$FG_TMP/tokens.json"
python3 "$HERE/get_tokens.py" "$FEDGATE_TOKENS" || fg_die "could not log in and get tokens"

failed=()
if [ -z "$ONLY" ] || [ "$ONLY" = node ]; then
  fg_npm_ci "$EXAMPLES/verify-node"
  fg_log "node --test examples/verify-node/verify.test.mjs"
  (cd "$EXAMPLES/verify-node" && node --test --test-reporter=tap verify.test.mjs) || failed+=("examples/verify-node")
fi
if [ -z "$ONLY" ] || [ "$ONLY" = python ]; then
  # The venv lives under target/ (examples/ stays what a reader copies).
  fg_venv "$FG_ROOT/target/interop/verify-python-venv" "$EXAMPLES/verify-python/requirements-test.txt"
  fg_log "pytest examples/verify-python"
  (cd "$EXAMPLES/verify-python" && "$FG_ROOT/target/interop/verify-python-venv/bin/python" -m pytest -q -p no:cacheprovider test_fedgate_verify.py) \
    || failed+=("examples/verify-python")
fi

fg_server_alive || failed+=("fedgate serve died during the tests")
if [ "${#failed[@]}" -gt 0 ]; then
  fg_log "failed: ${failed[*]}"
  exit 1
fi
