//! `/setup/scim`: SCIM provisioning, guided per vendor (Okta, Entra ID, JumpCloud, OneLogin,
//! generic): the base URL, a token minted by a POST and shown once, the vendor's steps, and the
//! **live provisioning check** — `scim-live.js` polls `/setup/scim/activity?after=<cursor>`,
//! which narrates the tenant's SCIM request log ([`narrate`]) and the milestones reached.
//!
//! Rotation: a token minted here is named "Setup portal (<vendor>)"; minting keeps the two newest
//! of those live (the one being replaced keeps working while the IdP is switched over) and
//! revokes older ones. Tokens the operator created through the admin API are never touched.
pub mod narrate;

use super::{form, Intent, PortalSession};
use crate::http::error::PageError;
use crate::http::AppState;
use crate::keys::{new_token, sha256_hex};
use crate::scim::auth::SCIM_TOKEN_PREFIX;
use crate::store::{audited, scim_activity, scim_tokens};
use crate::util::rfc3339;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use narrate::{Line, Vendor};
use serde::Deserialize;
use serde_json::json;

/// The name prefix of tokens minted by the portal.
pub const TOKEN_NAME_PREFIX: &str = "Setup portal";
/// Portal tokens kept live after a rotation.
pub const LIVE_PORTAL_TOKENS: usize = 2;
/// Lines per activity answer.
const FEED_LIMIT: u64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup/scim", web::get().to(index))
        .route("/setup/scim/token", web::post().to(mint))
        .route("/setup/scim/activity", web::get().to(activity))
        .route("/setup/assets/scim-live.js", web::get().to(live_js));
}

#[derive(Debug, Deserialize)]
struct VendorQuery {
    vendor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActivityQuery {
    vendor: Option<String>,
    after: Option<String>,
}

fn base_url(st: &AppState, slug: &str) -> String {
    format!("{}/scim/v2/{slug}", st.config.issuer.trim_end_matches('/'))
}

/// The feed lines as the templates print them.
fn lines_json(lines: &[Line]) -> serde_json::Value {
    json!(lines
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "time": rfc3339(l.at), "tone": l.tone, "key": l.key, "who": l.who,
                "subject": l.subject, "fix": l.fix, "request": l.request, "status": l.status,
            })
        })
        .collect::<Vec<_>>())
}

fn milestones_json(m: &scim_activity::Milestones) -> serde_json::Value {
    let at = |t: Option<i64>| t.map(rfc3339);
    json!([
        {"id": "first_request", "at": at(m.first_request)},
        {"id": "test_passed", "at": at(m.test_passed)},
        {"id": "first_user", "at": at(m.first_user)},
        {"id": "first_group", "at": at(m.first_group)},
    ])
}

/// The newest lines of the tenant's log (the page's first view), and the cursor after them.
async fn feed(
    st: &AppState,
    tenant_id: &str,
    vendor: Vendor,
    after: Option<&str>,
) -> Result<(Vec<Line>, scim_activity::Milestones), PageError> {
    // Rows wait in memory for up to 250 ms: write them first so the feed is current.
    st.scim_log.flush(&st.db).await?;
    let rows = scim_activity::after(&st.db, tenant_id, after, FEED_LIMIT).await?;
    let lines = rows.iter().map(|r| narrate::narrate(r, vendor)).collect();
    let milestones = scim_activity::milestones(&st.db, tenant_id).await?;
    Ok((lines, milestones))
}

async fn page(
    st: &AppState,
    ps: &PortalSession,
    vendor: Option<Vendor>,
    new_token: Option<String>,
) -> Result<HttpResponse, PageError> {
    let base = base_url(st, &ps.tenant.slug);
    let tokens: Vec<serde_json::Value> = scim_activity::live_tokens(&st.db, &ps.tenant.id)
        .await?
        .into_iter()
        .map(|t| {
            json!({"id": t.id, "name": t.name, "created_at": rfc3339(t.created_at),
                   "last_used_at": t.last_used_at.map(rfc3339)})
        })
        .collect();
    let (lines, milestones) = feed(st, &ps.tenant.id, vendor.unwrap_or(Vendor::Generic), None).await?;
    let cursor = lines.last().map(|l| l.id.clone()).unwrap_or_default();
    let vendors: Vec<serde_json::Value> = Vendor::ALL
        .iter()
        .map(|v| json!({"id": v.as_str(), "name": v.display(), "current": Some(*v) == vendor}))
        .collect();
    Ok(ps.page(
        Some(Intent::Scim),
        "portal_scim.html",
        json!({
            "vendor": vendor.map(Vendor::as_str),
            "vendor_name": vendor.map(Vendor::display),
            "vendors": vendors,
            "base_url": base,
            "entra_url": format!("{base}?aadOptscim062020"),
            "new_token": new_token,
            "tokens": tokens,
            "lines": lines_json(&lines),
            "milestones": milestones_json(&milestones),
            "cursor": cursor,
        }),
    ))
}

