//! Admin API authentication: `Authorization: Bearer <admin key>`. Keys are stored as SHA-256
//! hashes and looked up by hash; the comparison of the stored hash is constant-time.
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::keys::{constant_time_eq, sha256_hex};
use crate::store::admin_keys;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// Proof that the request carries a valid admin key.
#[derive(Debug, Clone)]
pub struct Admin {
    pub key_id: String,
    pub key_name: String,
    pub ip: String,
}

impl Admin {
    /// Who did it, for the audit log: the admin key's name and id, and the peer address.
    pub fn actor(&self) -> crate::events::audit::Actor<'_> {
        crate::events::audit::Actor { name: &self.key_name, ip: &self.ip }
    }
}

pub const ADMIN_KEY_PREFIX: &str = "fgadm_";

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = crate::http::peer(req);
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let token = token
                .filter(|t| t.starts_with(ADMIN_KEY_PREFIX) && t.len() < 200)
                .ok_or_else(ApiError::unauthorized)?;
            let hash = sha256_hex(&token);
            let key = admin_keys::find_by_hash(&state.db, &hash)
                .await?
                .filter(|k| k.revoked_at.is_none() && constant_time_eq(&k.token_hash, &hash))
                .ok_or_else(ApiError::unauthorized)?;
            let now = state.clock.now();
            // Record use at most once a minute, so reads do not turn into writes.
            if key.last_used_at.is_none_or(|t| now - t >= 60) {
                if let Err(e) = admin_keys::touch(&state.db, key.clone(), now).await {
                    tracing::warn!(error = %e, "could not record admin key use");
                }
            }
            Ok(Admin { key_name: format!("{} ({})", key.name, key.id), key_id: key.id, ip })
        })
    }
}

/// Creates an admin key; returns (id, plaintext key). Used by `fedgate admin-key create`.
pub async fn create_key(
    db: &crate::store::Db,
    name: &str,
    now_ms: i64,
    rng: &dyn crate::clock::Rng,
) -> Result<(String, String), crate::store::conn::DbErr> {
    let id = crate::ids::AdminKeyId::new(now_ms, rng);
    let token = crate::keys::new_token(ADMIN_KEY_PREFIX, rng);
    admin_keys::insert(db, id.as_str(), name, &sha256_hex(&token), now_ms / 1000).await?;
    Ok((id.to_string(), token))
}
