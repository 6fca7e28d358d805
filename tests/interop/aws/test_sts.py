"""AWS credentials from a fedgate token: the recipe of docs/cloud-credentials.md, run.

Against an ALREADY RUNNING fedgate in dev mode and a moto server (STS + IAM):

    FEDGATE_URL=... FEDGATE_ADMIN_KEY=... MOTO_URL=http://127.0.0.1:5000 pytest -q test_sts.py

1. fedgate side: a tenant whose claim rule writes the `https://aws.amazon.com/tags` claim, an
   RS256 client, a real login; the ID token is verified with PyJWT against fedgate's JWKS and its
   shape checked (aud, sub, amr, the session tags), and the role's trust policy conditions are
   evaluated against it (here, since moto does not: see below).
2. AWS side (moto): the IAM OIDC provider (issuer URL, client id as audience), the role with the
   documented trust policy, AssumeRoleWithWebIdentity with boto3, and the returned credentials
   used for GetCallerIdentity.

What moto does NOT check (so AWS may still refuse what passes here): the token's signature,
issuer, audience, expiry, the trust policy's conditions, and the session tags. Those are
asserted on the fedgate side in this file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import boto3
import jwt
import pytest
import requests

ISSUER = os.environ.get("FEDGATE_URL", "").rstrip("/")
ADMIN_KEY = os.environ.get("FEDGATE_ADMIN_KEY", "")
MOTO_URL = os.environ.get("MOTO_URL", "").rstrip("/")
REDIRECT_URI = "http://127.0.0.1:9/cb"
RUN = secrets.token_hex(4)
TIMEOUT = 15
ACCOUNT = "123456789012"  # moto's default account
TAGS = "https://aws.amazon.com/tags"
# The claim rule of docs/cloud-credentials.md: the tenant as a session tag.
AWS_RULES = {
    "rules": [
        {
            "set": {
                "claim": TAGS,
                "value": {"principal_tags": {"org_id": ["{{org_id}}"]}, "transitive_tag_keys": ["org_id"]},
            }
        }
    ]
}


def provider_host() -> str:
    """The IAM OIDC provider's name: the issuer without its scheme (the condition key prefix)."""
    u = urlsplit(ISSUER)
    return u.netloc + u.path


def trust_policy(client_id: str, org_id: str) -> dict:
    """The role trust policy of docs/cloud-credentials.md."""
    host = provider_host()
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        f"{host}:aud": client_id,
                        "aws:RequestTag/org_id": org_id,
                    },
                    "StringLike": {f"{host}:sub": "usr_*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["org_id"]},
                },
            }
        ],
    }


def request_context(claims: dict) -> dict:
    """The condition keys AWS STS derives from a web identity token (a generic OIDC provider)."""
    host = provider_host()
    tags = claims.get(TAGS, {}).get("principal_tags", {})
    ctx = {f"{host}:aud": claims["aud"], f"{host}:sub": claims["sub"], "aws:TagKeys": list(tags)}
    for k, v in tags.items():
        ctx[f"aws:RequestTag/{k}"] = v[0]
    return ctx


def allows(policy: dict, ctx: dict) -> bool:
    """Evaluates the operators the recipe uses (StringEquals, StringLike with a trailing *,
    ForAllValues:StringEquals) for one Allow statement."""
    cond = policy["Statement"][0]["Condition"]
    for k, want in cond.get("StringEquals", {}).items():
        if ctx.get(k) != want:
            return False
    for k, pat in cond.get("StringLike", {}).items():
        v = ctx.get(k)
        if not isinstance(v, str) or not (v.startswith(pat[:-1]) if pat.endswith("*") else v == pat):
            return False
    for k, allowed in cond.get("ForAllValues:StringEquals", {}).items():
        if any(x not in allowed for x in ctx.get(k, [])):
            return False
    return True


# ----------------------------------------------------------------- fedgate helpers


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = None
        self.hidden: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.hidden.append((a["name"], a.get("value", "")))


