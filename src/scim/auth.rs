//! SCIM bearer tokens: per tenant, stored as SHA-256 hashes, revocable, with a last-used time.
//! A token authenticates only on its own tenant's URL.
use crate::directory::provisioning::{ListPlan, ListQuery, ListView};
use crate::http::AppState;
use crate::keys::{constant_time_eq, sha256_hex};
use crate::scim::error::ScimError;
use crate::store::entities::tenant;
use crate::store::scim_tokens;
use crate::store::scim_user_view::UserWithGroups;
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
            let (state, cred) = credentials(&req)?;
            let found = scim_tokens::authenticate(&state.db, &cred.hash, &cred.tenant_key).await?;
            admit(&state, &req, &cred, found.map(|(k, t)| (k, t, ()))).await.map(|(t, ())| t)
        })
    }
}

/// The SCIM user `id` of the request's tenant (with its groups), read in the same statement as
/// the request's token ([`scim_tokens::authenticate_with_user`]): `GET /Users/{id}` is one
/// statement. The token is checked exactly as by the [`ScimTenant`] extractor, before the user
/// is looked at: a bad token is a 401 whether or not the user exists.
pub async fn authenticate_with_user(
    req: &HttpRequest,
    id: &str,
) -> Result<(ScimTenant, Option<UserWithGroups>), ScimError> {
    let (state, cred) = credentials(req)?;
    let found = scim_tokens::authenticate_with_user(&state.db, &cred.hash, &cred.tenant_key, id).await?;
    admit(&state, req, &cred, found).await
}

/// A key lookup of users (`GET /Users?filter=userName eq "…"`, see [`ListPlan::token_lookup`])
/// read in the same statement as the request's token ([`scim_tokens::authenticate_with_users`]):
/// the tenant, the plan and the page's users. `Ok(None)` when the request is not such a lookup
/// (nothing was read: the caller takes the usual path). The token is checked exactly as by the
/// [`ScimTenant`] extractor.
pub async fn authenticate_with_lookup(
    req: &HttpRequest,
    q: &ListQuery,
) -> Result<Option<(ScimTenant, ListView, Vec<UserWithGroups>)>, ScimError> {
    let (state, cred) = credentials(req)?;
    let sql = scim_tokens::users_of_token(crate::store::scim_list::dialect(&state.db), &cred.hash, &cred.tenant_key);
    let Some(ListPlan { sql, view }) = ListPlan::token_lookup(q, sql) else { return Ok(None) };
    let found = scim_tokens::authenticate_with_users(&state.db, sql, view.count).await?;
    let (t, users) = admit(&state, req, &cred, found).await?;
    Ok(Some((t, view, users)))
}

/// A request's bearer token (as its SHA-256 hash) and the tenant its URL names.
struct Credentials {
    hash: String,
    tenant_key: String,
}

/// The state and the request's credentials; a 401 when there is no SCIM bearer token.
fn credentials(req: &HttpRequest) -> Result<(web::Data<AppState>, Credentials), ScimError> {
    let state = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(ScimError::internal)?;
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| v[7..].trim()))
        .filter(|t| t.starts_with(SCIM_TOKEN_PREFIX) && t.len() < 200)
        .ok_or_else(ScimError::unauthorized)?;
    let tenant_key = req.match_info().get("tenant").unwrap_or_default().to_string();
    Ok((state, Credentials { hash: sha256_hex(token), tenant_key }))
}

/// Checks what the token lookup found (token, revocation and tenant, read on every request
/// with no cache: a revoked token fails on its next request on every instance), records the
/// token's use at most once a minute, and makes the tenant the request's ([`ScimTenant`] in
/// its extensions, read by the request log). `T` is what was read with the token.
async fn admit<T>(
    state: &AppState,
    req: &HttpRequest,
    cred: &Credentials,
    found: Option<scim_tokens::Authenticated<T>>,
) -> Result<(ScimTenant, T), ScimError> {
    let (tok, t, extra) = found
        .filter(|(k, t, _)| {
            k.revoked_at.is_none() && constant_time_eq(&k.token_hash, &cred.hash) && t.id == k.tenant_id
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
    Ok((out, extra))
}
