#!/usr/bin/env bash
# Interop, the real SAML chain: pysaml2 (idp.py, the tenant's SAML IdP, xmlsec1 from Debian) ->
# fedgate (type "saml" connections) -> openid-client (the app, chain.mjs). Starts a throw-away
# fedgate (dev mode for http URLs, allow_private_network since the IdP listens on 127.0.0.1) and
# one idp.py, runs chain.mjs, stops both.
#
# Usage: tests/interop/saml/run.sh [sqlite|postgres|selftest]
#   selftest      idp.py alone, checked with the xmlsec1 CLI (no fedgate needed)
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
#   PGHOST/PGUSER postgres mode only (default 127.0.0.1 / postgres)
#   SAML_IDP_VERBOSE=1  log pysaml2 at debug level (printed when the run fails)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-saml"
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
MODE="${1:-sqlite}"

command -v xmlsec1 >/dev/null || fg_die "xmlsec1 is required (Debian: apt-get install xmlsec1; scripts/deps.sh installs it)"
command -v openssl >/dev/null || fg_die "openssl is required"

start_idp() {
  local out="$FG_TMP/idp.out" err="$FG_TMP/idp.log" url=""
  mkdir -p "$FG_TMP/idp"
  : >"$out"  # exists before the loop below reads it (the background job opens it asynchronously)
  "$HERE/.venv/bin/python" -u "$HERE/idp.py" --port 0 --workdir "$FG_TMP/idp" \
    ${SAML_IDP_VERBOSE:+--verbose} >"$out" 2>"$err" &
  local pid=$!
  fg_track_pid "$pid" "$err"
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^READY //p' "$out" 2>/dev/null | head -n 1 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || fg_die "idp.py exited early: $(tail -n 20 "$err")"
    sleep 0.1
  done
  [ -n "$url" ] || fg_die "idp.py did not start within 10 s"
  curl -fsS -o /dev/null --max-time 5 "$url/metadata" || fg_die "idp.py serves no metadata"
  export SAML_IDP_URL="$url"
  fg_log "pysaml2 IdP $url (pid $pid)"
}

if [ "$MODE" = selftest ]; then
  FG_DB_KIND=selftest
  FG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedgate-$FG_TAG.XXXXXX")"
  trap fg_cleanup EXIT
  trap 'exit 130' INT TERM
  fg_venv "$HERE/.venv" "$HERE/requirements.txt"
  start_idp
  "$HERE/.venv/bin/python" "$HERE/selftest.py" "$SAML_IDP_URL" "$FG_TMP/idp"
  exit 0
fi

command -v node >/dev/null || fg_die "node is required"
fg_init "$MODE"
export FEDGATE_ALLOW_PRIVATE_NETWORK=1
fg_venv "$HERE/.venv" "$HERE/requirements.txt"
fg_npm_ci "$HERE"
fg_start_fedgate interop-saml
start_idp
(cd "$HERE" && node --test --test-reporter=tap chain.mjs)
fg_server_alive || fg_die "fedgate serve died during the tests"
