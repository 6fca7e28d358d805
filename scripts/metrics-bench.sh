#!/usr/bin/env bash
# The per-request metrics micro-benchmark (benches/metrics): src/metrics.rs compiled on its own,
# optimized, timed on 1, 2, 4 and 8 threads. Argument: requests per thread (default 1,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/metrics-bench} \
  $CARGO run --quiet --release --manifest-path benches/metrics/Cargo.toml -- "${1:-1000000}"
