#!/usr/bin/env bash
# SCIM interop: starts a throw-away fedgate (dev mode), creates a tenant and a SCIM token through
# the admin API, and runs every scim2-tester check (PyPI, pinned in requirements.txt) against
# /scim/v2/<tenant>. Exits non-zero when any check fails.
#
# Usage: tests/interop/scim/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="scim-interop"
FG_LOG_LINES=100
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

fg_init "${1:-sqlite}"
fg_start_fedgate scim-interop

admin() { curl -fsS --max-time 10 -H "Authorization: Bearer $FEDGATE_ADMIN_KEY" -H 'content-type: application/json' "$@"; }
admin -d '{"name":"SCIM interop","slug":"scim-interop","domains":["scim-interop.test"]}' \
  "$FEDGATE_ISSUER/admin/v1/tenants" >/dev/null || fg_die "could not create the tenant"
SCIM_TOKEN="$(admin -d '{"name":"scim2-tester"}' "$FEDGATE_ISSUER/admin/v1/tenants/scim-interop/scim-tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')" || fg_die "could not create a SCIM token"

fg_venv "$HERE/.venv" "$HERE/requirements.txt"
fg_log "scim2-tester against $FEDGATE_ISSUER/scim/v2/scim-interop"
(cd "$FG_TMP" && SCIM_URL="$FEDGATE_ISSUER/scim/v2/scim-interop" SCIM_TOKEN="$SCIM_TOKEN" "$HERE/.venv/bin/python" "$HERE/check.py")
fg_server_alive || fg_die "fedgate serve died during the checks"
