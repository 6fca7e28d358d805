#!/usr/bin/env bash
# Installs a pinned cargo tool that a later stage needs, under a lock: `make test` installs them
# in the background while the tests run (scripts/prefetch.sh), and the stage that needs one
# waits for that install instead of starting a second one or finding half of it.
#
#   scripts/tools.sh cargo-deb     cargo-deb 3.8.0 into target/tools/cargo-deb (scripts/deb.sh)
#   scripts/tools.sh cargo-fuzz    cargo-fuzz 0.13.2 into ~/.cargo/bin (scripts/fuzz-smoke.sh)
#
# Each is `cargo install --locked` from crates.io in a target directory of its own (removed
# afterwards), so it neither uses nor pollutes fedgate's. Prints nothing when already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO="${CARGO:-cargo}"
CARGO_DEB_VERSION=3.8.0
CARGO_FUZZ_VERSION=0.13.2
LOCKS="$ROOT/target/tools/locks"
mkdir -p "$LOCKS"

# install NAME VERSION CHECK [ROOT]: cargo install NAME@VERSION unless CHECK prints "NAME VERSION".
install() {
  local name="$1" version="$2" check="$3" root="${4:-}"
  # One install at a time per tool, across processes (flock, util-linux).
  exec 9>"$LOCKS/$name.lock"
  flock 9
  if [ "$($check --version 2>/dev/null || true)" = "$name $version" ]; then
    return 0
  fi
  echo "installing $name $version (crates.io)${root:+ into $root}" >&2
  local start build_dir
  start=$(date +%s)
  build_dir="$(mktemp -d "${TMPDIR:-/tmp}/$name-build.XXXXXX")"
  "$CARGO" install "$name" --version "$version" --locked ${root:+--root "$root"} --target-dir "$build_dir" --quiet >&2 \
    || { rm -rf "$build_dir"; echo "cargo install $name failed" >&2; exit 1; }
  rm -rf "$build_dir"
  echo "$name $version installed in $(( $(date +%s) - start )) s" >&2
}

for tool in "$@"; do
  case "$tool" in
    cargo-deb) install cargo-deb "$CARGO_DEB_VERSION" "$ROOT/target/tools/cargo-deb/bin/cargo-deb" "$ROOT/target/tools/cargo-deb" ;;
    cargo-fuzz) install cargo-fuzz "$CARGO_FUZZ_VERSION" "$CARGO fuzz" ;;
    *) echo "tools.sh: unknown tool '$tool' (cargo-deb, cargo-fuzz)" >&2; exit 2 ;;
  esac
done
