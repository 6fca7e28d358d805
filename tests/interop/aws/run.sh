#!/usr/bin/env bash
# The AWS credentials recipe (docs/cloud-credentials.md) against moto's STS and IAM server:
# starts a throw-away fedgate (dev mode) and `moto_server` on 127.0.0.1, gets a real fedgate ID
# token (a claim rule adds the session tags), creates the IAM OIDC provider and role in moto,
# calls AssumeRoleWithWebIdentity with boto3 (test_sts.py). moto does not verify the token or
# the trust policy: test_sts.py asserts those on fedgate's side.
#
# Usage: tests/interop/aws/run.sh [sqlite|postgres]
#   FEDGATE_BIN   fedgate binary (default: <repo>/target/debug/fedgate)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FG_TAG="interop-aws"
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

fg_init "${1:-sqlite}"
fg_venv "$HERE/.venv" "$HERE/requirements.txt"
fg_start_fedgate interop-aws

port="$(fg_free_port)"
# moto keeps everything in memory and listens on loopback only; it calls nothing outside.
"$HERE/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$FG_TMP/moto.log" 2>&1 &
fg_track_pid $! "$FG_TMP/moto.log"
export MOTO_URL="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null --max-time 2 "$MOTO_URL/moto-api/" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null --max-time 2 "$MOTO_URL/moto-api/" || fg_die "moto_server did not start within 20 s"
fg_log "moto $MOTO_URL"

(cd "$HERE" && "$HERE/.venv/bin/python" -m pytest -q -p no:cacheprovider test_sts.py)
fg_server_alive || fg_die "fedgate serve died during the tests"
