//! The axum extractor: `VerifiedToken<C>` from `Authorization: Bearer` and a `Verifier` taken
//! from the router's state (`FromRef`).
use crate::{bearer_token, BearerError, VerifiedToken, Verifier};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

impl<S, C> FromRequestParts<S> for VerifiedToken<C>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = bearer_token(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
        Ok(VerifiedToken(verifier.verify_as::<C>(token).await?))
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut r =
            (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], self.body())
                .into_response();
        if let Some(v) = self.www_authenticate().and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}
