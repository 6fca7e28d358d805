#!/usr/bin/env bash
# Validates the admin API's OpenAPI document with a real validator: writes the document (the
# test tests/it/openapi.rs, which also checks that every operation has a unique operationId)
# to target/openapi.json, then runs openapi-spec-validator (PyPI, pinned in
# tests/openapi/requirements.txt, in a venv under target/tools) on it. Part of `make lint`.
#
#   scripts/openapi-check.sh
#
# No code generator runs here: openapi-generator-cli (npm) downloads its Java jar from Maven
# Central at its first run, which this project's CI (package registries only) cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
OUT=$PWD/target/openapi.json
VENV=target/tools/openapi-venv
REQ=tests/openapi/requirements.txt

rm -f "$OUT"
OPENAPI_OUT=$OUT $CARGO test --quiet --test it openapi:: >/dev/null
[ -s "$OUT" ] || { echo "openapi: the test did not write $OUT" >&2; exit 1; }

stamp=$VENV/.requirements.stamp
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$REQ" -nt "$stamp" ]; then
  echo "openapi: pip install -r $REQ into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  touch "$stamp"
fi
"$VENV/bin/openapi-spec-validator" --validation-errors all "$OUT"
