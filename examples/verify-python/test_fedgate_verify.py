"""Tests of fedgate_verify.py against a live fedgate: tests/interop/verify/run.sh starts one,
logs in, and passes the tokens in the JSON file named by FEDGATE_TOKENS."""

from __future__ import annotations

import base64
import json
import os

import pytest

from fedgate_verify import FedgateVerifier, TokenError

T = json.load(open(os.environ["FEDGATE_TOKENS"], encoding="utf-8"))


@pytest.fixture(scope="module")
def verifier() -> FedgateVerifier:
    return FedgateVerifier(T["issuer"], audience=T["client_id"])


def refused(v: FedgateVerifier, token: str, check: str) -> None:
    with pytest.raises(TokenError) as e:
        v.verify_access_token(token)
    assert e.value.check == check, str(e.value)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_access_token_is_accepted(verifier):
    c = verifier.verify_access_token(T["access_token"])
    assert c["iss"] == T["issuer"]
    assert c["client_id"] == T["client_id"]
    assert c["org_id"] == T["org_id"]
    assert c["sub"].startswith("usr_")
    # Again, from the cached keys.
    verifier.verify_access_token(T["access_token"])


def test_tenant_check():
    FedgateVerifier(T["issuer"], audience=T["client_id"], org_id=T["org_id"]).verify_access_token(T["access_token"])
    refused(FedgateVerifier(T["issuer"], audience=T["client_id"], org_id=T["other_org_id"]), T["access_token"], "tenant")


def test_wrong_audience_is_refused(verifier):
    refused(verifier, T["other_client_access_token"], "aud")


def test_tampered_signature_is_refused(verifier):
    h, p, s = T["access_token"].split(".")
    flipped = s[:10] + ("B" if s[10] == "A" else "A") + s[11:]
    refused(verifier, f"{h}.{p}.{flipped}", "signature")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    forged = b64(json.dumps({**claims, "sub": "usr_attacker"}).encode())
    refused(verifier, f"{h}.{forged}.{s}", "signature")


def test_id_token_used_as_access_token_is_refused(verifier):
    refused(verifier, T["id_token"], "typ")


def test_algorithms_outside_the_allow_list_and_none_are_refused(verifier):
    refused(FedgateVerifier(T["issuer"], audience=T["client_id"], algorithms=("RS256",)), T["access_token"], "alg")
    _, p, _ = T["access_token"].split(".")
    none = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    refused(verifier, f"{none}.{p}.", "alg")
    with pytest.raises(ValueError):
        FedgateVerifier(T["issuer"], audience=T["client_id"], algorithms=("HS256",))


def test_unknown_kid_is_refused(verifier):
    h, p, s = T["access_token"].split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    other = b64(json.dumps({**header, "kid": "no-such-key"}).encode())
    refused(verifier, f"{other}.{p}.{s}", "kid")


def test_discovery_of_another_issuer_is_refused():
    refused(FedgateVerifier(T["issuer"] + "/", audience=T["client_id"]), T["access_token"], "jwks")
