#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests (TEST_POSTGRES_URL
# overrides the address). Starts the local Debian cluster when it is down.
set -euo pipefail
URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if pg_isready -d "$URL" -q 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  ver="$(ls /etc/postgresql | sort -V | tail -1)"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
fi
for _ in $(seq 1 30); do
  pg_isready -d "$URL" -q 2>/dev/null && exit 0
  sleep 1
done
echo "PostgreSQL is not reachable at $URL; start it or set TEST_POSTGRES_URL" >&2
exit 1
