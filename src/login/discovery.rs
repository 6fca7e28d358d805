//! Home-realm discovery: which tenant and connection a login goes to — the connection or
//! organization the app named, else the domain of `login_hint` (or `domain_hint`), else the
//! work-email page; a chooser when the tenant has several connections. An unknown domain gets
//! the same words whatever the domain, so the pages reveal nothing about which tenants exist.
//!
//! An app may name a default tenant for self-serve sign-ups (`clients.default_tenant_id`): an
//! address at a domain no tenant has goes to that tenant's social connections, and the email page
//! offers them as "Continue with ..." buttons. A tenant's verified domain always wins: self-serve
//! never captures an enterprise domain.
use super::pending::{error_url, load_for_browser};
use super::start::{start_connection, start_connection_in, Row};
use crate::claims::email_domain;
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{form_params, redirect, AppState};
use crate::ids::TenantId;
use crate::store::entities::{connection, login, tenant};
use crate::upstream::connections::Social;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Routes a new login, not yet written ([`Row::New`]): connection, else organization, else the
/// login_hint's (or domain_hint's) domain, else the work-email page. The login is written once,
/// routed to its connection or as it is for the pages that follow.
pub async fn route(
    st: &AppState,
    login: &login::Model,
    conn: Option<connection::Model>,
    org: Option<(tenant::Model, Vec<connection::Model>)>,
    domain_hint: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let row = Row::New;
    if let Some(c) = conn {
        return start_connection_in(st, login, row, &c, None, StatusCode::FOUND).await;
    }
    let mut unknown_domain = false;
    // The organization's enabled connections come with it; a tenant found by domain has none yet.
    let (tenant, conns) = match org {
        Some((t, conns)) => (Some(t), Some(conns)),
        None => {
            let domain = login
                .login_hint
                .as_deref()
                .and_then(email_domain)
                .or_else(|| domain_hint.map(|d| d.to_ascii_lowercase()));
            match domain {
                Some(d) => {
                    let t = crate::tenant::by_domain(&st.db, &d).await?;
                    unknown_domain = t.is_none();
                    (t, None)
                }
                None => (None, None),
            }
        }
    };
    match tenant {
        Some(t) => to_tenant(st, login, row, &t, conns, StatusCode::FOUND).await,
        None => {
            // An address at a domain no tenant has: the app's self-serve tenant, if it names one.
            if unknown_domain {
                if let Some(d) = default_tenant(st, login).await? {
                    return to_self_serve(st, login, row, &d, StatusCode::FOUND).await;
                }
            }
            row.save(st, login).await?;
            Ok(redirect(StatusCode::FOUND, &format!("{}/login/{}", st.config.issuer, login.id)))
        }
    }
}

/// The app's default tenant for self-serve sign-ups, when it names one that still exists.
async fn default_tenant(st: &AppState, login: &login::Model) -> Result<Option<tenant::Model>, PageError> {
    let Some(client) = crate::store::clients::get(&st.db, &login.client_id).await? else {
        return Ok(None);
    };
    match client.default_tenant_id {
        Some(t) => Ok(crate::tenant::get(&st.db, &t).await?),
        None => Ok(None),
    }
}

/// A tenant's enabled social connections (Google, Microsoft, Apple, GitHub), in id order.
async fn social_of(st: &AppState, tenant_id: &str) -> Result<Vec<(connection::Model, Social)>, PageError> {
    let conns = crate::store::connections::enabled_of_tenant(&st.db, tenant_id).await?;
    Ok(conns.into_iter().filter_map(|c| Social::of(&c).map(|s| (c, s))).collect())
}

/// Sends a login with no enterprise tenant to the app's self-serve tenant: its only social
/// connection directly, a chooser of its social connections for several.
async fn to_self_serve(
    st: &AppState,
    login: &login::Model,
    row: Row,
    t: &tenant::Model,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let social = social_of(st, &t.id).await?;
    let login = with_tenant(st, login, row, t).await?;
    match social.as_slice() {
        [(one, _)] => start_connection_in(st, &login, row, one, Some(t), status).await,
        others => {
            row.save(st, &login).await?;
            match others {
                [] => Err(no_connection(st, &login, t)),
                _ => Ok(redirect(status, &format!("{}/login/{}", st.config.issuer, login.id))),
            }
        }
    }
}

