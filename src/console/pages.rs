//! The console's pages: tenants (list, create, edit, domains, connection health, SCIM tokens
//! and request log), login traces (search and one trace), events, webhooks with their
//! deliveries and replay, and the audit log. Reads take [`Operator`]; writes take [`Write`]
//! (CSRF-checked, full operators only) and call the admin API's own functions.
use super::{page, ConsoleError, Operator, Write};
use crate::admin::tenants::{CreateTenant, UpdateTenant};
use crate::events::audit::Actor;
use crate::http::error::{ApiError, PageError};
use crate::http::{redirect, AppState};
use crate::store::entities::{connection, tenant};
use crate::store::page::PageRequest;
use crate::upstream::connections::ConnectionConfig;
use crate::util::{from_json_list, rfc3339};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

fn opt_rfc3339(t: Option<i64>) -> Value {
    t.map(rfc3339).map(Value::from).unwrap_or(Value::Null)
}

/// A failed write, shown next to the form: the admin API's message (and field).
fn write_error(e: &ApiError) -> Value {
    json!({ "message": e.message, "field": e.field, "code": e.code.as_str() })
}

fn not_found(what: &str) -> ConsoleError {
    ConsoleError::Page(PageError::new(
        StatusCode::NOT_FOUND,
        crate::error_code::ErrorCode::NotFound,
        "Not found",
        format!("There is no such {what}."),
    ))
}

/// Splits a textarea of domains (commas, spaces or lines).
fn domain_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    pub cursor: Option<String>,
    pub notice: Option<String>,
}

/// GET /console: the tenants, and (full operators) the form to create one.
pub async fn tenants(
    op: Operator,
    st: web::Data<AppState>,
    q: web::Query<CursorQuery>,
) -> Result<HttpResponse, ConsoleError> {
    tenants_page(
        &op,
        &st,
        q.cursor.as_deref(),
        Value::Null,
        json!({"name": "", "slug": "", "domains": ""}),
        StatusCode::OK,
    )
    .await
}

async fn tenants_page(
    op: &Operator,
    st: &AppState,
    cursor: Option<&str>,
    error: Value,
    form: Value,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let rows = crate::store::tenants::page(&st.db, PageRequest { cursor, limit: 50 }).await?;
    let ids: Vec<String> = rows.rows.iter().map(|r| r.id.clone()).collect();
    let domains = crate::store::tenants::domains_of_many(&st.db, &ids).await?;
    let list: Vec<Value> = rows
        .rows
        .iter()
        .map(|t| {
            let ds: Vec<&str> = domains.iter().filter(|d| d.tenant_id == t.id).map(|d| d.domain.as_str()).collect();
            json!({ "id": t.id, "slug": t.slug, "name": t.name, "domains": ds.join(", "), "created_at": rfc3339(t.created_at) })
        })
        .collect();
    Ok(page(
        status,
        "console_tenants.html",
        json!({ "op": op.view(), "tenants": list, "next_cursor": rows.next_cursor, "error": error, "form": form }),
    ))
}

/// POST /console/tenants
pub async fn create_tenant(w: Write, st: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    let name = w.form.get("name").unwrap_or("").to_string();
    let slug = w.form.get("slug").unwrap_or("").trim().to_string();
    let domains = w.form.get("domains").unwrap_or("").to_string();
    let body = CreateTenant { name: name.clone(), slug: slug.clone(), domains: domain_list(&domains), settings: None };
    let actor_name = w.op.actor_name();
    let actor = Actor { name: &actor_name, ip: &w.op.ip };
    let r = crate::admin::tenants::create_tenant(&st, &actor, body).await;
    match r {
        Ok((row, _)) => Ok(redirect(StatusCode::SEE_OTHER, &format!("/console/tenants/{}?notice=created", row.slug))),
        Err(e) => {
            let form = json!({"name": name, "slug": slug, "domains": domains});
            tenants_page(&w.op, &st, None, write_error(&e), form, e.status).await
        }
    }
}

async fn load_tenant(st: &AppState, key: &str) -> Result<tenant::Model, ConsoleError> {
    crate::tenant::find(&st.db, key).await?.ok_or_else(|| not_found("tenant"))
}

