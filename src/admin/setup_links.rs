//! `/admin/v1/tenants/{tenant}/setup-links`: links that open the setup portal for a customer's IT
//! admin (docs/portal.md). The URL (with its token) is in the creating response only; the token
//! is stored hashed. Creating and revoking are audited; so is each redemption (by the portal).
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::SetupLinkId;
use crate::keys::{new_token, sha256_hex};
use crate::portal::links::{intents_of, TOKEN_PREFIX};
use crate::portal::Intent;
use crate::store::audited;
use crate::store::entities::setup_link;
use crate::store::setup_links as store;
use crate::util::rfc3339;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Default lifetime of a link (seconds): 7 days.
pub const DEFAULT_EXPIRES_IN: i64 = 7 * 86_400;
/// Longest lifetime of a link (seconds): 30 days.
pub const MAX_EXPIRES_IN: i64 = 30 * 86_400;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSetupLink {
    /// What the link lets its holder set up: any of `sso`, `scim`, `domains` (at least one).
    pub intents: Vec<String>,
    /// Lifetime in seconds: default 604800 (7 days), at most 2592000 (30 days).
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupLinkView {
    pub id: String,
    pub tenant_id: String,
    #[schema(value_type = Vec<String>)]
    pub intents: Vec<Intent>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    /// How many times the link was opened with "Start setup".
    pub uses: i64,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// The link to send (`{issuer}/setup/{token}`): present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

pub fn view(now: i64, l: setup_link::Model, url: Option<String>) -> SetupLinkView {
    let status = if l.revoked_at.is_some() {
        "revoked"
    } else if l.expires_at <= now {
        "expired"
    } else {
        "active"
    };
    SetupLinkView {
        id: l.id.clone(),
        intents: intents_of(&l),
        tenant_id: l.tenant_id,
        created_by: l.created_by,
        created_at: rfc3339(l.created_at),
        expires_at: rfc3339(l.expires_at),
        revoked_at: l.revoked_at.map(rfc3339),
        last_used_at: l.last_used_at.map(rfc3339),
        uses: l.uses,
        status: status.into(),
        url,
    }
}

/// The intents of a request: known, at least one, each once (in the portal's order).
fn parse_intents(given: &[String]) -> Result<Vec<Intent>, ApiError> {
    let mut out = Vec::new();
    for s in given {
        let i = Intent::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "intents",
                ErrorCode::InvalidIntents,
                format!("unknown intent {s:?}: use sso, scim or domains"),
            )
        })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid(
            "intents",
            ErrorCode::InvalidIntents,
            "give at least one intent: sso, scim or domains",
        ));
    }
    out.sort();
    Ok(out)
}

/// Create a setup link for a tenant. The URL to send is in this response only.
#[utoipa::path(post, path = "/tenants/{tenant}/setup-links", operation_id = "createSetupLink", tag = "setup-links", request_body = CreateSetupLink,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = SetupLinkView), (status = 400, description = "Invalid intents or lifetime"), (status = 404, description = "No such tenant")))]
#[post("/tenants/{tenant}/setup-links")]
pub async fn create(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateSetupLink>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path).await?;
    let (row, url) = create_setup_link(&st, &a.actor(), &a.key_name, &t, &body.intents, body.expires_in).await?;
    let now = st.clock.now();
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(view(now, row, Some(url))))
}

/// Creates a setup link (the admin API and the console): returns the row and the URL to send,
/// which exists only in this answer. `created_by` names the key or operator.
pub async fn create_setup_link(
    st: &AppState,
    actor: &crate::events::audit::Actor<'_>,
    created_by: &str,
    t: &crate::store::entities::tenant::Model,
    intents: &[String],
    expires_in: Option<i64>,
) -> Result<(setup_link::Model, String), ApiError> {
    let intents = parse_intents(intents)?;
    let expires_in = expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    if !(60..=MAX_EXPIRES_IN).contains(&expires_in) {
        return Err(ApiError::invalid(
            "expires_in",
            ErrorCode::OutOfRange,
            format!("expires_in must be between 60 and {MAX_EXPIRES_IN} seconds (30 days)"),
        ));
    }
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let token = new_token(TOKEN_PREFIX, &*st.rng);
    let id = SetupLinkId::new(now_ms, &*st.rng).to_string();
    let tx = audited::begin(&st.db).await?;
    let row = store::insert(
        &*tx,
        store::NewSetupLink {
            id,
            tenant_id: t.id.clone(),
            token_hash: sha256_hex(&token),
            intents: intents.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(","),
            created_by: created_by.to_string(),
            expires_at: now + expires_in,
            now,
        },
    )
    .await?;
    let entry = actor.entry(
        now,
        "setup_link.create",
        "setup_link",
        Some(&row.id),
        Some(&t.id),
        serde_json::json!({"intents": row.intents, "expires_at": rfc3339(row.expires_at)}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    let url = format!("{}/setup/{token}", st.config.issuer.trim_end_matches('/'));
    Ok((row, url))
}

/// List a tenant's setup links (newest first; never their tokens).
#[utoipa::path(get, path = "/tenants/{tenant}/setup-links", operation_id = "listSetupLinks", tag = "setup-links",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<SetupLinkView>), (status = 404, description = "No such tenant")))]
#[get("/tenants/{tenant}/setup-links")]
pub async fn list(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let t = super::tenant_or_404(&st, &path).await?;
    let now = st.clock.now();
    let page = store::page_of_tenant(&st.db, &t.id, q.request()?).await?;
    Ok(HttpResponse::Ok().json(page_of(page, |l| view(now, l, None))))
}

/// Revoke a setup link: it stops working at once, and the portal sessions opened from it end.
#[utoipa::path(delete, path = "/tenants/{tenant}/setup-links/{id}", operation_id = "revokeSetupLink", tag = "setup-links",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Setup link id")),
    responses((status = 204, description = "Revoked (or already revoked)"), (status = 404, description = "No such link")))]
#[delete("/tenants/{tenant}/setup-links/{id}")]
pub async fn revoke(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tk, id) = path.into_inner();
    let t = super::tenant_or_404(&st, &tk).await?;
    revoke_setup_link(&st, &a.actor(), &t.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes a tenant's setup link and ends the portal sessions opened from it (the admin API and
/// the console). Revoking a revoked link changes nothing and records nothing.
pub async fn revoke_setup_link(
    st: &AppState,
    actor: &crate::events::audit::Actor<'_>,
    tenant_id: &str,
    id: &str,
) -> Result<(), ApiError> {
    let link = store::get(&st.db, id)
        .await?
        .filter(|l| l.tenant_id == tenant_id)
        .ok_or_else(|| ApiError::not_found("setup link"))?;
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    if !store::revoke(&*tx, &link.id, now).await? {
        tx.rollback().await?;
        return Ok(());
    }
    let ended = crate::store::ui_sessions::revoke_subject(
        &*tx,
        crate::store::entities::ui_session::UiKind::Portal,
        &link.id,
        now,
    )
    .await?;
    let entry = actor.entry(
        now,
        "setup_link.revoke",
        "setup_link",
        Some(&link.id),
        Some(tenant_id),
        serde_json::json!({"sessions_ended": ended}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(())
}
