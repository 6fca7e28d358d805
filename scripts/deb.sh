#!/usr/bin/env bash
# Builds fedgate's Debian package with cargo-deb (Cargo.toml's [package.metadata.deb], the files
# in packaging/). cargo-deb is installed pinned from crates.io into target/tools/cargo-deb on first
# use (`cargo install --locked`, about 2 minutes on 2 cores).
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
CARGO_DEB_VERSION=3.8.0
TOOLS="$ROOT/target/tools/cargo-deb"
CARGO_DEB="$TOOLS/bin/cargo-deb"

mode=release
if [ "${1:-}" = "--ci" ]; then mode=ci; shift; fi
target_dir="$("$CARGO" metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="${1:-$target_dir/debian}"
mkdir -p "$out"

if [ "$("$CARGO_DEB" --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "installing cargo-deb $CARGO_DEB_VERSION (crates.io) into $TOOLS" >&2
  start=$(date +%s)
  # Its own target directory (removed afterwards), so it neither uses nor pollutes fedgate's.
  build_dir="$(mktemp -d "${TMPDIR:-/tmp}/cargo-deb-build.XXXXXX")"
  "$CARGO" install cargo-deb --version "$CARGO_DEB_VERSION" --locked --root "$TOOLS" --target-dir "$build_dir" --quiet >&2 \
    || { rm -rf "$build_dir"; echo "cargo install cargo-deb failed" >&2; exit 1; }
  rm -rf "$build_dir"
  echo "cargo-deb $CARGO_DEB_VERSION installed in $(( $(date +%s) - start )) s" >&2
fi

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