/// A connection's health: last good and last failed login (with its code), certificate expiry,
/// metadata refresh.
async fn connection_health(st: &AppState, c: &connection::Model, now: i64) -> Result<Value, ConsoleError> {
    let ok = crate::store::traces::latest_of_connection(&st.db, &c.id, crate::traces::COMPLETED).await?;
    let failed = crate::store::traces::latest_of_connection(&st.db, &c.id, crate::traces::FAILED).await?;
    let mut cert_expiry = Value::Null;
    let mut cert_days = Value::Null;
    let mut metadata = json!({"url": null, "refreshed_at": null, "error": null});
    let mut warnings: Vec<String> = Vec::new();
    if let Ok(ConnectionConfig::Saml(cfg)) = ConnectionConfig::from_row(c) {
        let earliest = cfg
            .idp_certificates
            .iter()
            .filter_map(|p| crate::upstream::saml::metadata::cert_info(p).ok())
            .map(|i| i.not_after)
            .min();
        if let Some(t) = earliest {
            cert_expiry = rfc3339(t).into();
            cert_days = ((t - now).div_euclid(86_400)).into();
        }
        metadata = json!({
            "url": cfg.metadata_url,
            "refreshed_at": opt_rfc3339(cfg.metadata_refreshed_at),
            "error": cfg.metadata_refresh_error,
        });
        warnings = cfg.warnings(now);
    }
    let (mfa, mfa_enforced_by_idp) = match ConnectionConfig::from_row(c) {
        Ok(cfg) => {
            let (o, e, _) = cfg.mfa();
            (serde_json::to_value(o).unwrap_or(Value::Null), e)
        }
        Err(_) => (Value::Null, false),
    };
    Ok(json!({
        "mfa": mfa, "mfa_enforced_by_idp": mfa_enforced_by_idp,
        "id": c.id, "name": c.name, "type": c.conn_type, "enabled": c.enabled,
        "last_success": ok.map(|t| json!({"at": rfc3339(t.updated_at), "trace": t.id})),
        "last_failure": failed.map(|t| json!({"at": rfc3339(t.updated_at), "trace": t.id, "code": t.error_code})),
        "cert_expiry": cert_expiry, "cert_days": cert_days, "metadata": metadata, "warnings": warnings,
    }))
}

/// What the tenant page shows besides its forms.
async fn tenant_page(
    op: &Operator,
    st: &AppState,
    t: &tenant::Model,
    notice: Option<&str>,
    error: Value,
    new_token: Value,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let now = st.clock.now();
    let domains = crate::tenant::domains_of(&st.db, &t.id).await?;
    let conns =
        crate::store::connections::page_of_tenant(&st.db, &t.id, PageRequest { cursor: None, limit: 100 }).await?;
    let mut connections = Vec::new();
    for c in &conns.rows {
        connections.push(connection_health(st, c, now).await?);
    }
    let tokens =
        crate::store::scim_tokens::page_tokens(&st.db, &t.id, PageRequest { cursor: None, limit: 100 }).await?;
    let tokens: Vec<Value> = tokens
        .rows
        .iter()
        .map(|k| {
            json!({"id": k.id, "name": k.name, "created_at": rfc3339(k.created_at), "last_used_at": opt_rfc3339(k.last_used_at),
                   "revoked_at": opt_rfc3339(k.revoked_at)})
        })
        .collect();
    let links =
        crate::store::setup_links::page_of_tenant(&st.db, &t.id, PageRequest { cursor: None, limit: 50 }).await?;
    let links: Vec<Value> = links
        .rows
        .into_iter()
        .map(|l| serde_json::to_value(crate::admin::setup_links::view(now, l, None)).unwrap_or_default())
        .collect();
    st.scim_log.flush(&st.db).await?;
    let reqs = crate::store::scim_tokens::page_requests(&st.db, &t.id, PageRequest { cursor: None, limit: 25 }).await?;
    let requests: Vec<Value> = reqs
        .rows
        .iter()
        .map(|r| {
            json!({"at": rfc3339(r.created_at), "method": r.method, "path": r.path, "status": r.status,
                   "duration_ms": format!("{:.1}", r.duration_us as f64 / 1000.0), "error_code": r.error_code})
        })
        .collect();
    Ok(page(
        status,
        "console_tenant.html",
        json!({
            "op": op.view(),
            "tenant": {"id": t.id, "slug": t.slug, "name": t.name, "created_at": rfc3339(t.created_at),
                       "mfa": crate::tenant::settings_of(t).mfa},
            "domains": domains.join("\n"),
            "domain_list": domains,
            "connections": connections,
            "tokens": tokens,
            "links": links,
            "requests": requests,
            "scim_base_url": format!("{}/scim/v2/{}", st.config.issuer.trim_end_matches('/'), t.slug),
            "notice": notice,
            "error": error,
            "new_token": new_token,
        }),
    ))
}

