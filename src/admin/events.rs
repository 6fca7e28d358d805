//! `/admin/v1/events`, `/admin/v1/webhooks`, deliveries, the audit log, and session revocation.
use super::{page_of, Admin, Page, PageQuery};
use crate::events::{self, audit, webhooks};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::entities::{audit_entry, delivery, delivery_attempt, session, user, webhook_endpoint};
use crate::store::write_tx;
use crate::util::{from_json_list, rfc3339, to_json_list};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
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
        Some(_) => return Err(ApiError::invalid("limit", "invalid_limit", "limit must be between 1 and 1000")),
    };
    let after = match &q.after {
        Some(c) => Some(
            events::decode_cursor(c).ok_or_else(|| ApiError::invalid("after", "invalid_cursor", "malformed cursor"))?,
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
        return Err(ApiError::invalid("types", "invalid_event_type", format!("unknown event type {bad}")));
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
    let u = st.outbound.check_url(url).map_err(|e| ApiError::invalid("url", "invalid_url", e.to_string()))?;
    if u.scheme() != "https" && !(st.config.dev_mode || st.config.allow_private_network) {
        return Err(ApiError::invalid("url", "invalid_url", "webhook URLs must use https"));
    }
    Ok(url.to_string())
}

fn validate_types(v: &[String]) -> Result<Vec<String>, ApiError> {
    for t in v {
        let family_ok =
            t.strip_suffix(".*").is_some_and(|p| events::EVENT_TYPES.iter().any(|e| e.starts_with(&format!("{p}."))));
        if !(t == "*" || family_ok || events::EVENT_TYPES.contains(&t.as_str())) {
            return Err(ApiError::invalid("event_types", "invalid_event_type", format!("unknown event type {t}")));
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
                .ok_or_else(|| ApiError::invalid("tenant_id", "unknown_tenant", "no such tenant"))?
                .id,
        ),
        None => None,
    };
    let now_ms = st.clock.now_ms();
    let id = format!("whk_{}", crate::ids::sortable(now_ms, &*st.rng));
    let secret = webhooks::new_secret(&*st.rng);
    let tx = write_tx(&st.db).await?;
    let row = webhook_endpoint::ActiveModel {
        id: Set(id.clone()),
        url: Set(url),
        secret_enc: Set(st.master.seal(secret.as_bytes(), &format!("webhook:{id}"), &*st.rng)),
        event_types: Set(to_json_list(&types)),
        tenant_id: Set(tenant_id.clone()),
        enabled: Set(true),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(now_ms / 1000),
        updated_at: Set(now_ms / 1000),
    }
    .insert(&tx)
    .await?;
    audit::record(
        &tx,
        now_ms / 1000,
        &a.actor(),
        "webhook.create",
        "webhook",
        Some(&id),
        tenant_id.as_deref(),
        json!({"url": row.url, "event_types": types}),
    )
    .await?;
    tx.commit().await?;
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
    let limit = q.limit()?;
    let mut query = webhook_endpoint::Entity::find().order_by_asc(webhook_endpoint::Column::Id).limit(limit + 1);
    if let Some(c) = &q.cursor {
        query = query.filter(webhook_endpoint::Column::Id.gt(c.clone()));
    }
    let rows = query.all(&st.db).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, limit, |r| r.id.clone(), |r| webhook_view(&r, None))))
}

async fn load_webhook(st: &AppState, id: &str) -> Result<webhook_endpoint::Model, ApiError> {
    webhook_endpoint::Entity::find_by_id(id.to_string())
        .one(&st.db)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
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
    let mut m: webhook_endpoint::ActiveModel = ep.clone().into();
    if let Some(u) = &b.url {
        m.url = Set(validate_url(&st, u)?);
    }
    if let Some(t) = &b.event_types {
        m.event_types = Set(to_json_list(&validate_types(t)?));
    }
    if let Some(e) = b.enabled {
        m.enabled = Set(e);
        if e {
            m.disabled_reason = Set(None);
            m.failing_since = Set(None);
        }
    }
    m.updated_at = Set(now);
    let tx = write_tx(&st.db).await?;
    let row = m.update(&tx).await?;
    audit::record(
        &tx,
        now,
        &a.actor(),
        "webhook.update",
        "webhook",
        Some(&ep.id),
        ep.tenant_id.as_deref(),
        json!({"url": row.url, "enabled": row.enabled}),
    )
    .await?;
    tx.commit().await?;
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
    let tx = write_tx(&st.db).await?;
    delivery::Entity::delete_many()
        .filter(delivery::Column::TargetId.eq(ep.id.clone()))
        .filter(delivery::Column::Status.eq(delivery::PENDING))
        .exec(&tx)
        .await?;
    webhook_endpoint::Entity::delete_by_id(ep.id.clone()).exec(&tx).await?;
    audit::record(&tx, now, &a.actor(), "webhook.delete", "webhook", Some(&ep.id), ep.tenant_id.as_deref(), json!({}))
        .await?;
    tx.commit().await?;
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
    let limit = q.limit()?;
    let mut query = delivery::Entity::find()
        .filter(delivery::Column::TargetId.eq(ep.id.clone()))
        .order_by_desc(delivery::Column::Id)
        .limit(limit + 1);
    if let Some(c) = &q.cursor {
        query = query.filter(delivery::Column::Id.lt(c.clone()));
    }
    let rows = query.all(&st.db).await?;
    let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
    let attempts = delivery_attempt::Entity::find()
        .filter(delivery_attempt::Column::DeliveryId.is_in(ids))
        .order_by_asc(delivery_attempt::Column::Seq)
        .all(&st.db)
        .await?;
    let page: Page<Value> = page_of(
        rows,
        limit,
        |d| d.id.clone(),
        |d| {
            let a = attempts
                .iter()
                .filter(|x| x.delivery_id == d.id)
                .map(|x| json!({"at": rfc3339(x.at), "status": x.status, "latency_ms": x.latency_ms, "error": x.error}))
                .collect();
            delivery_view(&d, a)
        },
    );
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
    if !events::delivery::replay(&st.db, st.clock.now(), &path).await? {
        return Err(ApiError::not_found("delivery"));
    }
    audit::record(&st.db, st.clock.now(), &a.actor(), "delivery.replay", "delivery", Some(&path), None, json!({}))
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"id": path.into_inner(), "status": "pending"})))
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
    let rows = audit_entry::Entity::find()
        .filter(audit_entry::Column::Seq.gt(q.after.unwrap_or(0)))
        .order_by_asc(audit_entry::Column::Seq)
        .limit(limit)
        .all(&st.db)
        .await?;
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
    let user = user::Entity::find_by_id(u)
        .one(&st.db)
        .await?
        .filter(|x| x.tenant_id == tenant.id)
        .ok_or_else(|| ApiError::not_found("user"))?;
    let now = st.clock.now();
    let tx = write_tx(&st.db).await?;
    let n = crate::directory::sessions::revoke_user_sessions(&tx, &*st.rng, &user.id, "admin_revoked", now).await?;
    audit::record(
        &tx,
        now,
        &a.actor(),
        "user.revoke_sessions",
        "user",
        Some(&user.id),
        Some(&tenant.id),
        json!({"sessions": n}),
    )
    .await?;
    tx.commit().await?;
    let _ = session::Entity::find();
    Ok(HttpResponse::Ok().json(json!({"sessions_revoked": n})))
}
