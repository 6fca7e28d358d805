//! Verify fedgate's tokens in your app.
//!
//! fedgate issues RFC 9068 access tokens (`typ: at+jwt`) and OpenID Connect ID tokens, signed
//! with ES256 (default), EdDSA or RS256 and published in its JWKS. A [`Verifier`] checks, in
//! this order, and says which check failed ([`VerifyError`]):
//!
//! 1. the token's shape (a compact JWS, at most 64 KiB, no `crit` header);
//! 2. `alg` is in the allow-list (never `none` or `HS*`);
//! 3. `typ`: `at+jwt` for access tokens; `JWT` (or none) for ID tokens;
//! 4. the key (`kid`) is in the issuer's JWKS, fetched through discovery and cached; an unknown
//!    `kid` (a key rotation) refreshes the cache at most once a minute;
//! 5. the signature;
//! 6. `iss`, `aud`, `exp` and `nbf`/`iat` (with a bounded leeway, 60 s by default), `sub`, and
//!    `client_id` for access tokens;
//! 7. optionally the tenant (`org_id`).
//!
//! ```no_run
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use fedgate_verify::Verifier;
//!
//! let verifier = Verifier::builder("https://auth.example.com")
//!     .audience("cli_01m8byhz9k0000000000000000")
//!     .build()?;
//! let claims = verifier.verify(token).await?;
//! println!("{} of {:?}", claims.sub, claims.org_id);
//! # Ok(()) }
//! ```
//!
//! With the `actix` or `axum` feature, [`VerifiedToken`] is an extractor: it reads
//! `Authorization: Bearer`, verifies with the shared [`Verifier`] (actix-web: `web::Data<Verifier>`
//! app data; axum: state from which a `Verifier` can be taken, `FromRef`) and answers `401` with
//! `WWW-Authenticate: Bearer error="invalid_token", error_description="..."` (RFC 6750) when the
//! token is refused. See `examples/actix.rs` and `examples/axum.rs`.
#![forbid(unsafe_code)]

mod claims;
mod clock;
mod error;
mod jwks;
mod verifier;

#[cfg(feature = "actix")]
mod actix_ext;
#[cfg(feature = "axum")]
mod axum_ext;

pub use claims::Claims;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BuildError, VerifyError};
pub use verifier::{Alg, TokenKind, Verifier, VerifierBuilder, MAX_LEEWAY, MAX_TOKEN_BYTES};

/// A verified token's claims, as an extractor (features `actix`, `axum`). `C` is [`Claims`] or
/// your own `Deserialize` type.
#[derive(Debug, Clone)]
pub struct VerifiedToken<C = Claims>(pub C);

impl<C> VerifiedToken<C> {
    pub fn into_inner(self) -> C {
        self.0
    }
}

impl<C> std::ops::Deref for VerifiedToken<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

/// Why the extractor refused a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header: 401 with a bare `WWW-Authenticate: Bearer`.
    #[error("no bearer token")]
    Missing,
    /// The header is there but is not a well-formed bearer credential: 400 `invalid_request`.
    #[error("malformed Authorization header")]
    BadHeader,
    /// The token was refused: 401 `invalid_token`, the failed check in `error_description`; or,
    /// when the issuer's keys could not be fetched, 503.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// No `Verifier` was registered with the app: 500.
    #[error("no fedgate_verify::Verifier in the app's data or state")]
    NoVerifier,
}

impl BearerError {
    /// The HTTP status to answer.
    pub fn status(&self) -> u16 {
        match self {
            BearerError::Missing => 401,
            BearerError::BadHeader => 400,
            BearerError::Verify(e) if e.is_token_error() => 401,
            BearerError::Verify(_) => 503,
            BearerError::NoVerifier => 500,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3), if the answer carries one.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            BearerError::Missing => Some("Bearer".into()),
            BearerError::BadHeader => Some(r#"Bearer error="invalid_request""#.into()),
            BearerError::Verify(e) if e.is_token_error() => {
                Some(format!(r#"Bearer error="invalid_token", error_description="{}""#, e.description()))
            }
            _ => None,
        }
    }

    /// A JSON body for the answer: `{"error": ..., "error_description": ...}`.
    pub fn body(&self) -> String {
        let (error, description) = match self {
            BearerError::Missing => ("invalid_token", "no bearer token".to_string()),
            BearerError::BadHeader => ("invalid_request", "malformed Authorization header".to_string()),
            BearerError::Verify(e) if e.is_token_error() => ("invalid_token", e.description()),
            BearerError::Verify(e) => ("temporarily_unavailable", e.description()),
            BearerError::NoVerifier => ("server_error", "token verification is not configured".to_string()),
        };
        serde_json::json!({"error": error, "error_description": description}).to_string()
    }
}

/// The token of an `Authorization` header value (`Bearer <token>`, scheme case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Result<&str, BearerError> {
    let Some(h) = header else { return Err(BearerError::Missing) };
    let Some((scheme, token)) = h.split_once(' ') else {
        return Err(if h.eq_ignore_ascii_case("bearer") { BearerError::BadHeader } else { BearerError::Missing });
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim_matches(' ');
    // RFC 6750 §2.1: b64token.
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(BearerError::BadHeader);
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