/// GET /console/tenants/{tenant}
pub async fn tenant(
    op: Operator,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<CursorQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path).await?;
    let notice = q.notice.as_deref().filter(|n| ["created", "updated", "token_revoked", "link_revoked"].contains(n));
    tenant_page(&op, &st, &t, notice, Value::Null, Value::Null, StatusCode::OK).await
}

/// POST /console/tenants/{tenant}: name, slug, domains.
pub async fn update_tenant(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path).await?;
    let body = UpdateTenant {
        name: w.form.get("name").map(str::to_string),
        slug: w.form.get("slug").map(|s| s.trim().to_string()),
        domains: Some(domain_list(w.form.get("domains").unwrap_or(""))),
        settings: None,
    };
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    match crate::admin::tenants::update_tenant(&st, &actor, &t.id, body).await {
        Ok((row, _)) => Ok(redirect(StatusCode::SEE_OTHER, &format!("/console/tenants/{}?notice=updated", row.slug))),
        Err(e) => tenant_page(&w.op, &st, &t, None, write_error(&e), Value::Null, e.status).await,
    }
}

/// POST /console/tenants/{tenant}/scim-tokens: the token is on this answer's page only.
pub async fn create_scim_token(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path).await?;
    let label = w.form.get("name").unwrap_or("").to_string();
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    match crate::admin::scim::create_scim_token(&st, &actor, &t, &label).await {
        Ok((row, token)) => {
            let shown = json!({"id": row.id, "name": row.name, "token": token});
            tenant_page(&w.op, &st, &t, None, Value::Null, shown, StatusCode::CREATED).await
        }
        Err(e) => tenant_page(&w.op, &st, &t, None, write_error(&e), Value::Null, e.status).await,
    }
}

/// POST /console/tenants/{tenant}/setup-links: intents (`intent_sso`, `intent_scim`,
/// `intent_domains`) and `expires_days`; the link's URL is on this answer's page only.
pub async fn create_setup_link(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path).await?;
    let intents: Vec<String> = ["sso", "scim", "domains"]
        .iter()
        .filter(|i| w.form.get(&format!("intent_{i}")).is_some())
        .map(|i| i.to_string())
        .collect();
    let days: i64 = w.form.get("expires_days").and_then(|d| d.trim().parse().ok()).unwrap_or(7);
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    let r = crate::admin::setup_links::create_setup_link(
        &st,
        &actor,
        &name,
        &t,
        &intents,
        Some(days.saturating_mul(86400)),
    )
    .await;
    match r {
        Ok((row, url)) => {
            let shown = json!({"url": url, "expires_at": rfc3339(row.expires_at), "intents": row.intents});
            tenant_page(&w.op, &st, &t, None, Value::Null, shown, StatusCode::CREATED).await
        }
        Err(e) => tenant_page(&w.op, &st, &t, None, write_error(&e), Value::Null, e.status).await,
    }
}

/// POST /console/tenants/{tenant}/setup-links/{id}/revoke
pub async fn revoke_setup_link(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path.0).await?;
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    match crate::admin::setup_links::revoke_setup_link(&st, &actor, &t.id, &path.1).await {
        Ok(()) => Ok(redirect(StatusCode::SEE_OTHER, &format!("/console/tenants/{}?notice=link_revoked", t.slug))),
        Err(e) => tenant_page(&w.op, &st, &t, None, write_error(&e), Value::Null, e.status).await,
    }
}

