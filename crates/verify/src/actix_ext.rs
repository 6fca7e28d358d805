//! The actix-web extractor: `VerifiedToken<C>` from `Authorization: Bearer` and the
//! `web::Data<Verifier>` (or plain `Verifier`) app data.
use crate::{bearer_token, BearerError, VerifiedToken, Verifier};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

impl<C: DeserializeOwned + 'static> FromRequest for VerifiedToken<C> {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier: Option<Verifier> = req
            .app_data::<web::Data<Verifier>>()
            .map(|d| d.get_ref().clone())
            .or_else(|| req.app_data::<Verifier>().cloned());
        let token =
            bearer_token(req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())).map(str::to_string);
        Box::pin(async move {
            let verifier = verifier.ok_or(BearerError::NoVerifier)?;
            let token = token?;
            Ok(VerifiedToken(verifier.verify_as::<C>(&token).await?))
        })
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if let Some(v) = self.www_authenticate() {
            r.insert_header((header::WWW_AUTHENTICATE, v));
        }
        r.insert_header((header::CACHE_CONTROL, "no-store")).content_type("application/json").body(self.body())
    }
}
