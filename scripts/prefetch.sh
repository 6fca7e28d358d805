#!/usr/bin/env bash
# Started by `make test` once the tests are built: in the background and at the lowest CPU
# priority, installs the tools later stages need (cargo-deb for the package, cargo-fuzz) and
# builds the fuzz targets, while the integration tests leave part of the machine idle (they
# wait on HTTP and the databases). It only takes CPU the tests do not want (nice 19), and it
# changes nothing a stage relies on: each stage still installs or builds what it needs, and
# waits for this job where it overlaps (a lock per tool, cargo's lock on target/fuzz). A failure
# here is only logged; the stage that needs the tool tries again and fails visibly.
#
#   scripts/prefetch.sh     returns at once; log in target/tools/prefetch.log
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/target/tools"
LOG="$ROOT/target/tools/prefetch.log"
cd "$ROOT"
echo "prefetch: cargo-deb, cargo-fuzz and the fuzz build in the background (log: $LOG)"
nohup nice -n 19 bash -c '
  set -u
  start=$(date +%s)
  bash scripts/tools.sh cargo-deb || echo "prefetch: cargo-deb failed"
  bash scripts/tools.sh cargo-fuzz || echo "prefetch: cargo-fuzz failed"
  FUZZ_BUILD_ONLY=1 bash scripts/fuzz-smoke.sh || echo "prefetch: the fuzz build failed"
  echo "prefetch: done in $(( $(date +%s) - start )) s"
' >"$LOG" 2>&1 </dev/null &
