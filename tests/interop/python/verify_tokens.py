"""Interop test: fedgate tokens verified by PyJWT (+ cryptography).

Runs against an ALREADY RUNNING fedgate in dev mode:

    FEDGATE_URL=http://127.0.0.1:18080 FEDGATE_ADMIN_KEY=... pytest -q verify_tokens.py

A full authorization code flow (PKCE S256) is driven with plain ``requests``
(a Session keeps the fedgate_login cookie, allow_redirects=False), and the
ID token and access token signatures are verified with PyJWT against the
JWKS (``jwt.PyJWKClient``) for clients registered with ES256 (default),
RS256 and EdDSA.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

ISSUER = os.environ.get("FEDGATE_URL", "").rstrip("/")
ADMIN_KEY = os.environ.get("FEDGATE_ADMIN_KEY", "")
REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = "openid email profile offline_access"
RUN = secrets.token_hex(4)
SLUG = f"interop-py-{RUN}"
DOMAIN = f"{SLUG}.test"
EMAIL = f"alice@{DOMAIN}"
GROUP = "engineering"
ALGS = ["ES256", "RS256", "EdDSA"]
TIMEOUT = 15
LEEWAY = 5


# --------------------------------------------------------------------- helpers


class _FormParser(HTMLParser):
    """Collects the first <form>: its attributes, hidden inputs and action buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] | None = None
        self.hidden: list[tuple[str, str]] = []
        self.buttons: list[str] = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if self._done:
            return
        if tag == "form" and self.form is None:
            self.form = a
            self._in_form = True
        elif self._in_form and tag == "input" and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.hidden.append((a["name"], a.get("value", "")))
        elif self._in_form and tag in ("button", "input") and a.get("name") == "action":
            self.buttons.append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _admin_create(path: str, body: dict) -> dict:
    r = requests.post(
        f"{ISSUER}/admin/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 201, f"POST /admin/v1{path} {body} -> {r.status_code} {r.text}"
    return r.json()


def _at_redirect_uri(url: str) -> bool:
    u, r = urlsplit(url), urlsplit(REDIRECT_URI)
    return (u.scheme, u.netloc, u.path) == (r.scheme, r.netloc, r.path)


def code_flow(meta: dict, client: dict, *, decision: str = "approve") -> dict:
    """Authorize -> dev page -> approve -> code -> token. Returns the token response + context."""
    verifier = _b64url(secrets.token_bytes(32))
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client["id"],
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "organization": SLUG,
    }
    s = requests.Session()
    r = s.get(meta["authorization_endpoint"], params=params, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code in (302, 303), f"authorize -> {r.status_code} {r.text[:500]}"
    assert "fedgate_login" in s.cookies, f"fedgate_login cookie not set: {r.headers.get('set-cookie')}"
    url = urljoin(r.url, r.headers["Location"])
    posted = False
    for _ in range(10):
        if _at_redirect_uri(url):
            break
        r = s.get(url, allow_redirects=False, timeout=TIMEOUT)
        if r.is_redirect:
            url = urljoin(r.url, r.headers["Location"])
            continue
        assert r.status_code == 200 and not posted, f"GET {url} -> {r.status_code} {r.text[:500]}"
        p = _FormParser()
        p.feed(r.text)
        assert p.form is not None, f"no form on dev page: {r.text[:1000]}"
        assert p.form.get("method", "").lower() == "post"
        assert decision in p.buttons, f"buttons {p.buttons}"
        data = dict(p.hidden)
        data["action"] = decision
        r = s.post(urljoin(r.url, p.form["action"]), data=data, allow_redirects=False, timeout=TIMEOUT)
        posted = True
        assert r.status_code == 303, f"approve -> {r.status_code} {r.text[:500]}"
        url = urljoin(r.url, r.headers["Location"])
    assert _at_redirect_uri(url), f"never reached the redirect_uri, last url {url}"
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q.get("state") == state
    assert q.get("iss") == ISSUER, f"RFC 9207 iss parameter: {q}"
    if decision != "approve":
        return {"callback": q}
    assert "code" in q, q

    r = requests.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": q["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client["id"], client["client_secret"]),  # client_secret_basic
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, f"token -> {r.status_code} {r.text}"
    assert r.headers.get("content-type", "").startswith("application/json")
    assert "no-store" in r.headers.get("cache-control", ""), "token response Cache-Control: no-store (RFC 6749 5.1)"
    tok = r.json()
    assert tok["token_type"].lower() == "bearer"
    return {"tokens": tok, "nonce": nonce, "state": state, "callback": q}


# -------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def meta() -> dict:
    assert ISSUER, "FEDGATE_URL must be set"
    assert ADMIN_KEY, "FEDGATE_ADMIN_KEY must be set"
    r = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["issuer"] == ISSUER
    return m


@pytest.fixture(scope="session")
def jwks_client(meta) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True)


@pytest.fixture(scope="session")
def tenant(meta) -> dict:
    t = _admin_create("/tenants", {"name": f"Interop py {RUN}", "slug": SLUG, "domains": [DOMAIN]})
    conn = _admin_create(
        f"/tenants/{t['id']}/connections",
        {
            "type": "dev",
            "name": "Dev login",
            "default_email": EMAIL,
            "default_name": "Alice Example",
            "groups": [GROUP],
        },
    )
    return {"tenant": t, "connection": conn}


