"""Runs every scim2-tester check against a fedgate SCIM endpoint; exits non-zero on any failure.

Usage: SCIM_URL=http://.../scim/v2/<tenant> SCIM_TOKEN=fgscim_... python check.py
"""
import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}


def main() -> int:
    url = os.environ["SCIM_URL"].rstrip("/") + "/"
    token = os.environ["SCIM_TOKEN"]
    http = Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client)
    failed = [r for r in results if r.status not in PASSING]
    for r in results:
        mark = "ok  " if r.status in PASSING else "FAIL"
        print(f"{mark} {r.status.name:<10} {r.resource_type or '-':<8} {r.title}: {r.reason or ''}")
    counts = {}
    for r in results:
        counts[r.status.name] = counts.get(r.status.name, 0) + 1
    print(f"scim2-tester: {len(results)} checks: {counts}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
