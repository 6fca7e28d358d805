//! What went wrong: one variant per check, and a message that names the check.
use std::fmt;

/// Why a token was refused (or could not be checked). `Display` names the failed check, e.g.
/// `audience check failed: the token is for ["cli_b"], expected one of ["cli_a"]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS with a JSON header and payload (or too large).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is not in the allow-list (`none` and HMAC never are).
    #[error("algorithm check failed: `{found}` is not allowed (allowed: {allowed})")]
    Algorithm { found: String, allowed: String },
    /// The header's `typ` is wrong for the kind of token expected (RFC 9068: `at+jwt`).
    #[error("type check failed: expected {expected}, found {}", .found.as_deref().map(|t| format!("`{t}`")).unwrap_or_else(|| "no typ".into()))]
    Type { expected: String, found: Option<String> },
    /// No key in the issuer's JWKS has this `kid` (after at most one refresh a minute).
    #[error("key check failed: no key {} in the issuer's JWKS", .kid.as_deref().map(|k| format!("`{k}`")).unwrap_or_else(|| "(the token has no kid)".into()))]
    UnknownKey { kid: Option<String> },
    /// The signature does not verify with the issuer's key.
    #[error("signature check failed: the signature does not match the issuer's key")]
    Signature,
    /// `iss` is not the configured issuer.
    #[error("issuer check failed: expected `{expected}`, found {}", .found.as_deref().map(|i| format!("`{i}`")).unwrap_or_else(|| "no iss".into()))]
    Issuer { expected: String, found: Option<String> },
    /// `aud` names none of the configured audiences.
    #[error("audience check failed: the token is for {found:?}, expected one of {expected:?}")]
    Audience { expected: Vec<String>, found: Vec<String> },
    /// `exp` is past (beyond the leeway).
    #[error("expiry check failed: the token expired at {exp}, now is {now} (leeway {leeway} s)")]
    Expired { exp: i64, now: i64, leeway: i64 },
    /// `nbf` (or `iat`) is in the future (beyond the leeway).
    #[error("not-before check failed: `{claim}` is {at}, now is {now} (leeway {leeway} s)")]
    NotYetValid { claim: &'static str, at: i64, now: i64, leeway: i64 },
    /// `org_id` is not the required tenant.
    #[error("tenant check failed: the token is for tenant {}, expected one of {expected:?}", .found.as_deref().map(|t| format!("`{t}`")).unwrap_or_else(|| "(none)".into()))]
    Tenant { expected: Vec<String>, found: Option<String> },
    /// A claim every fedgate token of this kind carries is missing or has the wrong type.
    #[error("claims check failed: `{0}` is missing or not of the expected type")]
    MissingClaim(&'static str),
    /// The token verified but its claims do not fit the requested claims type.
    #[error("claims check failed: {0}")]
    Claims(String),
    /// The issuer's discovery document or JWKS could not be fetched (not the token's fault).
    #[error("JWKS fetch failed: {0}")]
    JwksFetch(String),
}

impl VerifyError {
    /// The name of the failed check: `malformed`, `alg`, `typ`, `kid`, `signature`, `iss`, `aud`,
    /// `exp`, `nbf`, `tenant`, `claims`, `jwks`.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Algorithm { .. } => "alg",
            VerifyError::Type { .. } => "typ",
            VerifyError::UnknownKey { .. } => "kid",
            VerifyError::Signature => "signature",
            VerifyError::Issuer { .. } => "iss",
            VerifyError::Audience { .. } => "aud",
            VerifyError::Expired { .. } => "exp",
            VerifyError::NotYetValid { .. } => "nbf",
            VerifyError::Tenant { .. } => "tenant",
            VerifyError::MissingClaim(_) | VerifyError::Claims(_) => "claims",
            VerifyError::JwksFetch(_) => "jwks",
        }
    }

    /// True when the token itself is bad (answer 401); false when the issuer's keys could not be
    /// fetched (answer 503: the token may be fine).
    pub fn is_token_error(&self) -> bool {
        !matches!(self, VerifyError::JwksFetch(_))
    }

    /// A short, header-safe description for `WWW-Authenticate: Bearer error_description="..."`
    /// (RFC 6750 §3: printable ASCII without `"` and `\`).
    pub fn description(&self) -> String {
        header_safe(&self.to_string())
    }
}

/// Keeps the characters RFC 6750 allows in `error_description` (%x20-21 / %x23-5B / %x5D-7E),
/// replacing the others, and bounds the length.
pub(crate) fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .take(200)
        .collect()
}

/// A configuration mistake found by [`crate::VerifierBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fedgate-verify configuration: {}", self.0)
    }
}

impl std::error::Error for BuildError {}
