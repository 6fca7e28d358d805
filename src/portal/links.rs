//! Opening a setup link: `GET /setup/{token}` shows what the link is for and a "Start setup"
//! button, and never redeems (mail scanners and link previews fetch links); `POST` redeems it:
//! a portal session for the link's tenant and intents (at most [`super::MAX_TTL_SECS`], never
//! past the link's expiry), the redemption counted and audited, and a 303 to `/setup` so the
//! token leaves the address bar. Unknown, expired and revoked links get a page saying so and
//! whom to ask.
use super::{respond, Grants, Intent, IDLE_SECS, MAX_TTL_SECS};
use crate::error_code::ErrorCode;
use crate::events::audit::Actor;
use crate::http::error::PageError;
use crate::http::ui_session::{self, Lifetime};
use crate::http::{redirect, AppState};
use crate::keys::sha256_hex;
use crate::store::entities::setup_link;
use crate::store::entities::ui_session::UiKind;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

/// The token prefix of setup links.
pub const TOKEN_PREFIX: &str = "fgs_";

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Tokens only (`fgs_` + 43 base64url characters): `/setup/sso` and the other fixed pages
    // never reach these handlers, whatever the order of registration.
    cfg.route("/setup/{token:fgs_[A-Za-z0-9_-]{43}}", web::get().to(landing))
        .route("/setup/{token:fgs_[A-Za-z0-9_-]{43}}", web::post().to(redeem));
}

/// The intents stored on a link (`sso,scim`).
pub fn intents_of(link: &setup_link::Model) -> Vec<Intent> {
    link.intents.split(',').filter_map(Intent::parse).collect()
}

/// Why a link cannot be used.
enum Dead {
    Unknown,
    Expired,
    Revoked,
}

fn dead_page(st: &AppState, why: Dead, look: &crate::templates::Look) -> HttpResponse {
    let (status, code, reason) = match why {
        Dead::Unknown => (StatusCode::NOT_FOUND, ErrorCode::SetupLinkUnknown, "unknown"),
        Dead::Expired => (StatusCode::GONE, ErrorCode::SetupLinkExpired, "expired"),
        Dead::Revoked => (StatusCode::GONE, ErrorCode::SetupLinkRevoked, "revoked"),
    };
    let _ = st;
    respond(
        HttpResponse::build(status),
        "portal_link_dead.html",
        serde_json::json!({"reason": reason, "code": code, "request_id": crate::http::current_request_id()}),
        look,
    )
}

/// The live link for `token`, or the page saying why it is not usable.
async fn live_link(
    st: &AppState,
    token: &str,
) -> Result<Result<(setup_link::Model, crate::store::entities::tenant::Model), HttpResponse>, PageError> {
    let default_look = crate::templates::Look::default();
    let Some(link) = crate::store::setup_links::find_by_hash(&st.db, &sha256_hex(token)).await? else {
        return Ok(Err(dead_page(st, Dead::Unknown, &default_look)));
    };
    let Some(tenant) = crate::tenant::get(&st.db, &link.tenant_id).await? else {
        return Ok(Err(dead_page(st, Dead::Unknown, &default_look)));
    };
    let look = super::look_of(&tenant);
    if link.revoked_at.is_some() {
        return Ok(Err(dead_page(st, Dead::Revoked, &look)));
    }
    if link.expires_at <= st.clock.now() {
        return Ok(Err(dead_page(st, Dead::Expired, &look)));
    }
    Ok(Ok((link, tenant)))
}

/// `GET /setup/{token}`: the landing page. Never redeems.
async fn landing(st: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let (link, tenant) = match live_link(&st, &path).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let look = super::look_of(&tenant);
    let intents: Vec<&str> = intents_of(&link).into_iter().map(Intent::as_str).collect();
    Ok(respond(
        HttpResponse::Ok(),
        "portal_landing.html",
        serde_json::json!({
            "tenant_name": tenant.name,
            "intents": intents,
            "expires_at": crate::util::rfc3339(link.expires_at),
            "action": format!("/setup/{}", path.as_str()),
        }),
        &look,
    ))
}

/// Whether a POST comes from this site. `Sec-Fetch-Site`, when the browser sends it, decides
/// (`same-origin`): under the pages' `Referrer-Policy: no-referrer`, browsers send `Origin: null`
/// on form posts, so `Origin` cannot. Otherwise `Origin`, when sent, is the issuer's.
fn same_origin(st: &AppState, req: &HttpRequest) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let ours = url::Url::parse(&st.config.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    origin == ours
}

/// `POST /setup/{token}`: redeems the link (a portal session) and leaves the token's URL.
async fn redeem(st: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    if !same_origin(&st, &req) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfTokenInvalid,
            "This form has expired",
            "The setup could not be started from this page. Open the link you were sent again.",
        ));
    }
    let (link, tenant) = match live_link(&st, &path).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let now = st.clock.now();
    let grants = Grants { link: link.id.clone(), intents: intents_of(&link) };
    let life = Lifetime { ttl: MAX_TTL_SECS.min(link.expires_at - now).max(1), idle: IDLE_SECS };
    let grants_json = serde_json::to_value(&grants).map_err(|_| PageError::internal())?;
    let (_, cookie) = ui_session::open(&st, UiKind::Portal, &link.id, Some(&tenant.id), grants_json, life).await?;
    let ua: String =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(200).collect();
    let ip = crate::http::peer(&req);
    let who = format!("setup_link:{}", link.id);
    let tx = crate::store::audited::begin(&st.db).await?;
    crate::store::setup_links::record_use(&*tx, &link.id, now).await?;
    let entry = Actor { name: &who, ip: &ip }.entry(
        now,
        "setup_link.redeem",
        "setup_link",
        Some(&link.id),
        Some(&tenant.id),
        serde_json::json!({"user_agent": ua, "session_expires_at": crate::util::rfc3339(now + life.ttl)}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    tracing::info!(tenant = %tenant.id, link = %link.id, "setup link redeemed");
    let mut r = redirect(StatusCode::SEE_OTHER, &format!("{}/setup", st.config.issuer));
    let _ = r.add_cookie(&cookie);
    Ok(r)
}
