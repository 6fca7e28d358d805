//! The verifier: a builder for the expectations, then one `verify` per request.
use crate::claims::Claims;
use crate::clock::{Clock, SystemClock};
use crate::error::{BuildError, VerifyError};
use crate::jwks::{self, CacheConfig, JwksCache, Source};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The signature algorithms fedgate signs with. `none` and HMAC (`HS*`) cannot be expressed,
/// so they are never accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256 (fedgate's default).
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::EdDSA, Alg::RS256];

    pub fn as_str(&self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub(crate) fn family(&self) -> jwks::Family {
        match self {
            Alg::ES256 => jwks::Family::P256,
            Alg::EdDSA => jwks::Family::Ed25519,
            Alg::RS256 => jwks::Family::Rsa,
        }
    }

    fn jwt(&self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which token the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 9068 access tokens (header `typ: at+jwt`), for APIs. Also requires `client_id`.
    Access,
    /// OpenID Connect ID tokens (header `typ: JWT` or none). An access token or a back-channel
    /// logout token (`logout+jwt`) is refused. The `nonce` is the login library's to check.
    Id,
}

/// Tokens larger than this are refused before any parsing (fedgate's are a few KB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// The largest clock skew [`VerifierBuilder::leeway`] accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Verifies fedgate tokens. Cheap to clone (shared cache); build one per issuer and audience at
/// start-up and share it (actix-web `web::Data`, axum state).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algs: Vec<Alg>,
    leeway: i64,
    tenants: Vec<String>,
    kind: TokenKind,
    clock: Arc<dyn Clock>,
    jwks: JwksCache,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algs", &self.inner.algs)
            .field("leeway", &self.inner.leeway)
            .field("tenants", &self.inner.tenants)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

/// Configures a [`Verifier`]: `Verifier::builder(issuer).audience(client_id).build()`.
pub struct VerifierBuilder {
    issuer: String,
    jwks_uri: Option<String>,
    audiences: Vec<String>,
    algs: Vec<Alg>,
    leeway: Duration,
    tenants: Vec<String>,
    kind: TokenKind,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
    allow_http: bool,
    cache: CacheConfig,
}

impl Verifier {
    /// Starts a builder for tokens of `issuer` (fedgate's issuer URL, exactly as in `iss`).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            jwks_uri: None,
            audiences: Vec::new(),
            algs: Alg::ALL.to_vec(),
            leeway: Duration::from_secs(60),
            tenants: Vec::new(),
            kind: TokenKind::Access,
            clock: Arc::new(SystemClock),
            http: None,
            allow_http: false,
            cache: CacheConfig::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn kind(&self) -> TokenKind {
        self.inner.kind
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_as(token).await
    }

    /// Verifies `token` and requires its `org_id` to be `org_id` (on top of the builder's
    /// tenants, if any): for apps that know the tenant from the request (path, host).
    pub async fn verify_for_tenant(&self, token: &str, org_id: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_claims(token, Some(org_id)).await?;
        from_claims(claims)
    }

    /// Verifies `token` and deserializes its claims into your own type.
    pub async fn verify_as<T: DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        let claims = self.verify_claims(token, None).await?;
        from_claims(claims)
    }

    /// Verifies `token`; returns the claims as a JSON object.
    pub async fn verify_claims(
        &self,
        token: &str,
        tenant: Option<&str>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let i = &*self.inner;
        let parts = Parts::split(token)?;
        // The header decides nothing before it is checked against the allow-lists.
        let alg = Alg::parse(&parts.header.alg)
            .filter(|a| i.algs.contains(a))
            .ok_or_else(|| VerifyError::Algorithm { found: parts.header.alg.clone(), allowed: alg_list(&i.algs) })?;
        check_typ(i.kind, parts.header.typ.as_deref())?;
        let keys = i.jwks.keys_for(parts.header.kid.as_deref(), alg).await?;
        let verified = keys.iter().any(|k| {
            jsonwebtoken::crypto::verify(parts.signature, parts.signing_input.as_bytes(), &k.key, alg.jwt())
                .unwrap_or(false)
        });
        if !verified {
            return Err(VerifyError::Signature);
        }
        let claims = parts.payload()?;
        self.check_claims(&claims, tenant)?;
        Ok(claims)
    }

    fn check_claims(
        &self,
        c: &serde_json::Map<String, serde_json::Value>,
        tenant: Option<&str>,
    ) -> Result<(), VerifyError> {
        let i = &*self.inner;
        let iss = c.get("iss").and_then(|v| v.as_str());
        if iss != Some(i.issuer.as_str()) {
            return Err(VerifyError::Issuer { expected: i.issuer.clone(), found: iss.map(str::to_string) });
        }
        let aud: Vec<String> = match c.get("aud") {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| i.audiences.contains(a)) {
            return Err(VerifyError::Audience { expected: i.audiences.clone(), found: aud });
        }
        let now = i.clock.now();
        let exp = numeric(c, "exp").ok_or(VerifyError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(i.leeway) {
            return Err(VerifyError::Expired { exp, now, leeway: i.leeway });
        }
        if let Some(nbf) = numeric(c, "nbf") {
            if nbf > now.saturating_add(i.leeway) {
                return Err(VerifyError::NotYetValid { claim: "nbf", at: nbf, now, leeway: i.leeway });
            }
        }
        let iat = numeric(c, "iat").ok_or(VerifyError::MissingClaim("iat"))?;
        if iat > now.saturating_add(i.leeway) {
            return Err(VerifyError::NotYetValid { claim: "iat", at: iat, now, leeway: i.leeway });
        }
        if !c.get("sub").is_some_and(|v| v.is_string()) {
            return Err(VerifyError::MissingClaim("sub"));
        }
        if i.kind == TokenKind::Access && !c.get("client_id").is_some_and(|v| v.is_string()) {
            return Err(VerifyError::MissingClaim("client_id"));
        }
        let org = c.get("org_id").and_then(|v| v.as_str());
        let mismatch = |expected: Vec<String>| VerifyError::Tenant { expected, found: org.map(str::to_string) };
        if !i.tenants.is_empty() && !org.is_some_and(|o| i.tenants.iter().any(|t| t == o)) {
            return Err(mismatch(i.tenants.clone()));
        }
        if let Some(t) = tenant {
            if org != Some(t) {
                return Err(mismatch(vec![t.to_string()]));
            }
        }
        Ok(())
    }
}

fn from_claims<T: DeserializeOwned>(c: serde_json::Map<String, serde_json::Value>) -> Result<T, VerifyError> {
    serde_json::from_value(serde_json::Value::Object(c)).map_err(|e| VerifyError::Claims(e.to_string()))
}

fn numeric(c: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<i64> {
    let v = c.get(name)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn alg_list(algs: &[Alg]) -> String {
    algs.iter().map(Alg::as_str).collect::<Vec<_>>().join(", ")
}

fn check_typ(kind: TokenKind, typ: Option<&str>) -> Result<(), VerifyError> {
    // RFC 7515 §4.1.9: "application/" may be omitted; media types compare case-insensitively.
    let t = typ.map(|t| {
        let l = t.to_ascii_lowercase();
        l.strip_prefix("application/").map(str::to_string).unwrap_or(l)
    });
    let ok = match kind {
        TokenKind::Access => t.as_deref() == Some("at+jwt"),
        TokenKind::Id => matches!(t.as_deref(), None | Some("jwt")),
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        TokenKind::Access => "`at+jwt` (an access token)",
        TokenKind::Id => "`JWT` (an ID token)",
    };
    Err(VerifyError::Type { expected: expected.into(), found: typ.map(str::to_string) })
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: &'a str,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Result<Self, VerifyError> {
        let bad = |why: &str| VerifyError::Malformed(why.to_string());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad("larger than 64 KiB"));
        }
        let mut it = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(bad("not a compact JWS (three dot-separated parts)"));
        };
        let raw = URL_SAFE_NO_PAD.decode(h).map_err(|_| bad("the header is not base64url"))?;
        let header: Header =
            serde_json::from_slice(&raw).map_err(|_| bad("the header is not a JSON object with alg"))?;
        // RFC 7515 §4.1.11: extensions we do not understand must be refused.
        if header.crit.is_some() {
            return Err(bad("the header has `crit` extensions"));
        }
        Ok(Self { header, signing_input: &token[..h.len() + 1 + p.len()], payload_b64: p, signature: s })
    }

    fn payload(&self) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let raw = URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| VerifyError::Malformed("the payload is not base64url".into()))?;
        serde_json::from_slice(&raw).map_err(|_| VerifyError::Malformed("the payload is not a JSON object".into()))
    }
}

