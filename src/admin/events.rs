//! `/admin/v1/events`, `/admin/v1/webhooks`, deliveries, the audit log, and session revocation.
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::events::{self, webhooks};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::entities::{delivery, webhook_endpoint};
use crate::store::webhooks::{self as store, NewWebhook, WebhookChanges};
use crate::store::{audited, deliveries};
use crate::util::{from_json_list, rfc3339, to_json_list};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// `next_cursor` of the previous page; absent = from the oldest retained event.
    pub after: Option<String>,
    /// Comma-separated event types.
    pub types: Option<String>,
    /// Tenant id.
    pub tenant: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<u64>,
}

/// Events in commit order, resumable with `after`.
#[utoipa::path(get, path = "/events", operation_id = "listEvents", tag = "events", params(EventQuery),
    responses((status = 200, description = "`{data: [...], next_cursor}`; poll again with after=next_cursor", body = Object)))]
#[get("/events")]
pub async fn list_events(
    _a: Admin,
    st: web::Data<AppState>,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match q.limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("limit", ErrorCode::InvalidLimit, "limit must be between 1 and 1000")),
    };
    let after = match &q.after {
        Some(c) => Some(
            events::decode_cursor(c)
                .ok_or_else(|| ApiError::invalid("after", ErrorCode::InvalidCursor, "malformed cursor"))?,
        ),
        None => None,
    };
    let types: Vec<String> = q
        .types
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = types.iter().find(|t| !events::EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid("types", ErrorCode::InvalidEventType, format!("unknown event type {bad}")));
    }
    let rows = events::list(&st.db, after, &types, q.tenant.as_deref(), limit).await?;
    let next = rows.last().map(|e| events::encode_cursor(e.tx_id, e.seq)).or_else(|| q.after.clone());
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(events::view).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// https URL (http only for loopback with allow_private_network, or in dev mode).
    pub url: String,
    /// Event types (`user.created`, `user.*`); empty or absent = all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Only this tenant's events; absent = every tenant's. A tenant id (`org_…`) or slug; the
    /// endpoint stores (and shows) the id, which is what events carry.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// true re-enables a disabled endpoint.
    pub enabled: Option<bool>,
}

fn webhook_view(ep: &webhook_endpoint::Model, secret: Option<String>) -> Value {
    let mut v = json!({
        "id": ep.id, "url": ep.url, "event_types": from_json_list(&ep.event_types), "tenant_id": ep.tenant_id,
        "enabled": ep.enabled, "disabled_reason": ep.disabled_reason,
        "failing_since": ep.failing_since.map(rfc3339),
        "created_at": rfc3339(ep.created_at), "updated_at": rfc3339(ep.updated_at),
    });
    if let Some(s) = secret {
        v["secret"] = s.into();
    }
    v
}

fn validate_url(st: &AppState, url: &str) -> Result<String, ApiError> {
    let u = st.outbound.check_url(url).map_err(|e| ApiError::invalid("url", ErrorCode::InvalidUrl, e.to_string()))?;
    if u.scheme() != "https" && !(st.config.dev_mode || st.config.allow_private_network) {
        return Err(ApiError::invalid("url", ErrorCode::InvalidUrl, "webhook URLs must use https"));
    }
    Ok(url.to_string())
}

fn validate_types(v: &[String]) -> Result<Vec<String>, ApiError> {
    for t in v {
        let family_ok =
            t.strip_suffix(".*").is_some_and(|p| events::EVENT_TYPES.iter().any(|e| e.starts_with(&format!("{p}."))));
        if !(t == "*" || family_ok || events::EVENT_TYPES.contains(&t.as_str())) {
            return Err(ApiError::invalid(
                "event_types",
                ErrorCode::InvalidEventType,
                format!("unknown event type {t}"),
            ));
        }
    }
    Ok(v.to_vec())
}

