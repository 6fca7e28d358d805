#!/usr/bin/env bash
# The upgrade path (docs/operations.md#upgrades): release N−1 keeps working on a database that
# release N migrated, N sees what N−1 wrote, and N−1 can be rolled back to.
#
# N−1 is the commit in packaging/previous-release, checked out with `git worktree` under .upgrade/
# and built with the build directory of this tree (only the workspace's own crates compile; the
# binary is kept as target/upgrade/fedgate-<commit>, so a second run builds nothing). N is this tree's debug binary. On a fresh SQLite file or
# PostgreSQL database:
#   1. N: `fedgate migrate`;
#   2. N−1: `admin-key create`, `serve`: tenant, client, SCIM token; sign in, refresh, SCIM
#      create and get;
#   3. N: `serve`: reads N−1's SCIM user, refreshes N−1's refresh token, signs in, SCIM create;
#   4. N−1 again (a rollback): reads N's SCIM user, refreshes N's refresh token, signs in.
#
# Usage: tests/upgrade/run.sh [sqlite|postgres]
#   FEDGATE_BIN       N's binary (default: built like `make interop` does). When given, N is not
#                     rebuilt after N−1's build: the next cargo build of this tree does it (its
#                     sources are touched newer), which `make test` runs last, after the package.
#   FEDGATE_PREV_BIN  N−1's binary (default: built from packaging/previous-release)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CARGO="${CARGO:-cargo}"
TARGET_DIR="$(cd "$ROOT" && "$CARGO" metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
FEDGATE_BIN_GIVEN="${FEDGATE_BIN:-}"
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
# N's binary as it is now: N−1's build below writes the same file names in the shared build
# directory, so the test runs this copy, whatever the linker does to the file N's was linked to.
mkdir -p "$ROOT/target/upgrade"
cp "$NEW" "$ROOT/target/upgrade/fedgate-N.tmp" && mv "$ROOT/target/upgrade/fedgate-N.tmp" "$ROOT/target/upgrade/fedgate-N"
NEW="$ROOT/target/upgrade/fedgate-N"

# ---- N−1
PREV="$(grep -v '^#' "$ROOT/packaging/previous-release" | grep -m1 -E '^[0-9a-f]{7,40}$' || true)"
[ -n "$PREV" ] || fg_die "packaging/previous-release names no commit"
if [ -n "${FEDGATE_PREV_BIN:-}" ]; then
  OLD="$FEDGATE_PREV_BIN"
else
  git -C "$ROOT" cat-file -e "$PREV^{commit}" 2>/dev/null \
    || fg_die "commit $PREV (packaging/previous-release) is not in this clone: fetch it (git fetch origin $PREV)"
  PREV="$(git -C "$ROOT" rev-parse "$PREV^{commit}")"
  # N−1's binary, copied out of the build directory once built (N's next build may replace the
  # file cargo links it to): a second run (the other database) builds nothing.
  OLD="$ROOT/target/upgrade/fedgate-$PREV"
  if [ ! -x "$OLD" ]; then
    # The worktree lives OUTSIDE the build directory. Cargo records a source file under the build
    # directory relative to the build directory, and every other one relative to its package: N−1's
    # sources under target/ would stay N−1's in the shared fingerprints, and N's next build would
    # find N−1's artifacts fresh and link them (the CI run on e3700c2 failed so: N's lib against
    # N−1's fedgate-scim). Outside it, both trees' fingerprints name the same package-relative
    # files, and the mtimes below decide which tree is newer.
    WT="$ROOT/.upgrade/src-$PREV"
    if [ ! -f "$WT/Cargo.toml" ]; then
      rm -rf "$WT"
      git -C "$ROOT" worktree prune
      mkdir -p "$(dirname "$WT")"
      git -C "$ROOT" worktree add --quiet --detach "$WT" "$PREV" >&2 || fg_die "git worktree add $PREV failed"
    fi
    built=$(date +%s)
    # The workspace's own crates have the same artifact names in both trees (cargo hashes a path
    # crate by its workspace-relative path): whichever tree has the newer sources is rebuilt.
    touch_sources() {
      find "$1/src" "$1/crates" "$1/migrations" -type f -exec touch {} +
      find "$1/tests" \( -name node_modules -o -name target \) -prune -o -name '*.rs' -exec touch {} +
    }
    touch_sources "$WT"
    # Intermediate artifacts in this tree's build directory (the dependencies are already built
    # there); the binary in a target directory of its own. The same command as N's build
    # (`cargo test`'s feature set), so no dependency is rebuilt.
    (cd "$WT" && CARGO_BUILD_BUILD_DIR="$TARGET_DIR" CARGO_TARGET_DIR="$ROOT/target/upgrade/bin-$PREV" \
      "$CARGO" test --locked --no-run --test it --quiet) >&2 || fg_die "building $PREV failed"
    cp "$ROOT/target/upgrade/bin-$PREV/debug/fedgate" "$OLD.tmp" && mv "$OLD.tmp" "$OLD"
    # N's sources newer again: N's next build recompiles its own crates instead of linking N−1's.
    touch_sources "$ROOT"
    if [ -z "${FEDGATE_BIN_GIVEN:-}" ]; then
      (cd "$ROOT" && "$CARGO" test --no-run --test it --quiet)
    fi
    fg_log "N−1 = ${PREV:0:12} built in $(( $(date +%s) - built )) s"
  fi
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
