#!/usr/bin/env bash
# cargo-deny over the dependency graph (deny.toml): licenses, banned and duplicate crates,
# sources — always; security advisories when the RustSec advisory database can be had.
#
#   scripts/deny.sh
#
# The advisories check needs the RustSec advisory-db git repository
# (https://github.com/RustSec/advisory-db). It is not published on any package registry, so on
# a machine without network (this project's CI reaches package registries only) it cannot be
# fetched. Then:
#   - with FEDGATE_ADVISORY_DB=/path/to/a/clone/of/advisory-db, that copy is used (offline);
#   - else, when a copy fetched earlier is in cargo-deny's cache, it is used (offline);
#   - else the check is skipped with a warning, unless DENY_ADVISORIES=require.
# Where the network is available, `cargo deny check` fetches the database itself: that is how
# CI with network must run it (see docs/operations.md, "Dependency checks").
#
# Environment:
#   DENY_ADVISORIES        auto (default: as above), require (fail when no database), skip
#   FEDGATE_ADVISORY_DB    a local git clone of RustSec/advisory-db to check against
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CARGO_DENY_VERSION=0.20.2
MODE=${DENY_ADVISORIES:-auto}
# Where cargo-deny 0.20 keeps the default database (advisory-db + a hash of its URL).
DB_DIR=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691

# The pinned binary scripts/deps.sh installs (PyPI wheel), else a cargo-installed one.
DENY=target/tools/cargo-deny/bin/cargo-deny
if [ "$("$DENY" --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  bash scripts/deps.sh >/dev/null
fi
if [ "$("$DENY" --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "deny: cargo-deny $CARGO_DENY_VERSION is missing (scripts/deps.sh installs it)" >&2
  exit 1
fi

$DENY --color never check --hide-inclusion-graph licenses bans sources

case "$MODE" in
  skip) echo "deny: advisories skipped (DENY_ADVISORIES=skip)"; exit 0 ;;
  auto|require) ;;
  *) echo "deny: DENY_ADVISORIES is auto, require or skip, got '$MODE'" >&2; exit 2 ;;
esac

if [ -n "${FEDGATE_ADVISORY_DB:-}" ]; then
  echo "deny: advisory database from $FEDGATE_ADVISORY_DB"
  rm -rf "$DB_DIR"
  mkdir -p "$(dirname "$DB_DIR")"
  git clone --quiet "$FEDGATE_ADVISORY_DB" "$DB_DIR"
  git -C "$DB_DIR" log -1 --format='deny: advisory database as of %cI (%h)'
  exec $DENY --color never --offline check advisories
fi

# Fetch (network), then check. A failed fetch is told apart from a failed check.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
timeout 300 $DENY --color never check advisories >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  tail -n 1 "$log"
  exit 0
fi
if ! grep -qE "failed to (fetch|open|load) advisory database|unable to fetch|failed to get 'FETCH_HEAD'" "$log" && [ "$rc" -ne 124 ]; then
  cat "$log" >&2
  echo "deny: advisories FAILED (see above; accepted advisories go in deny.toml with a reason)" >&2
  exit 1
fi
msg="deny: advisories NOT checked: the RustSec advisory database cannot be fetched here (no network) and there is no local copy. Run 'cargo deny check advisories' where the network is available, or set FEDGATE_ADVISORY_DB to a clone of https://github.com/RustSec/advisory-db."
if [ -d "$DB_DIR/.git" ]; then
  echo "deny: cannot fetch the advisory database; using the copy in $DB_DIR"
  git -C "$DB_DIR" log -1 --format='deny: advisory database as of %cI (%h)' || true
  set +e
  $DENY --color never --offline check advisories >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    tail -n 1 "$log"
    exit 0
  fi
  if ! grep -q "stale" "$log"; then
    cat "$log" >&2
    echo "deny: advisories FAILED (see above; accepted advisories go in deny.toml with a reason)" >&2
    exit 1
  fi
  msg="deny: advisories NOT checked: the local copy of the advisory database is too old (cargo-deny's maximum-db-staleness) and no newer one can be fetched here. Run 'cargo deny check advisories' where the network is available."
fi
if [ "$MODE" = require ]; then
  echo "$msg" >&2
  exit 1
fi
echo "WARNING: $msg" >&2