/// The login with the tenant discovery found (written at once for a stored login; a new one is
/// written with it).
async fn with_tenant(
    st: &AppState,
    login: &login::Model,
    row: Row,
    t: &tenant::Model,
) -> Result<login::Model, PageError> {
    let mut login = login.clone();
    if login.tenant_id.as_ref().map(TenantId::as_str) != Some(t.id.as_str()) {
        let tid = TenantId::from_db(t.id.clone());
        if row == Row::Stored {
            crate::store::logins::set_discovered(&st.db, &login.id, None, Some(&tid)).await?;
        }
        login.tenant_id = Some(tid);
    }
    Ok(login)
}

fn no_connection(st: &AppState, login: &login::Model, t: &tenant::Model) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::NoConnection,
        "Single sign-on is not set up",
        format!("{} has no sign-in method configured yet. Contact your administrator.", t.name),
    )
    .with_back(error_url(st, login, "access_denied", "the organization has no enabled connection"))
}

/// Sends a login to its tenant: the only connection directly, a chooser for several. `conns`:
/// the tenant's enabled connections when the caller read them with it (`None` reads them).
async fn to_tenant(
    st: &AppState,
    login: &login::Model,
    row: Row,
    t: &tenant::Model,
    conns: Option<Vec<connection::Model>>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let conns = match conns {
        Some(c) => c,
        None => crate::store::connections::enabled_of_tenant(&st.db, &t.id).await?,
    };
    let login = with_tenant(st, login, row, t).await?;
    match conns.as_slice() {
        [one] => start_connection_in(st, &login, row, one, Some(t), status).await,
        others => {
            row.save(st, &login).await?;
            match others {
                [] => Err(no_connection(st, &login, t)),
                _ => Ok(redirect(status, &format!("{}/login/{}", st.config.issuer, login.id))),
            }
        }
    }
}

fn html(name: &str, ctx: serde_json::Value) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    builder.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    crate::templates::respond(builder, name, ctx)
}

/// A connection as the pages show it: social ones as "Continue with {provider}".
fn choice(c: &connection::Model) -> serde_json::Value {
    let social = Social::of(c);
    serde_json::json!({ "id": c.id, "name": c.name, "social": social.map(Social::key),
                        "provider": social.map(Social::label) })
}

/// The work-email page, with a "Continue with ..." button per social connection of the app's
/// self-serve tenant.
fn email_form(
    login_id: &str,
    message: Option<&str>,
    value: &str,
    social: &[(connection::Model, Social)],
) -> HttpResponse {
    let social: Vec<_> = social.iter().map(|(c, _)| choice(c)).collect();
    html(
        "login_email.html",
        serde_json::json!({ "login_id": login_id, "message": message, "value": value, "social": social }),
    )
}

/// The social connections the email page offers: those of the app's self-serve tenant.
async fn email_page_social(st: &AppState, login: &login::Model) -> Result<Vec<(connection::Model, Social)>, PageError> {
    match default_tenant(st, login).await? {
        Some(t) => social_of(st, &t.id).await,
        None => Ok(Vec::new()),
    }
}

/// The connection chooser of a tenant with several connections.
fn chooser(login_id: &str, tenant: &tenant::Model, conns: &[connection::Model]) -> HttpResponse {
    let connections: Vec<_> = conns.iter().map(choice).collect();
    html(
        "login_chooser.html",
        serde_json::json!({ "login_id": login_id, "tenant_name": tenant.name, "connections": connections }),
    )
}

const UNKNOWN_DOMAIN: &str =
    "We couldn't find single sign-on for that email address. Check it, or ask your administrator.";

/// Records a step of the work-email page on the login's trace (created `pending` on the first
/// step, within the client's trace budget: these logins are not vouched for by anyone yet). A
/// login that stops here becomes an `abandoned` trace when it expires, so "it didn't work" has
/// something to find.
async fn email_page_trace(st: &AppState, login: &login::Model, step: &str, detail: serde_json::Value) {
    let now_ms = st.clock.now_ms();
    let exists = match crate::store::traces::get(&st.db, login.id.as_str()).await {
        Ok(t) => t.is_some(),
        Err(e) => {
            crate::util::log_internal("reading the login trace", &e);
            return;
        }
    };
    if !exists && !st.trace_budget.take(now_ms, &login.client_id) {
        return;
    }
    let steps = vec![crate::traces::Step { step: step.to_string(), at_ms: now_ms, duration_ms: 0, detail }];
    crate::traces::record_best_effort(&st.db, now_ms, login, None, steps, crate::traces::Outcome::Pending).await;
}