impl VerifierBuilder {
    /// An accepted audience (your `client_id`); call again for more. At least one is required.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Accepted audiences (adds to those already given).
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, auds: I) -> Self {
        self.audiences.extend(auds.into_iter().map(Into::into));
        self
    }

    /// The accepted algorithms. Default: what fedgate signs with (ES256, EdDSA, RS256); narrow
    /// it to your client's `id_token_signed_response_alg`.
    pub fn algorithms(mut self, algs: &[Alg]) -> Self {
        self.algs = algs.to_vec();
        self
    }

    /// Allowed clock skew for `exp`, `nbf` and `iat`. Default 60 s, at most [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires `org_id` to be this tenant (`org_…`); call again to accept several.
    pub fn tenant(mut self, org_id: impl Into<String>) -> Self {
        self.tenants.push(org_id.into());
        self
    }

    /// Which token to accept: [`TokenKind::Access`] (default) or [`TokenKind::Id`].
    pub fn kind(mut self, kind: TokenKind) -> Self {
        self.kind = kind;
        self
    }

    /// Shorthand for `.kind(TokenKind::Id)`.
    pub fn id_tokens(self) -> Self {
        self.kind(TokenKind::Id)
    }

    /// Fetch keys from this JWKS URL instead of discovering it from
    /// `{issuer}/.well-known/openid-configuration`.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The clock (tests: [`crate::ManualClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The HTTP client for discovery and the JWKS. Default: rustls, 5 s connect and 10 s total
    /// timeouts, no redirects. Responses are bounded to 256 KiB either way.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Allows `http://` issuer and JWKS URLs on hosts other than loopback (never in production).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Least time between two JWKS fetches caused by an unknown `kid`. Default 60 s.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.cache.refresh_interval = interval.as_secs().max(1) as i64;
        self
    }

    pub fn build(self) -> Result<Verifier, BuildError> {
        let err = |m: String| Err(BuildError(m));
        // Compared with `iss` exactly as given (fedgate's has no trailing slash).
        let issuer = self.issuer.clone();
        self.check_url("issuer", &issuer)?;
        if let Some(u) = &self.jwks_uri {
            self.check_url("jwks_uri", u)?;
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return err("at least one audience (your client_id) is required".into());
        }
        if self.algs.is_empty() {
            return err("at least one algorithm is required".into());
        }
        if self.leeway > MAX_LEEWAY {
            return err(format!("leeway {:?} is larger than {:?}", self.leeway, MAX_LEEWAY));
        }
        let http = match self.http {
            Some(h) => h,
            None => jwks::default_http().map_err(|e| BuildError(format!("HTTP client: {e}")))?,
        };
        let source = match self.jwks_uri {
            Some(u) => Source::Jwks(u),
            None => Source::Discovery {
                url: format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
                issuer: issuer.clone(),
            },
        };
        let jwks = JwksCache::new(source, http, self.clock.clone(), self.cache);
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuer,
                audiences: self.audiences,
                algs: self.algs,
                leeway: self.leeway.as_secs() as i64,
                tenants: self.tenants,
                kind: self.kind,
                clock: self.clock,
                jwks,
            }),
        })
    }

    fn check_url(&self, what: &str, u: &str) -> Result<(), BuildError> {
        let parsed = url::Url::parse(u).map_err(|e| BuildError(format!("{what} `{u}`: {e}")))?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if loopback || self.allow_http => Ok(()),
            _ => Err(BuildError(format!(
                "{what} `{u}` must be https (http only on loopback, or with allow_insecure_http)"
            ))),
        }
    }
}
