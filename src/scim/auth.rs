//! SCIM bearer tokens: per tenant, stored as SHA-256 hashes, revocable, with a last-used time.
//! A token authenticates only on its own tenant's URL.
use crate::http::AppState;
use crate::keys::{constant_time_eq, sha256_hex};
use crate::scim::error::ScimError;
use crate::store::entities::tenant;
use crate::store::scim_tokens;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// Prefix of SCIM bearer tokens.
pub const SCIM_TOKEN_PREFIX: &str = "fgscim_";

/// The authenticated tenant of a SCIM request.
#[derive(Debug, Clone)]
pub struct ScimTenant {
    pub tenant: tenant::Model,
    pub token_id: String,
}

impl FromRequest for ScimTenant {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(t) = req.extensions().get::<ScimTenant>() {
                return Ok(t.clone());
            }
            let state = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(ScimError::internal)?;
            let token = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| v[7..].trim().to_string())
                })
                .filter(|t| t.starts_with(SCIM_TOKEN_PREFIX) && t.len() < 200)
                .ok_or_else(ScimError::unauthorized)?;
            let key = req.match_info().get("tenant").unwrap_or_default().to_string();
            let hash = sha256_hex(&token);
            // Token, revocation and tenant in one statement, read on every request (no cache):
            // a revoked token fails on its next request on every instance.
            let (tok, t) = scim_tokens::authenticate(&state.db, &hash, &key)
                .await?
                .filter(|(k, t)| {
                    k.revoked_at.is_none() && constant_time_eq(&k.token_hash, &hash) && t.id == k.tenant_id
                })
                .ok_or_else(ScimError::unauthorized)?;
            crate::util::record_tenant(&t.id);
            let now = state.clock.now();
            if tok.last_used_at.is_none_or(|u| now - u >= 60) {
                if let Err(e) = scim_tokens::touch(&state.db, tok.clone(), now).await {
                    tracing::warn!(error = %e, "could not record SCIM token use");
                }
            }
            let out = ScimTenant { tenant: t, token_id: tok.id };
            req.extensions_mut().insert(out.clone());
            Ok(out)
        })
    }
}