@pytest.fixture(scope="session")
def clients(tenant) -> dict[str, dict]:
    out = {}
    for alg in ALGS:
        body = {
            "name": f"interop py {alg} {RUN}",
            "type": "confidential",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
        }
        if alg != "ES256":  # ES256 is the default: leave it unset
            body["id_token_signed_response_alg"] = alg
        out[alg] = _admin_create("/clients", body)
    return out


@pytest.fixture(scope="session")
def flows(meta, clients) -> dict[str, dict]:
    return {alg: code_flow(meta, clients[alg]) for alg in ALGS}


# ----------------------------------------------------------------------- tests


def test_jwks_has_all_signing_algs(meta):
    r = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
    assert r.status_code == 200
    keys = r.json()["keys"]
    algs = {k.get("alg") for k in keys}
    assert {"ES256", "RS256", "EdDSA"} <= algs, algs
    for k in keys:
        assert k.get("kid") and k.get("use") == "sig", k
        assert not ({"d", "p", "q", "dp", "dq", "qi"} & k.keys()), f"private key material in JWKS: {k['kid']}"
        jwt.PyJWK(k)  # PyJWT can load every published key


@pytest.mark.parametrize("alg", ALGS)
def test_id_token_signature(alg, flows, clients, jwks_client, tenant):
    flow = flows[alg]
    id_token = flow["tokens"]["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == alg, header
    assert header.get("kid"), header
    key = jwks_client.get_signing_key_from_jwt(id_token)
    claims = jwt.decode(
        id_token,
        key.key,
        algorithms=[alg],
        audience=clients[alg]["id"],
        issuer=ISSUER,
        leeway=LEEWAY,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    assert claims["exp"] > time.time()
    assert claims["nonce"] == flow["nonce"]
    assert claims["org_id"] == tenant["tenant"]["id"]
    assert claims["org_slug"] == SLUG
    assert claims["email"] == EMAIL
    assert claims["connection_id"] == tenant["connection"]["id"]
    assert GROUP in claims["groups"]
    # the signature really is checked: a different algorithm family is refused ...
    other = next(a for a in ALGS if a != alg)
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(id_token, key.key, algorithms=[other], audience=clients[alg]["id"], issuer=ISSUER)
    # ... and so is a token for another audience
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(id_token, key.key, algorithms=[alg], audience="someone-else", issuer=ISSUER)


@pytest.mark.parametrize("alg", ALGS)
def test_access_token_signature(alg, flows, clients, jwks_client):
    at = flows[alg]["tokens"]["access_token"]
    header = jwt.get_unverified_header(at)
    assert header.get("typ") == "at+jwt", f"RFC 9068 typ header: {header}"
    assert header.get("kid"), header
    key = jwks_client.get_signing_key_from_jwt(at)
    claims = jwt.decode(
        at,
        key.key,
        algorithms=[header["alg"]],
        issuer=ISSUER,
        leeway=LEEWAY,
        options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    assert header["alg"] in ("ES256", "RS256", "EdDSA", "PS256", "ES384")
    assert claims["exp"] > time.time()
    assert claims["aud"], "aud present"
    assert claims["client_id"] == clients[alg]["id"]
    assert "openid" in claims["scope"].split()
    id_claims = jwt.decode(flows[alg]["tokens"]["id_token"], options={"verify_signature": False})
    assert claims["sub"] == id_claims["sub"]


def test_tampered_token_is_rejected(flows, jwks_client, clients):
    id_token = flows["ES256"]["tokens"]["id_token"]
    h, p, s = id_token.split(".")
    payload = jwt.decode(id_token, options={"verify_signature": False})
    payload["email"] = "mallory@evil.test"
    forged = _b64url(json.dumps(payload).encode())
    key = jwks_client.get_signing_key_from_jwt(id_token)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{h}.{forged}.{s}", key.key, algorithms=["ES256"], audience=clients["ES256"]["id"])


def test_userinfo_matches_id_token(meta, flows):
    tok = flows["ES256"]["tokens"]
    r = requests.get(
        meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tok['access_token']}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    ui = r.json()
    sub = jwt.decode(tok["id_token"], options={"verify_signature": False})["sub"]
    assert ui["sub"] == sub
    assert ui["email"] == EMAIL


def test_refresh_returns_verifiable_tokens(meta, clients, jwks_client):
    c = clients["EdDSA"]
    tok = code_flow(meta, c)["tokens"]
    r = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        auth=(c["id"], c["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != tok["refresh_token"]
    at = new["access_token"]
    key = jwks_client.get_signing_key_from_jwt(at)
    jwt.decode(at, key.key, algorithms=[jwt.get_unverified_header(at)["alg"]], issuer=ISSUER,
               options={"verify_aud": False})
    if "id_token" in new:
        key = jwks_client.get_signing_key_from_jwt(new["id_token"])
        jwt.decode(new["id_token"], key.key, algorithms=["EdDSA"], audience=c["id"], issuer=ISSUER)
    # reuse of the old refresh token -> invalid_grant
    r = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        auth=(c["id"], c["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"


def test_deny_returns_access_denied(meta, clients):
    q = code_flow(meta, clients["ES256"], decision="deny")["callback"]
    assert q["error"] == "access_denied"
    assert "code" not in q
