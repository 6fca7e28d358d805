#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz briefly (CI) or for long (locally); see tests/fuzz/README.md.
#
#   scripts/fuzz-smoke.sh [SECS] [TARGET...]     default: 20 seconds each, saml_acs xml_differential scim_filter scim_patch
#
# Environment:
#   FUZZ_SECS         seconds per target (overrides the first argument; default 20)
#   FUZZ_TARGETS      space-separated targets (overrides the target arguments)
#   FUZZ_PROFILE      dev (default: fast to build, what CI uses) or release (faster executions)
#   FUZZ_SANITIZER    none (default) or address (see the README: not what CI runs)
#   FUZZ_CORPUS       tmp (default: new inputs go to a temporary directory, the committed seeds
#                     stay untouched) or keep (new inputs are added to tests/fuzz/corpus/TARGET)
#   FUZZ_SEED         libFuzzer's -seed (default 1: the smoke run in CI is the same run every
#                     time, so it cannot fail by lottery on an unchanged tree); 0 = a random seed
#                     (what `make fuzz` uses to explore)
#   CARGO_BUILD_JOBS  cargo build jobs (cargo's own variable)
#
#   FUZZ_BUILD_ONLY   1: build the targets and stop (what scripts/prefetch.sh runs)
#
# Installs cargo-fuzz (pinned, scripts/tools.sh) when missing. Needs no nightly toolchain: with -s none cargo-fuzz
# passes no -Z flag and stable rustc builds the targets as they are; only FUZZ_SANITIZER=address
# needs RUSTC_BOOTSTRAP=1 (-Zsanitizer). RUSTC_BOOTSTRAP is set or unset here, never inherited:
# build scripts (thiserror's) watch it, so flipping it rebuilds the whole fuzz build. Exits non-zero when a target crashes,
# panics, times out or runs out of memory, and prints the path of the crashing input.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
SECS=${FUZZ_SECS:-${1:-20}}
[ $# -gt 0 ] && shift
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a TARGETS <<<"$FUZZ_TARGETS"
elif [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=(saml_acs xml_differential scim_filter scim_patch)
fi
PROFILE=${FUZZ_PROFILE:-dev}
SANITIZER=${FUZZ_SANITIZER:-none}
CORPUS_MODE=${FUZZ_CORPUS:-tmp}
SEED=${FUZZ_SEED:-1}

if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [ "$SECS" -lt 1 ]; then
  echo "fuzz-smoke: seconds must be a positive integer, got '$SECS'" >&2
  exit 2
fi
if ! [[ "$SEED" =~ ^[0-9]+$ ]]; then
  echo "fuzz-smoke: FUZZ_SEED must be a non-negative integer (0 = random), got '$SEED'" >&2
  exit 2
fi

bash scripts/tools.sh cargo-fuzz

if [ "$SANITIZER" = none ]; then unset RUSTC_BOOTSTRAP; else export RUSTC_BOOTSTRAP=1; fi
# The fuzz build lives beside the workspace's (target/fuzz), so whatever keeps target/ between
# CI runs keeps it too; it cannot share artifacts with the workspace (other RUSTFLAGS).
FLAGS=(--fuzz-dir tests/fuzz --target-dir target/fuzz -s "$SANITIZER")
case "$PROFILE" in
  dev) FLAGS+=(--dev) ;;
  release) FLAGS+=(--release --debug-assertions) ;;
  *) echo "fuzz-smoke: FUZZ_PROFILE is dev or release, got '$PROFILE'" >&2; exit 2 ;;
esac
LIBFUZZER=(-max_total_time="$SECS" -seed="$SEED" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1)
# libxml2 and xmlsec keep process-wide state that is never freed: not leaks of ours.
[ "$SANITIZER" = address ] && LIBFUZZER+=(-detect_leaks=0)

# One build for every target (fedgate is compiled once); `cargo fuzz run` then only links/checks.
start=$(date +%s)
$CARGO fuzz build "${FLAGS[@]}"
echo "fuzz-smoke: build took $(( $(date +%s) - start ))s"
# FUZZ_BUILD_ONLY=1: the build alone (scripts/prefetch.sh builds the targets while the tests run).
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
  seeds=tests/fuzz/corpus/$t
  mkdir -p "$seeds"
  if [ "$CORPUS_MODE" = keep ]; then
    dirs=("$seeds")
  else
    mkdir -p "$work/$t"
    dirs=("$work/$t" "$seeds")
  fi
  log=$work/$t.log
  echo "fuzz-smoke: $t for ${SECS}s (seed $SEED)"
  start=$(date +%s)
  set +e
  $CARGO fuzz run "${FLAGS[@]}" "$t" "${dirs[@]}" -- "${LIBFUZZER[@]}" >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || true
  echo "fuzz-smoke: $t exited $rc after $(( $(date +%s) - start ))s"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "----- last lines of the $t log -----" >&2
    tail -n 60 "$log" >&2
    mkdir -p tests/fuzz/artifacts
    cp "$log" "tests/fuzz/artifacts/$t.log"
    echo "fuzz-smoke: $t FAILED; full log: tests/fuzz/artifacts/$t.log" >&2
    grep -oE 'Test unit written to [^ ]+' "$log" | sed 's/^Test unit written to /fuzz-smoke: crashing input: /' >&2 || true
    echo "fuzz-smoke: reproduce with: ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }cargo fuzz run ${FLAGS[*]} $t <input>" >&2
    echo "fuzz-smoke: or the whole run again: FUZZ_SEED=$SEED scripts/fuzz-smoke.sh $SECS $t" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: ok (${TARGETS[*]}, ${SECS}s each)"