/// POST /console/tenants/{tenant}/scim-tokens/{id}/revoke
pub async fn revoke_scim_token(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let t = load_tenant(&st, &path.0).await?;
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    let r = crate::admin::scim::revoke_scim_token(&st, &actor, &t.id, &path.1).await;
    match r {
        Ok(()) => Ok(redirect(StatusCode::SEE_OTHER, &format!("/console/tenants/{}?notice=token_revoked", t.slug))),
        Err(e) => tenant_page(&w.op, &st, &t, None, write_error(&e), Value::Null, e.status).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct TraceQuery {
    /// A trace id (as shown on error pages): opens it.
    pub id: Option<String>,
    /// Tenant id or slug.
    pub tenant: Option<String>,
    pub email: Option<String>,
    pub connection: Option<String>,
    pub status: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    pub until: Option<String>,
    pub cursor: Option<String>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` as Unix seconds at 00:00 UTC.
fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

fn clean(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 320).map(str::to_string)
}

/// Which common failure a trace is, for its one-line summary (the sentence is in the catalogue:
/// `console.why_<group>`).
pub fn failure_group(status: &str, code: Option<&str>) -> &'static str {
    if status == crate::traces::ABANDONED {
        return "abandoned";
    }
    if status == crate::traces::COMPLETED {
        return "ok";
    }
    if status == crate::traces::PENDING {
        return "pending";
    }
    match code.unwrap_or("") {
        "saml_expired" | "saml_not_yet_valid" | "id_token_expired" | "id_token_not_yet_valid" => "clock_skew",
        "saml_audience_mismatch"
        | "id_token_audience_mismatch"
        | "saml_recipient_mismatch"
        | "saml_destination_mismatch" => "wrong_audience",
        "saml_signature_invalid" | "id_token_signature_invalid" | "id_token_key_unknown" => "certificate_rotated",
        "saml_status_not_success" | "upstream_denied" => "not_assigned",
        "email_domain_not_allowed" => "email_domain",
        "saml_issuer_mismatch" | "id_token_issuer_mismatch" => "wrong_issuer",
        "user_inactive" => "user_inactive",
        "invalid_redirect_uri" | "invalid_request" | "invalid_scope" | "unauthorized_client" => "app_request",
        _ => "other",
    }
}

/// GET /console/logins: "why can't they log in?" — search by tenant, email, connection,
/// status and day range; a trace id opens the trace.
pub async fn logins(
    op: Operator,
    st: web::Data<AppState>,
    q: web::Query<TraceQuery>,
) -> Result<HttpResponse, ConsoleError> {
    if let Some(id) = clean(&q.id) {
        if crate::store::traces::get(&st.db, &id).await?.is_some() {
            let url =
                format!("/console/logins/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
            return Ok(redirect(StatusCode::SEE_OTHER, &url));
        }
    }
    let mut problems: Vec<&str> = Vec::new();
    let mut filter = crate::store::traces::TraceFilter::default();
    let mut no_match = false;
    if let Some(t) = clean(&q.tenant) {
        match crate::tenant::find(&st.db, &t).await? {
            Some(t) => filter.tenant_id = Some(t.id),
            None => {
                problems.push("unknown_tenant");
                no_match = true;
            }
        }
    }
    filter.email = clean(&q.email).map(|e| e.to_ascii_lowercase());
    filter.connection_id = clean(&q.connection);
    if let Some(s) = clean(&q.status) {
        if crate::traces::STATUSES.contains(&s.as_str()) {
            filter.status = Some(s);
        } else {
            problems.push("bad_status");
        }
    }
    if let Some(f) = clean(&q.from) {
        match parse_day(&f) {
            Some(t) => filter.from = Some(t),
            None => problems.push("bad_date"),
        }
    }
    if let Some(u) = clean(&q.until) {
        match parse_day(&u) {
            Some(t) => filter.until = Some(t + 86_400),
            None => problems.push("bad_date"),
        }
    }
    if clean(&q.id).is_some() {
        problems.push("no_such_trace");
    }
    let (rows, next) = if no_match {
        (Vec::new(), None)
    } else {
        let p = crate::store::traces::search(&st.db, &filter, PageRequest { cursor: q.cursor.as_deref(), limit: 50 })
            .await?;
        (p.rows, p.next_cursor)
    };
    let mut tenant_names = std::collections::HashMap::new();
    let mut results = Vec::new();
    for r in &rows {
        let tname = match &r.tenant_id {
            Some(tid) => {
                if !tenant_names.contains_key(tid) {
                    let n = crate::tenant::get(&st.db, tid).await?.map(|t| t.slug).unwrap_or_else(|| tid.clone());
                    tenant_names.insert(tid.clone(), n);
                }
                tenant_names.get(tid).cloned()
            }
            None => None,
        };
        results.push(json!({
            "id": r.id, "started_at": rfc3339(r.created_at), "tenant": tname, "email": r.email,
            "connection_id": r.connection_id, "client_id": r.client_id, "status": r.status,
            "error_code": r.error_code, "why": failure_group(&r.status, r.error_code.as_deref()),
        }));
    }
    let form = json!({
        "id": clean(&q.id).unwrap_or_default(), "tenant": clean(&q.tenant).unwrap_or_default(),
        "email": clean(&q.email).unwrap_or_default(), "connection": clean(&q.connection).unwrap_or_default(),
        "status": clean(&q.status).unwrap_or_default(), "from": clean(&q.from).unwrap_or_default(),
        "until": clean(&q.until).unwrap_or_default(),
    });
    let next_url = next.map(|c| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for k in ["tenant", "email", "connection", "status", "from", "until"] {
            if let Some(v) = form[k].as_str().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        s.append_pair("cursor", &c);
        format!("/console/logins?{}", s.finish())
    });
    Ok(page(
        StatusCode::OK,
        "console_logins.html",
        json!({ "op": op.view(), "form": form, "results": results, "next_url": next_url, "problems": problems,
                "statuses": crate::traces::STATUSES }),
    ))
}

/// GET /console/logins/{id}: one trace — the summary sentence, cause, fix, steps and timings.
pub async fn login_trace(
    op: Operator,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let row = crate::store::traces::get(&st.db, &path).await?.ok_or_else(|| not_found("login trace"))?;
    let v = crate::traces::view(&row);
    let tenant = match &row.tenant_id {
        Some(t) => crate::tenant::get(&st.db, t).await?.map(|t| json!({"slug": t.slug, "name": t.name})),
        None => None,
    };
    let conn = match &row.connection_id {
        Some(c) => crate::store::connections::get(&st.db, c)
            .await?
            .map(|c| json!({"id": c.id, "name": c.name, "type": c.conn_type})),
        None => None,
    };
    let steps: Vec<Value> = v["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let detail = if s["detail"].is_null() { String::new() } else { s["detail"].to_string() };
            json!({"step": s["step"], "at": s["at"], "elapsed_ms": s["elapsed_ms"], "duration_ms": s["duration_ms"], "detail": detail})
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        "console_login.html",
        json!({
            "op": op.view(),
            "trace": {"id": row.id, "status": row.status, "email": row.email, "client_id": row.client_id,
                      "started_at": rfc3339(row.created_at), "updated_at": rfc3339(row.updated_at),
                      "duration_ms": v["duration_ms"], "code": row.error_code, "cause": row.cause, "fix": row.fix},
            "why": failure_group(&row.status, row.error_code.as_deref()),
            "tenant": tenant,
            "connection": conn,
            "steps": steps,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub after: Option<String>,
    pub tenant: Option<String>,
}

/// GET /console/events: the event stream in commit order (50 a page).
pub async fn events(
    op: Operator,
    st: web::Data<AppState>,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let after = q.after.as_deref().and_then(crate::events::decode_cursor);
    let tenant = match clean(&q.tenant) {
        Some(t) => crate::tenant::find(&st.db, &t).await?.map(|t| t.id).or(Some(t)),
        None => None,
    };
    let rows = crate::events::list(&st.db, after, &[], tenant.as_deref(), 50).await?;
    let next = (rows.len() == 50).then(|| rows.last().map(|e| crate::events::encode_cursor(e.tx_id, e.seq))).flatten();
    let list: Vec<Value> = rows
        .iter()
        .map(|e| json!({"id": e.id, "type": e.event_type, "tenant_id": e.tenant_id, "at": rfc3339(e.occurred_at), "data": e.data}))
        .collect();
    let next_url = next.map(|c| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = clean(&q.tenant) {
            s.append_pair("tenant", &t);
        }
        s.append_pair("after", &c);
        format!("/console/events?{}", s.finish())
    });
    Ok(page(
        StatusCode::OK,
        "console_events.html",
        json!({"op": op.view(), "events": list, "next_url": next_url, "tenant": clean(&q.tenant).unwrap_or_default()}),
    ))
}

/// GET /console/webhooks
pub async fn webhooks(op: Operator, st: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    let rows = crate::store::webhooks::page(&st.db, PageRequest { cursor: None, limit: 200 }).await?;
    let list: Vec<Value> = rows
        .rows
        .iter()
        .map(|w| {
            json!({"id": w.id, "url": w.url, "tenant_id": w.tenant_id, "enabled": w.enabled,
                   "event_types": from_json_list(&w.event_types).join(", "), "disabled_reason": w.disabled_reason,
                   "failing_since": opt_rfc3339(w.failing_since)})
        })
        .collect();
    Ok(page(StatusCode::OK, "console_webhooks.html", json!({"op": op.view(), "webhooks": list})))
}

#[derive(Debug, Deserialize)]
pub struct WebhookQuery {
    pub cursor: Option<String>,
    pub notice: Option<String>,
}

/// GET /console/webhooks/{id}: the endpoint's deliveries (newest first) with their attempts
/// and a replay button each.
pub async fn webhook(
    op: Operator,
    st: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<WebhookQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let ep = crate::store::webhooks::get(&st.db, &path).await?.ok_or_else(|| not_found("webhook endpoint"))?;
    let rows = crate::store::deliveries::page_for_target(
        &st.db,
        &ep.id,
        PageRequest { cursor: q.cursor.as_deref(), limit: 50 },
    )
    .await?;
    let ids: Vec<String> = rows.rows.iter().map(|d| d.id.clone()).collect();
    let attempts = crate::store::deliveries::attempts_of(&st.db, &ids).await?;
    let list: Vec<Value> = rows
        .rows
        .iter()
        .map(|d| {
            let a: Vec<Value> = attempts
                .iter()
                .filter(|x| x.delivery_id == d.id)
                .map(|x| json!({"at": rfc3339(x.at), "status": x.status, "latency_ms": x.latency_ms, "error": x.error}))
                .collect();
            json!({"id": d.id, "event_id": d.event_id, "status": d.status, "attempts": d.attempts,
                   "last_status": d.last_status, "last_error": d.last_error, "created_at": rfc3339(d.created_at),
                   "attempt_log": a})
        })
        .collect();
    let next_url = rows.next_cursor.map(|c| {
        format!(
            "/console/webhooks/{}?cursor={}",
            ep.id,
            url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
        )
    });
    Ok(page(
        StatusCode::OK,
        "console_webhook.html",
        json!({
            "op": op.view(),
            "webhook": {"id": ep.id, "url": ep.url, "enabled": ep.enabled, "tenant_id": ep.tenant_id,
                        "event_types": from_json_list(&ep.event_types).join(", "), "disabled_reason": ep.disabled_reason},
            "deliveries": list,
            "next_url": next_url,
            "replayed": q.notice.as_deref() == Some("replayed"),
        }),
    ))
}

/// POST /console/deliveries/{id}/replay (the admin API's replay; back to the endpoint's page).
pub async fn replay_delivery(
    w: Write,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let name = w.op.actor_name();
    let actor = Actor { name: &name, ip: &w.op.ip };
    crate::admin::events::replay(&st, &actor, &path).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            not_found("delivery")
        } else {
            ConsoleError::Page(PageError::internal())
        }
    })?;
    let back = w
        .form
        .get("webhook")
        .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .map(|id| format!("/console/webhooks/{id}?notice=replayed"))
        .unwrap_or_else(|| "/console/webhooks".into());
    Ok(redirect(StatusCode::SEE_OTHER, &back))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub tenant: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub before: Option<i64>,
}

/// GET /console/audit: the audit log, newest first, by tenant, actor and action.
pub async fn audit(
    op: Operator,
    st: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let mut f =
        crate::store::audit::AuditFilter { actor: clean(&q.actor), action: clean(&q.action), ..Default::default() };
    if let Some(t) = clean(&q.tenant) {
        f.tenant_id = Some(crate::tenant::find(&st.db, &t).await?.map(|t| t.id).unwrap_or(t));
    }
    let rows = crate::store::audit::search(&st.db, &f, q.before, 51).await?;
    let more = rows.len() > 50;
    let rows: Vec<_> = rows.into_iter().take(50).collect();
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"at": rfc3339(r.at), "actor": r.actor, "action": r.action, "target": format!("{} {}", r.target_type, r.target_id.as_deref().unwrap_or("")),
                   "tenant_id": r.tenant_id, "ip": r.ip, "details": r.details})
        })
        .collect();
    let form = json!({"tenant": clean(&q.tenant).unwrap_or_default(), "actor": clean(&q.actor).unwrap_or_default(),
                      "action": clean(&q.action).unwrap_or_default()});
    let next_url = if more {
        rows.last().map(|r| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for k in ["tenant", "actor", "action"] {
                if let Some(v) = form[k].as_str().filter(|v| !v.is_empty()) {
                    s.append_pair(k, v);
                }
            }
            s.append_pair("before", &r.seq.to_string());
            format!("/console/audit?{}", s.finish())
        })
    } else {
        None
    };
    Ok(page(
        StatusCode::OK,
        "console_audit.html",
        json!({"op": op.view(), "entries": list, "form": form, "next_url": next_url}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn days_and_groups() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2026-12-06"), Some(1_796_515_200));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("x"), None);
        assert_eq!(failure_group("failed", Some("saml_expired")), "clock_skew");
        assert_eq!(failure_group("abandoned", None), "abandoned");
        assert_eq!(domain_list("a.test, b.test\nc.test"), vec!["a.test", "b.test", "c.test"]);
    }
}
