//! `/admin/v1/tenants/{tenant}/scim-tokens` and `/scim-requests`: per-tenant SCIM bearer tokens
//! (shown once, stored hashed, revocable) and the SCIM request log.
use super::{page_of, Admin, Page, PageQuery};
use crate::events::audit::Actor;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::ScimTokenId;
use crate::keys::{new_token, sha256_hex};
use crate::scim::SCIM_TOKEN_PREFIX;
use crate::store::audited;
use crate::store::entities::scim_token;
use crate::store::scim_tokens as store;
use crate::util::rfc3339;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScimToken {
    /// A label, e.g. "Okta provisioning".
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScimTokenView {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The bearer token: present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The SCIM base URL to configure in the provisioning client.
    pub scim_base_url: String,
}

fn view(st: &AppState, slug: &str, t: scim_token::Model, token: Option<String>) -> ScimTokenView {
    ScimTokenView {
        id: t.id,
        tenant_id: t.tenant_id,
        name: t.name,
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
        token,
        scim_base_url: format!("{}/scim/v2/{slug}", st.config.issuer.trim_end_matches('/')),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScimRequestView {
    pub id: String,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_ms: f64,
    pub error_code: Option<String>,
    pub created_at: String,
}

/// Create a SCIM token for a tenant. The token is in this response only.
#[utoipa::path(post, path = "/tenants/{tenant}/scim-tokens", operation_id = "createScimToken", tag = "scim", request_body = CreateScimToken,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = ScimTokenView), (status = 404, description = "No such tenant")))]
#[post("/tenants/{tenant}/scim-tokens")]
pub async fn create_token(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateScimToken>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path).await?;
    let (row, token) = create_scim_token(&st, &a.actor(), &t, &body.name).await?;
    Ok(HttpResponse::Created().json(view(&st, &t.slug, row, Some(token))))
}

/// Creates a SCIM token for `t` (audited as `actor`; the entry never holds the token). Returns
/// the row and the token, which exists only in this answer. The admin API and the console
/// both write through this.
pub async fn create_scim_token(
    st: &AppState,
    actor: &Actor<'_>,
    t: &crate::store::entities::tenant::Model,
    name: &str,
) -> Result<(scim_token::Model, String), ApiError> {
    let name = crate::tenant::validate_name("name", name)?;
    let now_ms = st.clock.now_ms();
    let token = new_token(SCIM_TOKEN_PREFIX, &*st.rng);
    let id = ScimTokenId::new(now_ms, &*st.rng).to_string();
    // The token row and its audit entry commit together (the entry never holds the token).
    let tx = audited::begin(&st.db).await?;
    let row = store::insert_token(&*tx, &id, &t.id, &name, &sha256_hex(&token), now_ms / 1000).await?;
    let entry = actor.entry(
        now_ms / 1000,
        "scim_token.create",
        "scim_token",
        Some(&row.id),
        Some(&t.id),
        serde_json::json!({"name": row.name}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    tracing::info!(tenant = %t.id, token = %row.id, "SCIM token created");
    Ok((row, token))
}

/// List a tenant's SCIM tokens (never the token values).
#[utoipa::path(get, path = "/tenants/{tenant}/scim-tokens", operation_id = "listScimTokens", tag = "scim", params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<ScimTokenView>)))]
#[get("/tenants/{tenant}/scim-tokens")]
pub async fn list_tokens(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path).await?;
    let rows = store::page_tokens(&st.db, &t.id, q.request()?).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, |r| view(&st, &t.slug, r, None))))
}

/// Revoke a SCIM token: it stops working at once.
#[utoipa::path(delete, path = "/tenants/{tenant}/scim-tokens/{id}", operation_id = "revokeScimToken", tag = "scim",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found")))]
#[delete("/tenants/{tenant}/scim-tokens/{id}")]
pub async fn revoke_token(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path.0).await?;
    revoke_scim_token(&st, &a.actor(), &t.id, &path.1).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes a SCIM token of a tenant (audited as `actor`; revoking a revoked token records
/// nothing). The admin API and the console both write through this.
pub async fn revoke_scim_token(st: &AppState, actor: &Actor<'_>, tenant_id: &str, id: &str) -> Result<(), ApiError> {
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    if store::revoke_token(&*tx, tenant_id, id, now).await? {
        let entry =
            actor.entry(now, "scim_token.revoke", "scim_token", Some(id), Some(tenant_id), serde_json::json!({}));
        tx.commit(&*st.rng, entry, None).await?;
    } else if !store::token_exists(&*tx, tenant_id, id).await? {
        return Err(ApiError::not_found("SCIM token"));
    }
    // Already revoked: nothing changed, nothing to audit (the dropped write rolls back).
    Ok(())
}

/// The tenant's SCIM request log, newest first (method, path, status, duration, error code; no bodies).
#[utoipa::path(get, path = "/tenants/{tenant}/scim-requests", operation_id = "listScimRequests", tag = "scim", params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<ScimRequestView>)))]
#[get("/tenants/{tenant}/scim-requests")]
pub async fn list_requests(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path).await?;
    let req = q.request()?;
    st.scim_log.flush(&st.db).await?;
    let rows = store::page_requests(&st.db, &t.id, req).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, |r| ScimRequestView {
        id: r.id,
        method: r.method,
        path: r.path,
        status: r.status,
        duration_ms: r.duration_us as f64 / 1000.0,
        error_code: r.error_code,
        created_at: rfc3339(r.created_at),
    })))
}
