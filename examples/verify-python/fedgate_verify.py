"""Verify a fedgate access token (RFC 9068) in a Python API, with PyJWT.

    from fedgate_verify import FedgateVerifier, TokenError

    verifier = FedgateVerifier("https://auth.example.com", audience="cli_...")
    claims = verifier.verify_access_token(token)   # raises TokenError(check=...) when refused

Checks: ``alg`` in the allow-list (never ``none`` or HS*), ``typ: at+jwt`` (so an ID token is not
accepted as an access token), the signature with a key from the issuer's JWKS (found through
discovery and cached; an unknown ``kid`` refetches the JWKS at most once a minute), ``iss``,
``aud``, ``exp``/``nbf``/``iat`` with a bounded leeway, the claims every fedgate access token
carries, and optionally the tenant (``org_id``). Create one verifier per process and reuse it: it
holds the key cache.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import jwt

FEDGATE_ALGORITHMS = ("ES256", "EdDSA", "RS256")
REFRESH_INTERVAL = 60  # seconds between JWKS fetches caused by unknown kids
JWKS_LIFESPAN = 300  # seconds the JWKS is cached
MAX_LEEWAY = 300
TIMEOUT = 5


class TokenError(Exception):
    """A refused token; ``check`` names the failed check (alg, typ, kid, signature, iss, aud,
    exp, nbf, tenant, claims, malformed, jwks)."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check} check failed: {message}")
        self.check = check


_CHECKS = [
    (jwt.ExpiredSignatureError, "exp"),
    (jwt.ImmatureSignatureError, "nbf"),
    (jwt.InvalidAudienceError, "aud"),
    (jwt.InvalidIssuerError, "iss"),
    (jwt.InvalidAlgorithmError, "alg"),
    (jwt.InvalidSignatureError, "signature"),
    (jwt.MissingRequiredClaimError, "claims"),
    (jwt.InvalidIssuedAtError, "nbf"),
    (jwt.DecodeError, "malformed"),
]


class FedgateVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str | list[str],
        *,
        org_id: str | None = None,
        algorithms: tuple[str, ...] = FEDGATE_ALGORITHMS,
        leeway: int = 60,
    ):
        if any(a == "none" or a.startswith("HS") for a in algorithms):
            raise ValueError("none and HS* are never acceptable")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be within 0..{MAX_LEEWAY} s")
        self.issuer = issuer
        self.audience = audience
        self.org_id = org_id
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self._lock = threading.Lock()
        self._jwks: jwt.PyJWKClient | None = None
        self._last_refresh = float("-inf")

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is None:
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:  # noqa: S310 (https in production)
                        meta = json.loads(r.read(256 * 1024))
                except Exception as e:  # noqa: BLE001
                    raise TokenError("jwks", f"{url}: {e}") from e
                if meta.get("issuer") != self.issuer:
                    raise TokenError("jwks", f"{url}: issuer is {meta.get('issuer')}, expected {self.issuer}")
                self._jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=False, lifespan=JWKS_LIFESPAN, timeout=TIMEOUT)
                self._last_refresh = time.monotonic()  # the first lookup fetches the JWKS
            return self._jwks

    def _find(self, kid: str | None, alg: str, refresh: bool):
        try:
            keys = self._client().get_signing_keys(refresh=refresh)
        except jwt.PyJWKClientError as e:
            raise TokenError("jwks", str(e)) from e
        return next((k for k in keys if k.key_id == kid and k.algorithm_name in (None, alg)), None)

    def _key(self, kid: str | None, alg: str):
        key = self._find(kid, alg, refresh=False)
        if key is None:
            # An unknown kid (a key rotation): refetch, but at most once a minute, so tokens with
            # made-up kids cannot make us hammer the issuer (PyJWKClient alone refetches every time).
            with self._lock:
                allowed = time.monotonic() - self._last_refresh >= REFRESH_INTERVAL
                if allowed:
                    self._last_refresh = time.monotonic()
            if allowed:
                key = self._find(kid, alg, refresh=True)
        if key is None:
            raise TokenError("kid", f"no key {kid!r} in the issuer's JWKS")
        return key

    def verify_access_token(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as e:
            raise TokenError("malformed", str(e)) from e
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenError("alg", f"{alg!r} is not allowed (allowed: {', '.join(self.algorithms)})")
        typ = str(header.get("typ", "")).lower().removeprefix("application/")
        if typ != "at+jwt":
            raise TokenError("typ", f"expected at+jwt (an access token), found {header.get('typ')!r}")
        key = self._key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id"]},
            )
        except jwt.PyJWTError as e:
            check = next((c for cls, c in _CHECKS if isinstance(e, cls)), "malformed")
            raise TokenError(check, str(e)) from e
        if self.org_id is not None and claims.get("org_id") != self.org_id:
            raise TokenError("tenant", f"the token is for {claims.get('org_id')}, expected {self.org_id}")
        return claims
