"""Logs in to a running fedgate (dev mode) and writes real tokens for the verifier examples.

    FEDGATE_URL=... FEDGATE_ADMIN_KEY=... python3 get_tokens.py OUT.json

Standard library only. Creates two tenants with a dev connection and two confidential clients,
drives the authorization code flow (PKCE) through the dev login page, and writes:
issuer, client_id, org_id, other_org_id, access_token, id_token (client A in tenant A) and
other_client_access_token (client B in tenant A: a token for another audience).
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

ISSUER = os.environ["FEDGATE_URL"].rstrip("/")
ADMIN_KEY = os.environ["FEDGATE_ADMIN_KEY"]
REDIRECT_URI = "http://127.0.0.1:9/cb"
RUN = secrets.token_hex(3)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)


def call(o, url: str, data: bytes | None = None, headers: dict | None = None):
    """(status, headers (case-insensitive), body); redirects are not followed."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with o.open(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def admin(path: str, body: dict) -> dict:
    s, _, b = call(
        opener(),
        f"{ISSUER}/admin/v1{path}",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert s == 201, f"POST {path} -> {s} {b[:300]!r}"
    return json.loads(b)


class Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self._in = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in = a.get("action", ""), True
        elif self._in and tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.hidden[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._in = False


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def login(client: dict, org: str) -> dict:
    o = opener()
    verifier = b64(secrets.token_bytes(32))
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": client["id"], "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile", "state": "s", "nonce": "n", "organization": org,
        "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256",
    })
    s, h, b = call(o, f"{ISSUER}/oauth2/authorize?{q}")
    assert s in (302, 303), f"authorize -> {s} {b[:300]!r}"
    url = urllib.parse.urljoin(ISSUER, h["Location"])
    for _ in range(5):
        if url.startswith(REDIRECT_URI):
            break
        s, h, b = call(o, url)
        if s in (302, 303):
            url = urllib.parse.urljoin(url, h["Location"])
            continue
        assert s == 200, f"GET {url} -> {s}"
        f = Form()
        f.feed(b.decode())
        data = urllib.parse.urlencode({**f.hidden, "action": "approve"}).encode()
        s, h, b = call(o, urllib.parse.urljoin(url, f.action or url), data)
        assert s == 303, f"approve -> {s} {b[:300]!r}"
        url = urllib.parse.urljoin(url, h["Location"])
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["code"][0]
    basic = base64.b64encode(f"{client['id']}:{client['client_secret']}".encode()).decode()
    form = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
    }).encode()
    s, _, b = call(o, f"{ISSUER}/oauth2/token", form, {"Authorization": f"Basic {basic}"})
    assert s == 200, f"token -> {s} {b[:300]!r}"
    return json.loads(b)


def main() -> None:
    orgs = []
    for name in ("a", "b"):
        slug = f"verify-{name}-{RUN}"
        t = admin("/tenants", {"name": f"Verify {name}", "slug": slug, "domains": [f"{slug}.test"]})
        admin(f"/tenants/{slug}/connections", {"type": "dev", "name": "Dev", "default_email": f"alice@{slug}.test",
                                               "default_name": "Alice Example", "groups": ["engineering"]})
        orgs.append((slug, t["id"]))
    clients = [
        admin("/clients", {"name": f"Verify {alg}", "type": "confidential", "redirect_uris": [REDIRECT_URI],
                           "id_token_signed_response_alg": alg})
        for alg in ("ES256", "EdDSA")
    ]
    a = login(clients[0], orgs[0][0])
    b = login(clients[1], orgs[0][0])
    out = {
        "issuer": ISSUER,
        "client_id": clients[0]["id"],
        "org_id": orgs[0][1],
        "other_org_id": orgs[1][1],
        "access_token": a["access_token"],
        "id_token": a["id_token"],
        "other_client_access_token": b["access_token"],
    }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
