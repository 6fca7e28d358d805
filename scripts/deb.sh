#!/usr/bin/env bash
# Builds fedgate's Debian package with cargo-deb (Cargo.toml's [package.metadata.deb], the files
# in packaging/). cargo-deb is installed pinned from crates.io into target/tools/cargo-deb on first
# use (scripts/tools.sh: `cargo install --locked`, about 1.5 minutes on 2 cores).
#
#   scripts/deb.sh [OUTDIR]        release build (`make deb`); OUTDIR defaults to <target dir>/debian
#   scripts/deb.sh --ci [OUTDIR]   no build: packages the debug binary `cargo test` built (same
#                                  feature set: `cargo test --no-run --test it`), for CI's package
#                                  test; never ship it
#
# Prints the .deb's path on the last line of stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
TOOLS="$ROOT/target/tools/cargo-deb"

mode=release
if [ "${1:-}" = "--ci" ]; then mode=ci; shift; fi
target_dir="$("$CARGO" metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="${1:-$target_dir/debian}"
mkdir -p "$out"

bash "$ROOT/scripts/tools.sh" cargo-deb

# `cargo deb` finds the subcommand on PATH.
export PATH="$TOOLS/bin:$PATH"
if [ "$mode" = ci ]; then
  "$CARGO" test --no-run --test it --quiet >&2
  # cargo-deb warns that the dev profile is meant for tests, not releases: that is what this is.
  "$CARGO" deb --locked --no-build --profile dev --fast --output "$out" --quiet >&2
else
  "$CARGO" deb --locked --output "$out" >&2
fi
ls -t "$out"/fedgate_*.deb | head -1
