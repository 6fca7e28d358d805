"""Scripted use of a running fedgate (dev mode), Python standard library only: the steps the package
and upgrade tests (tests/package/run.sh, tests/upgrade/run.sh) run against a server, keeping what
they need between runs in a JSON state file (so a step can run against another binary).

    python3 flow.py STATE setup            tenant + dev connection, client, SCIM token (admin API)
    python3 flow.py STATE signin           authorize -> dev page -> approve -> code -> token, userinfo
    python3 flow.py STATE refresh          refresh grant with the stored refresh token (rotated)
    python3 flow.py STATE scim-create NAME a SCIM user (its id stored under NAME)
    python3 flow.py STATE scim-get NAME    reads that user back

Environment: FEDGATE_URL (the issuer), FEDGATE_ADMIN_KEY (setup only). Exits non-zero with a
message on any unexpected answer. Only endpoints every release since the first packaged one
serves are used: the upgrade test runs these steps against the previous release too.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

REDIRECT_URI = "http://127.0.0.1:9/cb"
TIMEOUT = 15


def fail(msg: str) -> None:
    print(f"flow.py: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def request(method: str, url: str, headers: dict | None = None, body: bytes | None = None):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    path = u.path + (f"?{u.query}" if u.query else "")
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.headers, data


def as_json(status: int, data: bytes, what: str, want: int) -> dict:
    if status != want:
        fail(f"{what} -> {status} (want {want}): {data[:500]!r}")
    return json.loads(data)


def admin(method: str, path: str, body: dict) -> dict:
    key = os.environ["FEDGATE_ADMIN_KEY"]
    status, _, data = request(
        method,
        f"{ISSUER}/admin/v1{path}",
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        json.dumps(body).encode(),
    )
    return as_json(status, data, f"{method} /admin/v1{path}", 201)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class FormParser(HTMLParser):
    """The first <form>: its attributes and hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict | None = None
        self.hidden: list[tuple[str, str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form" and self.form is None:
            self.form, self._in = a, True
        elif self._in and tag == "input" and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.hidden.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._in = False


def basic(state: dict) -> dict:
    c = state["client"]
    raw = f"{c['id']}:{c['client_secret']}".encode()
    return {
        "Authorization": "Basic " + base64.b64encode(raw).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def token(state: dict, form: dict, what: str) -> dict:
    status, headers, data = request("POST", f"{ISSUER}/oauth2/token", basic(state), urlencode(form).encode())
    tok = as_json(status, data, what, 200)
    if "no-store" not in (headers.get("Cache-Control") or ""):
        fail(f"{what}: no Cache-Control: no-store")
    return tok


def setup(state: dict) -> None:
    run = secrets.token_hex(4)
    slug = f"deploy-{run}"
    state["slug"], state["email"] = slug, f"alice@{slug}.test"
    admin("POST", "/tenants", {"name": f"Deploy test {run}", "slug": slug, "domains": [f"{slug}.test"]})
    admin(
        "POST",
        f"/tenants/{slug}/connections",
        {"type": "dev", "name": "Dev login", "default_email": state["email"], "default_name": "Alice Example"},
    )
    state["client"] = admin(
        "POST",
        "/clients",
        {
            "name": f"deploy test {run}",
            "type": "confidential",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    state["scim_token"] = admin("POST", f"/tenants/{slug}/scim-tokens", {"name": "deploy test"})["token"]
    state["users"] = {}
    print(f"setup: tenant {slug}, client {state['client']['id']}")


def signin(state: dict) -> None:
    status, _, data = request("GET", f"{ISSUER}/.well-known/openid-configuration")
    meta = as_json(status, data, "discovery", 200)
    if meta["issuer"] != ISSUER:
        fail(f"discovery issuer {meta['issuer']} != {ISSUER}")
    verifier = b64url(secrets.token_bytes(32))
    st, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": state["client"]["id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile offline_access",
        "state": st,
        "nonce": nonce,
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        "organization": state["slug"],
    }
    url = f"{meta['authorization_endpoint']}?{urlencode(params)}"
    cookies: dict[str, str] = {}
    posted = False
    for _ in range(10):
        if url.startswith(REDIRECT_URI):
            break
        hdrs = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        status, headers, data = request("GET", url, hdrs)
        for c in headers.get_all("Set-Cookie") or []:
            name, _, rest = c.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        if status in (302, 303):
            url = urljoin(url, headers["Location"])
            continue
        if status != 200 or posted:
            fail(f"GET {url} -> {status}: {data[:500]!r}")
        form = FormParser()
        form.feed(data.decode())
        if form.form is None:
            fail(f"no form on {url}: {data[:500]!r}")
        fields = dict(form.hidden)
        fields["action"] = "approve"
        hdrs = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        target = urljoin(url, form.form.get("action") or url)
        status, headers, data = request("POST", target, hdrs, urlencode(fields).encode())
        if status != 303:
            fail(f"approve -> {status}: {data[:500]!r}")
        posted = True
        url = urljoin(target, headers["Location"])
    if not url.startswith(REDIRECT_URI):
        fail(f"never reached the redirect_uri; last {url}")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    if q.get("state") != st or "code" not in q:
        fail(f"callback {q}")
    tok = token(
        state,
        {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        "code exchange",
    )
    idc = claims(tok["id_token"])
    if idc.get("iss") != ISSUER or idc.get("nonce") != nonce or idc.get("email") != state["email"]:
        fail(f"ID token claims {idc}")
    status, _, data = request("GET", meta["userinfo_endpoint"], {"Authorization": f"Bearer {tok['access_token']}"})
    ui = as_json(status, data, "userinfo", 200)
    if ui.get("sub") != idc["sub"]:
        fail(f"userinfo sub {ui.get('sub')} != {idc['sub']}")
    state["sub"], state["refresh_token"] = idc["sub"], tok["refresh_token"]
    print(f"signin: {state['email']} signed in (sub {idc['sub']}), refresh token stored")


def refresh(state: dict) -> None:
    tok = token(state, {"grant_type": "refresh_token", "refresh_token": state["refresh_token"]}, "refresh")
    if tok.get("refresh_token") in (None, state["refresh_token"]):
        fail("the refresh token was not rotated")
    if claims(tok["access_token"]).get("sub") != state["sub"]:
        fail("the refreshed access token is for someone else")
    state["refresh_token"] = tok["refresh_token"]
    print("refresh: new tokens, refresh token rotated")


def scim_headers(state: dict) -> dict:
    return {"Authorization": f"Bearer {state['scim_token']}", "Content-Type": "application/scim+json"}


def scim_create(state: dict, name: str) -> None:
    user = f"{name}@{state['slug']}.test"
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user,
        "name": {"givenName": name, "familyName": "Deploy"},
        "emails": [{"value": user, "primary": True}],
        "active": True,
    }
    status, _, data = request(
        "POST", f"{ISSUER}/scim/v2/{state['slug']}/Users", scim_headers(state), json.dumps(body).encode()
    )
    created = as_json(status, data, "SCIM create", 201)
    state["users"][name] = {"id": created["id"], "userName": user}
    print(f"scim-create: {user} ({created['id']})")


def scim_get(state: dict, name: str) -> None:
    u = state["users"][name]
    status, _, data = request("GET", f"{ISSUER}/scim/v2/{state['slug']}/Users/{u['id']}", scim_headers(state))
    got = as_json(status, data, "SCIM get", 200)
    if got.get("userName") != u["userName"] or got.get("active") is not True:
        fail(f"SCIM user {got}")
    print(f"scim-get: {u['userName']}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        fail(__doc__)
    ISSUER = os.environ["FEDGATE_URL"].rstrip("/")
    path, step, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    state = json.load(open(path)) if os.path.exists(path) else {}
    steps = {"setup": setup, "signin": signin, "refresh": refresh, "scim-create": scim_create, "scim-get": scim_get}
    if step not in steps:
        fail(f"unknown step {step}")
    steps[step](state, *args)
    with open(path, "w") as f:
        json.dump(state, f)