/// `GET /setup/scim[?vendor=okta]`.
async fn index(
    st: web::Data<AppState>,
    ps: PortalSession,
    q: web::Query<VendorQuery>,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Scim)?;
    let vendor = q.vendor.as_deref().and_then(Vendor::parse);
    page(&st, &ps, vendor, None).await
}

/// `POST /setup/scim/token`: mints a token and shows it once (in this answer only; no redirect,
/// so it never lands in a URL or the history).
async fn mint(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Scim)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let vendor = f.get("vendor").and_then(Vendor::parse).unwrap_or(Vendor::Generic);
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let token = new_token(SCIM_TOKEN_PREFIX, &*st.rng);
    let id = crate::ids::ScimTokenId::new(now_ms, &*st.rng).to_string();
    let name = format!("{TOKEN_NAME_PREFIX} ({})", vendor.display());
    let tx = audited::begin(&st.db).await?;
    let row = scim_tokens::insert_token(&*tx, &id, &ps.tenant.id, &name, &sha256_hex(&token), now).await?;
    // Keep the newest portal tokens live (this one and the one it replaces), revoke older ones.
    let mut revoked = Vec::new();
    let portal_tokens: Vec<_> = scim_activity::live_tokens(&*tx, &ps.tenant.id)
        .await?
        .into_iter()
        .filter(|t| t.name.starts_with(TOKEN_NAME_PREFIX))
        .collect();
    for old in portal_tokens.iter().skip(LIVE_PORTAL_TOKENS) {
        if scim_tokens::revoke_token(&*tx, &ps.tenant.id, &old.id, now).await? {
            revoked.push(old.id.clone());
        }
    }
    let actor_name = ps.actor_name();
    let entry = ps.actor(&actor_name).entry(
        now,
        "scim_token.create",
        "scim_token",
        Some(&row.id),
        Some(&ps.tenant.id),
        json!({"name": row.name, "via": "setup_portal", "revoked": revoked}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    tracing::info!(tenant = %ps.tenant.id, token = %row.id, "SCIM token created in the setup portal");
    page(&st, &ps, Some(vendor), Some(token)).await
}

/// `GET /setup/scim/activity?after=<cursor>&vendor=<v>`: the narrated requests after the cursor
/// as HTML list items (rendered by the catalogue, escaped), the milestones, and the new cursor.
async fn activity(
    st: web::Data<AppState>,
    ps: PortalSession,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Scim)?;
    let vendor = q.vendor.as_deref().and_then(Vendor::parse).unwrap_or(Vendor::Generic);
    let after = q.after.as_deref().filter(|a| !a.is_empty() && a.len() <= 64);
    let (lines, milestones) = feed(&st, &ps.tenant.id, vendor, after).await?;
    let cursor = lines.last().map(|l| l.id.clone()).or_else(|| after.map(str::to_string)).unwrap_or_default();
    let render = |name: &str, ctx: serde_json::Value| {
        crate::templates::render(name, ctx, &ps.look).map_err(|e| {
            tracing::error!(template = name, error = %e, "page cannot be rendered");
            PageError::internal()
        })
    };
    let html = if lines.is_empty() {
        String::new()
    } else {
        render("portal_scim_lines.html", json!({"lines": lines_json(&lines)}))?
    };
    let milestones_html = render("portal_scim_milestones.html", json!({"milestones": milestones_json(&milestones)}))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"cursor": cursor, "count": lines.len(), "html": html, "milestones_html": milestones_html})))
}

const LIVE_JS: &str = include_str!("../../templates/assets/scim-live.js");

async fn live_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(LIVE_JS)
}

/// The SCIM part's state on the portal's overview: `todo` (no token yet), `draft` (a token, no
/// successful request yet), `live` (the IdP's requests succeed).
pub async fn status(st: &AppState, tenant_id: &str) -> Result<&'static str, PageError> {
    if scim_activity::live_tokens(&st.db, tenant_id).await?.is_empty() {
        return Ok("todo");
    }
    st.scim_log.flush(&st.db).await?;
    let m = scim_activity::milestones(&st.db, tenant_id).await?;
    Ok(if m.test_passed.is_some() { "live" } else { "draft" })
}
