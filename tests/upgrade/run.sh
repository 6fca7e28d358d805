#!/usr/bin/env bash
# The upgrade path (docs/operations.md#upgrades): release N−1 keeps working on a database that
# release N migrated, N sees what N−1 wrote, and N−1 can be rolled back to.
#
# N−1 is the commit in packaging/previous-release, checked out with `git worktree` under
# target/upgrade/ and built with the build directory of this tree (only the workspace's own crates
# compile; a second run builds nothing). N is this tree's debug binary. On a fresh SQLite file or
# PostgreSQL database:
#   1. N: `fedgate migrate`;
#   2. N−1: `admin-key create`, `serve`: tenant, client, SCIM token; sign in, refresh, SCIM
#      create and get;
#   3. N: `serve`: reads N−1's SCIM user, refreshes N−1's refresh token, signs in, SCIM create;
#   4. N−1 again (a rollback): reads N's SCIM user, refreshes N's refresh token, signs in.
#
# Usage: tests/upgrade/run.sh [sqlite|postgres]
#   FEDGATE_BIN       N's binary (default: built like `make interop` does)
#   FEDGATE_PREV_BIN  N−1's binary (default: built from packaging/previous-release)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CARGO="${CARGO:-cargo}"
TARGET_DIR="$(cd "$ROOT" && "$CARGO" metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [ -z "${FEDGATE_BIN:-}" ]; then
  (cd "$ROOT" && "$CARGO" test --no-run --test it --quiet)
  export FEDGATE_BIN="$TARGET_DIR/debug/fedgate"
fi
FG_TAG="upgrade"
FG_LOG_LINES=80
# shellcheck source=../interop/lib.sh
. "$ROOT/tests/interop/lib.sh"
NEW="$FEDGATE_BIN"
START=$(date +%s)

# ---- N−1
PREV="$(grep -v '^#' "$ROOT/packaging/previous-release" | grep -m1 -E '^[0-9a-f]{7,40}$' || true)"
[ -n "$PREV" ] || fg_die "packaging/previous-release names no commit"
if [ -n "${FEDGATE_PREV_BIN:-}" ]; then
  OLD="$FEDGATE_PREV_BIN"
else
  git -C "$ROOT" cat-file -e "$PREV^{commit}" 2>/dev/null \
    || fg_die "commit $PREV (packaging/previous-release) is not in this clone: fetch it (git fetch origin $PREV)"
  PREV="$(git -C "$ROOT" rev-parse "$PREV^{commit}")"
  WT="$ROOT/target/upgrade/src-$PREV"
  if [ ! -f "$WT/Cargo.toml" ]; then
    rm -rf "$WT"
    git -C "$ROOT" worktree prune
    mkdir -p "$(dirname "$WT")"
    git -C "$ROOT" worktree add --quiet --detach "$WT" "$PREV" >&2 || fg_die "git worktree add $PREV failed"
  fi
  built=$(date +%s)
  # Intermediate artifacts in this tree's build directory (the dependencies are already built
  # there); the binary itself in a directory of its own, so it never replaces N's. The same
  # command as N's build (`cargo test`'s feature set), so no dependency is rebuilt.
  (cd "$WT" && CARGO_BUILD_BUILD_DIR="$TARGET_DIR" CARGO_TARGET_DIR="$ROOT/target/upgrade/bin-$PREV" \
    "$CARGO" test --locked --no-run --test it --quiet) >&2 || fg_die "building $PREV failed"
  OLD="$ROOT/target/upgrade/bin-$PREV/debug/fedgate"
  # N−1's workspace crates share N's artifact names in that build dir (cargo hashes path crates
  # relative to the workspace) and are newer than N's sources: make N's sources newer again, or
  # N's next build links N−1's fedgate-scim.
  find "$ROOT/src" "$ROOT/crates" "$ROOT/migrations" -name '*.rs' -exec touch {} +
  fg_log "N−1 = ${PREV:0:12} built in $(( $(date +%s) - built )) s"
fi
[ -x "$OLD" ] || fg_die "no N−1 binary at $OLD"

fg_init "${1:-sqlite}"
fg_log "N:   $NEW"
fg_log "N−1: $OLD"
fg_log "database: $FEDGATE_DATABASE_URL"

# Runs $1 (a binary) with the test's configuration, from the temp dir (no ./fedgate.toml).
run() { local bin="$1"; shift; (cd "$FG_TMP" && "$bin" "$@"); }
serve() {
  local bin="$1" what="$2"
  fg_log "---- $what: serve"
  echo "---- $what" >>"$FG_LOG"
  (cd "$FG_TMP" && exec "$bin" serve) >>"$FG_LOG" 2>&1 &
  FG_SERVER_PID=$!
  for _ in $(seq 1 60); do
    if ! kill -0 "$FG_SERVER_PID" 2>/dev/null; then
      if grep -q "this migration has been applied but its file is missing" "$FG_LOG"; then
        fg_log "$what refuses a database with migrations it does not know: it predates the tolerance of"
        fg_log "a newer release's migrations (store::migrate). Set packaging/previous-release to a release that has it."
      fi
      fg_die "$what: fedgate serve exited"
    fi
    curl -fsS -o /dev/null --max-time 2 "$FEDGATE_ISSUER/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  fg_die "$what did not become ready within 30 s"
}
stop() { fg_stop_pid "$FG_SERVER_PID" || true; FG_SERVER_PID=""; }
STATE="$FG_TMP/state.json"
flow() { python3 "$ROOT/tests/package/flow.py" "$STATE" "$@" >&2 || fg_die "flow.py $* failed (see above)"; }
export FEDGATE_URL="$FEDGATE_ISSUER"

# 1. N migrates (the deploy step).
run "$NEW" migrate >>"$FG_LOG" 2>&1 || fg_die "N: fedgate migrate failed"
# 2. N−1 on the migrated database: an offline command, then the server.
FEDGATE_ADMIN_KEY="$(run "$OLD" admin-key create --name upgrade 2>>"$FG_LOG" | tail -n 1 | tr -d '[:space:]')"
[ -n "$FEDGATE_ADMIN_KEY" ] || fg_die "N−1: admin-key create printed no key"
export FEDGATE_ADMIN_KEY
serve "$OLD" "N−1"
flow setup
flow signin
flow refresh
flow scim-create alice
flow scim-get alice
stop
# 3. N on the same database sees N−1's data and carries on.
serve "$NEW" "N"
flow scim-get alice
flow refresh
flow signin
flow scim-create bob
flow scim-get bob
stop
# 4. Rollback: N−1 again, after N wrote.
serve "$OLD" "N−1 (rollback)"
flow scim-get bob
flow refresh
flow signin
stop
fg_log "N−1 ${PREV:0:12} and N on one ${FG_DB_KIND} database: migrate, serve, sign in, refresh, SCIM, rollback ($(( $(date +%s) - START )) s)"