/// GET /login/{login}: the work-email page, or the chooser once the tenant is known.
pub async fn login_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = load_for_browser(&st, &req, &path).await?;
    if let Some(tid) = &login.tenant_id {
        if let Some(t) = crate::tenant::get(&st.db, tid.as_str()).await? {
            let mut conns = crate::store::connections::enabled_of_tenant(&st.db, &t.id).await?;
            // The app's self-serve tenant offers its social connections only.
            if default_tenant(&st, &login).await?.is_some_and(|d| d.id == t.id) {
                conns.retain(|c| Social::of(c).is_some());
            }
            return Ok(chooser(login.id.as_str(), &t, &conns));
        }
    }
    // A login_hint whose domain no tenant has: say so (the same words for every unknown domain,
    // so the page reveals nothing about which tenants exist).
    let unknown = match login.login_hint.as_deref().and_then(email_domain) {
        Some(d) => crate::tenant::by_domain(&st.db, &d).await?.is_none(),
        None => false,
    };
    let message = unknown.then_some(UNKNOWN_DOMAIN);
    let social = email_page_social(&st, &login).await?;
    let detail = serde_json::json!({ "unknown_hint_domain": unknown, "social_offered": social.len() });
    email_page_trace(&st, &login, "email_page_shown", detail).await;
    Ok(email_form(login.id.as_str(), message, login.login_hint.as_deref().unwrap_or(""), &social))
}

/// POST /login/{login}: route by the email's domain.
pub async fn login_submit(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = load_for_browser(&st, &req, &path).await?;
    let params = form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?;
    let email = params.get("email").unwrap_or("").trim().to_string();
    let Some(domain) = email_domain(&email) else {
        let social = email_page_social(&st, &login).await?;
        return Ok(email_form(login.id.as_str(), Some("Enter a valid email address."), &email, &social));
    };
    // A tenant's verified domain goes to that tenant, whatever the app's self-serve tenant.
    let Some(t) = crate::tenant::by_domain(&st.db, &domain).await? else {
        let mut traced = login.clone();
        traced.login_hint = Some(email.clone());
        let self_serve = default_tenant(&st, &login).await?;
        let detail =
            serde_json::json!({ "email_domain": domain, "tenant_found": false, "self_serve": self_serve.is_some() });
        email_page_trace(&st, &traced, "email_submitted", detail).await;
        if let Some(d) = self_serve {
            // The email is written with the routing (or before any other answer).
            return to_self_serve(&st, &traced, Row::Discovered, &d, StatusCode::SEE_OTHER).await;
        }
        // Same answer for every unknown domain: no hint about which tenants exist.
        return Ok(email_form(login.id.as_str(), Some(UNKNOWN_DOMAIN), &email, &[]));
    };
    // The email and the tenant are written with the routing (or before any other answer).
    let mut login = login;
    login.login_hint = Some(email);
    to_tenant(&st, &login, Row::Discovered, &t, None, StatusCode::SEE_OTHER).await
}

/// POST /login/{login}/connection: the chooser's answer, or a "Continue with ..." button of the
/// email page (a social connection of the app's self-serve tenant).
pub async fn choose_connection(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = load_for_browser(&st, &req, &path).await?;
    let params = form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?;
    let cid = params.get("connection").unwrap_or("");
    let self_serve = match &login.tenant_id {
        Some(_) => None,
        None => default_tenant(&st, &login).await?,
    };
    let conn = crate::store::connections::get(&st.db, cid)
        .await?
        .filter(|c| match (&login.tenant_id, &self_serve) {
            (Some(t), _) => t.as_str() == c.tenant_id,
            (None, Some(d)) => d.id == c.tenant_id && Social::of(c).is_some(),
            (None, None) => false,
        })
        .ok_or_else(|| {
            PageError::bad_request(
                ErrorCode::ConnectionNotAllowed,
                "That sign-in method is not available for your organization.",
            )
        })?;
    start_connection(&st, &login, &conn, StatusCode::SEE_OTHER).await
}