/// Register a webhook endpoint. The signing secret (`whsec_...`) is in the response once.
#[utoipa::path(post, path = "/webhooks", operation_id = "createWebhook", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "The endpoint with its secret", body = Object), (status = 400, description = "Invalid")))]
#[post("/webhooks")]
pub async fn create_webhook(
    a: Admin,
    st: web::Data<AppState>,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let url = validate_url(&st, &b.url)?;
    let types = validate_types(&b.event_types)?;
    // Events carry the tenant id: a slug stored here would match no event, ever.
    let tenant_id = match &b.tenant_id {
        Some(t) => Some(
            crate::tenant::find(&st.db, t)
                .await?
                .ok_or_else(|| ApiError::invalid("tenant_id", ErrorCode::UnknownTenant, "no such tenant"))?
                .id,
        ),
        None => None,
    };
    let now_ms = st.clock.now_ms();
    let id = format!("whk_{}", crate::ids::sortable(now_ms, &*st.rng));
    let secret = webhooks::new_secret(&*st.rng);
    let new = NewWebhook {
        id: id.clone(),
        url,
        secret_enc: st.master.seal(secret.as_bytes(), &format!("webhook:{id}"), &*st.rng),
        event_types: to_json_list(&types),
        tenant_id: tenant_id.clone(),
        now: now_ms / 1000,
    };
    let tx = audited::begin(&st.db).await?;
    let row = store::insert(&*tx, new).await?;
    let entry = a.actor().entry(
        now_ms / 1000,
        "webhook.create",
        "webhook",
        Some(&id),
        tenant_id.as_deref(),
        json!({"url": row.url, "event_types": types}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::Created().json(webhook_view(&row, Some(secret))))
}

/// List webhook endpoints.
#[utoipa::path(get, path = "/webhooks", operation_id = "listWebhooks", tag = "webhooks", params(PageQuery), responses((status = 200, body = Object)))]
#[get("/webhooks")]
pub async fn list_webhooks(
    _a: Admin,
    st: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = store::page(&st.db, q.request()?).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, |r| webhook_view(&r, None))))
}

async fn load_webhook(st: &AppState, id: &str) -> Result<webhook_endpoint::Model, ApiError> {
    store::get(&st.db, id).await?.ok_or_else(|| ApiError::not_found("webhook"))
}

/// Get a webhook endpoint.
#[utoipa::path(get, path = "/webhooks/{id}", operation_id = "getWebhook", tag = "webhooks", params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Object), (status = 404, description = "Not found")))]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(webhook_view(&load_webhook(&st, &path).await?, None)))
}

/// Update a webhook endpoint (re-enable with `enabled: true`).
#[utoipa::path(patch, path = "/webhooks/{id}", operation_id = "updateWebhook", tag = "webhooks", request_body = UpdateWebhook, params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Object), (status = 404, description = "Not found")))]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let ep = load_webhook(&st, &path).await?;
    let now = st.clock.now();
    let mut ch = WebhookChanges::default();
    if let Some(u) = &b.url {
        ch.url = Some(validate_url(&st, u)?);
    }
    if let Some(t) = &b.event_types {
        ch.event_types = Some(to_json_list(&validate_types(t)?));
    }
    ch.enabled = b.enabled;
    let tx = audited::begin(&st.db).await?;
    let row = store::update(&*tx, ep.clone(), ch, now).await?;
    let entry = a.actor().entry(
        now,
        "webhook.update",
        "webhook",
        Some(&ep.id),
        ep.tenant_id.as_deref(),
        json!({"url": row.url, "enabled": row.enabled}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::Ok().json(webhook_view(&row, None)))
}

/// Delete a webhook endpoint; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks", params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ep = load_webhook(&st, &path).await?;
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    store::delete(&*tx, &ep.id).await?;
    let entry = a.actor().entry(now, "webhook.delete", "webhook", Some(&ep.id), ep.tenant_id.as_deref(), json!({}));
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn delivery_view(d: &delivery::Model, attempts: Vec<Value>) -> Value {
    json!({
        "id": d.id, "kind": d.kind, "target_id": d.target_id, "event_id": d.event_id, "status": d.status,
        "attempts": d.attempts, "next_attempt_at": (d.status == delivery::PENDING).then(|| rfc3339(d.next_attempt_at)),
        "last_status": d.last_status, "last_error": d.last_error, "last_latency_ms": d.last_latency_ms,
        "created_at": rfc3339(d.created_at), "finished_at": d.finished_at.map(rfc3339), "attempt_log": attempts,
    })
}