def admin(method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(
        method, f"{ISSUER}/admin/v1{path}", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=TIMEOUT
    )
    assert r.status_code in (200, 201), f"{method} {path} -> {r.status_code} {r.text}"
    return r.json()


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def login(slug: str, client: dict) -> dict:
    """Authorization code flow with PKCE through the dev connection; returns the token response."""
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    verifier = b64url(secrets.token_bytes(32))
    params = {
        "response_type": "code",
        "client_id": client["id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": "s",
        "nonce": "n",
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        "organization": slug,
    }
    s = requests.Session()
    r = s.get(meta["authorization_endpoint"], params=params, allow_redirects=False, timeout=TIMEOUT)
    url = urljoin(r.url, r.headers["Location"])
    for _ in range(10):
        if url.startswith(REDIRECT_URI):
            break
        r = s.get(url, allow_redirects=False, timeout=TIMEOUT)
        if r.is_redirect:
            url = urljoin(r.url, r.headers["Location"])
            continue
        f = _Form()
        f.feed(r.text)
        data = dict(f.hidden)
        data["action"] = "approve"
        r = s.post(urljoin(r.url, f.action), data=data, allow_redirects=False, timeout=TIMEOUT)
        url = urljoin(r.url, r.headers["Location"])
    code = parse_qs(urlsplit(url).query)["code"][0]
    r = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=(client["id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return r.json()


def new_tenant(name: str) -> dict:
    slug = f"aws-{name}-{RUN}"
    t = admin("POST", "/tenants", {"name": slug, "slug": slug, "domains": [f"{slug}.test"]})
    admin(
        "POST",
        f"/tenants/{t['id']}/connections",
        {"type": "dev", "name": "Dev", "default_email": f"alice@{slug}.test", "groups": ["engineering"]},
    )
    admin("PUT", f"/tenants/{t['id']}/claim-rules", AWS_RULES)
    return t


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def setup() -> dict:
    assert ISSUER and ADMIN_KEY and MOTO_URL, "FEDGATE_URL, FEDGATE_ADMIN_KEY and MOTO_URL must be set"
    client = admin(
        "POST",
        "/clients",
        {
            "name": f"aws {RUN}",
            "type": "confidential",
            "redirect_uris": [REDIRECT_URI],
            "id_token_signed_response_alg": "RS256",
        },
    )
    acme, other = new_tenant("acme"), new_tenant("other")
    tokens = {t["id"]: login(t["slug"], client)["id_token"] for t in (acme, other)}
    return {"client": client, "acme": acme, "other": other, "tokens": tokens}


@pytest.fixture(scope="session")
def aws():
    kw = dict(
        endpoint_url=MOTO_URL, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return {"iam": boto3.client("iam", **kw), "sts": boto3.client("sts", **kw), "kw": kw}


def verified(token: str, aud: str) -> dict:
    jwks = jwt.PyJWKClient(f"{ISSUER}/oauth2/jwks")
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=aud, issuer=ISSUER)


# -------------------------------------------------------------------------- tests


def test_the_token_has_the_shape_aws_needs(setup):
    cid, acme = setup["client"]["id"], setup["acme"]
    token = setup["tokens"][acme["id"]]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    c = verified(token, cid)
    assert c["aud"] == cid, "aud: the client id registered as the IAM OIDC provider's audience"
    assert c["sub"].startswith("usr_")
    assert isinstance(c["amr"], list) and c["amr"], c["amr"]
    assert c[TAGS] == {"principal_tags": {"org_id": [acme["id"]]}, "transitive_tag_keys": ["org_id"]}
    assert c["org_id"] == acme["id"]
    # Session tag limits (AWS): at most 50 tags, keys <= 128, values <= 256 characters.
    for k, v in c[TAGS]["principal_tags"].items():
        assert len(k) <= 128 and len(v) == 1 and len(v[0]) <= 256
    assert len(token) < 8192


def test_the_trust_policy_admits_only_its_tenant(setup):
    cid, acme, other = setup["client"]["id"], setup["acme"], setup["other"]
    policy = trust_policy(cid, acme["id"])
    mine = verified(setup["tokens"][acme["id"]], cid)
    theirs = verified(setup["tokens"][other["id"]], cid)
    assert allows(policy, request_context(mine))
    assert not allows(policy, request_context(theirs)), "another tenant's token carries another org_id tag"
    assert not allows(trust_policy("cli_other", acme["id"]), request_context(mine)), "aud is checked"


def test_assume_role_with_web_identity(setup, aws):
    cid, acme = setup["client"]["id"], setup["acme"]
    token = setup["tokens"][acme["id"]]
    claims = verified(token, cid)
    iam, sts = aws["iam"], aws["sts"]
    provider = iam.create_open_id_connect_provider(Url=ISSUER, ClientIDList=[cid], ThumbprintList=["0" * 40])
    assert provider["OpenIDConnectProviderArn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider_host()}"
    role = iam.create_role(
        RoleName=f"fedgate-{RUN}", AssumeRolePolicyDocument=json.dumps(trust_policy(cid, acme["id"]))
    )["Role"]
    got = iam.get_role(RoleName=role["RoleName"])["Role"]
    doc = got["AssumeRolePolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc == trust_policy(cid, acme["id"])
    session = f"fedgate-{claims['sub']}"[:64]
    r = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName=session, WebIdentityToken=token, DurationSeconds=900
    )
    creds = r["Credentials"]
    assert creds["AccessKeyId"] and creds["SecretAccessKey"] and creds["SessionToken"]
    assert r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/{session}"
    # The credentials work: GetCallerIdentity with them names the assumed role and session.
    kw = dict(aws["kw"])
    kw.update(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    me = boto3.client("sts", **kw).get_caller_identity()
    assert me["Arn"] == r["AssumedRoleUser"]["Arn"], me