/// The delivery log of an endpoint: newest first, with every attempt (status, latency, error).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks", params(("id" = String, Path, description = "Webhook id"), PageQuery),
    responses((status = 200, body = Object), (status = 404, description = "Not found")))]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let ep = load_webhook(&st, &path).await?;
    let rows = deliveries::page_for_target(&st.db, &ep.id, q.request()?).await?;
    let ids: Vec<String> = rows.rows.iter().map(|d| d.id.clone()).collect();
    let attempts = deliveries::attempts_of(&st.db, &ids).await?;
    let page: Page<Value> = page_of(rows, |d| {
        let a = attempts
            .iter()
            .filter(|x| x.delivery_id == d.id)
            .map(|x| json!({"at": rfc3339(x.at), "status": x.status, "latency_ms": x.latency_ms, "error": x.error}))
            .collect();
        delivery_view(&d, a)
    });
    Ok(HttpResponse::Ok().json(page))
}

/// Send a delivery again (manual replay); it keeps its `webhook-id`.
#[utoipa::path(post, path = "/deliveries/{id}/replay", operation_id = "replayDelivery", tag = "webhooks", params(("id" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued"), (status = 404, description = "Not found")))]
#[post("/deliveries/{id}/replay")]
pub async fn replay_delivery(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    replay(&st, &a.actor(), &path).await?;
    Ok(HttpResponse::Accepted().json(json!({"id": path.into_inner(), "status": "pending"})))
}

/// Queues a delivery again (audited as `actor`): the admin API and the console both replay
/// through this.
pub async fn replay(st: &AppState, actor: &crate::events::audit::Actor<'_>, id: &str) -> Result<(), ApiError> {
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    if !deliveries::replay(&*tx, now, id).await? {
        return Err(ApiError::not_found("delivery"));
    }
    let entry = actor.entry(now, "delivery.replay", "delivery", Some(id), None, json!({}));
    tx.commit(&*st.rng, entry, None).await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<u64>,
}

/// The audit log of admin actions, oldest first.
#[utoipa::path(get, path = "/audit-log", operation_id = "listAuditLog", tag = "audit", params(AuditQuery), responses((status = 200, body = Object)))]
#[get("/audit-log")]
pub async fn audit_log(
    _a: Admin,
    st: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = crate::store::audit::list_after(&st.db, q.after.unwrap_or(0), limit).await?;
    let next = rows.last().map(|r| r.seq).or(q.after);
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"at": rfc3339(r.at), "actor": r.actor, "action": r.action, "target_type": r.target_type,
                   "target_id": r.target_id, "tenant_id": r.tenant_id, "ip": r.ip, "request_id": r.request_id,
                   "details": serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

/// End every session of a user and revoke their tokens; apps with a back-channel logout URI
/// are told.
#[utoipa::path(post, path = "/tenants/{tenant}/users/{user}/revoke-sessions", operation_id = "revokeUserSessions", tag = "users",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id")),
    responses((status = 200, description = "How many sessions ended", body = Object), (status = 404, description = "Not found")))]
#[post("/tenants/{tenant}/users/{user}/revoke-sessions")]
pub async fn revoke_sessions(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, u) = path.into_inner();
    let tenant = crate::tenant::find(&st.db, &t).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let user = crate::store::tenants::user(&st.db, &tenant.id, &u).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    let n = crate::directory::sessions::revoke_user_sessions(&tx, &*st.rng, &user.id, "admin_revoked", now).await?;
    let entry =
        a.actor().entry(now, "user.revoke_sessions", "user", Some(&user.id), Some(&tenant.id), json!({"sessions": n}));
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::Ok().json(json!({"sessions_revoked": n})))
}
