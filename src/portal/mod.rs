//! The setup portal (`/setup`): the pages a customer's IT admin uses, with no fedgate account,
//! after opening a setup link the vendor sent them (docs/portal.md).
//!
//! - [`links`]: the link's landing page (`GET /setup/{token}`, never redeems) and its
//!   redemption (`POST`), which opens a portal session (`http::ui_session`, kind `Portal`) for the
//!   link's tenant and intents and redirects to `/setup` (the token leaves the URL);
//! - [`PortalSession`]: the extractor every portal page takes: a live portal session, its tenant,
//!   its intents ([`PortalSession::require_intent`]), its CSRF token and the tenant's look;
//! - one module per intent: [`sso`] (SSO wizard, test sign-in, certificates); `scim` and
//!   `domains` plug in the same way (a nav entry per intent is already in the layout);
//! - the layout `templates/portal_base.html` (nav of the intents, a `content` block) and the
//!   static files under `/setup/assets/` (copy buttons, styles): the portal's pages allow
//!   scripts and styles from this origin only (no inline code).
pub mod domains;
pub mod links;
pub mod scim;
pub mod sso;
pub mod steps;

use crate::error_code::ErrorCode;
use crate::events::audit::Actor;
use crate::http::error::PageError;
use crate::http::ui_session::{self, UiSession};
use crate::http::AppState;
use crate::store::entities::connection::ConnectionState;
use crate::store::entities::tenant;
use crate::store::entities::ui_session::UiKind;
use crate::templates::{Branding, Look};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// A portal session may sit idle this long (seconds) before it ends.
pub const IDLE_SECS: i64 = 2 * 3600;
/// A portal session lives at most this long (seconds), and never past its link's expiry.
pub const MAX_TTL_SECS: i64 = 8 * 3600;

/// What a setup link lets its holder set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Single sign-on: a SAML or OIDC connection, tested before it goes live.
    Sso,
    /// SCIM provisioning: a token and the live provisioning check.
    Scim,
    /// Email domains proven by a DNS TXT record.
    Domains,
}

impl Intent {
    /// Every intent, in the portal's order.
    pub const ALL: [Intent; 3] = [Intent::Sso, Intent::Scim, Intent::Domains];

    pub const fn as_str(self) -> &'static str {
        match self {
            Intent::Sso => "sso",
            Intent::Scim => "scim",
            Intent::Domains => "domains",
        }
    }

    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// The intent's page in the portal.
    pub fn href(self) -> String {
        format!("/setup/{}", self.as_str())
    }
}

/// What a portal session may do (the `grants` of its `ui_sessions` row).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grants {
    /// The setup link the session was opened from.
    pub link: String,
    pub intents: Vec<Intent>,
}

/// A live portal session with its tenant: what every portal page runs with.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub session: UiSession,
    pub tenant: tenant::Model,
    pub grants: Grants,
    /// The tenant's branding, in the default language.
    pub look: Look,
    /// The browser's address (for the audit log).
    pub ip: String,
}

impl PortalSession {
    /// The setup link this session was opened from.
    pub fn link_id(&self) -> &str {
        &self.grants.link
    }

    /// Whether the link granted `intent`.
    pub fn has(&self, intent: Intent) -> bool {
        self.grants.intents.contains(&intent)
    }

    /// Refuses (403 page) unless the link granted `intent`.
    pub fn require_intent(&self, intent: Intent) -> Result<(), PageError> {
        if self.has(intent) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::PortalIntentNotGranted,
                "Not part of this setup link",
                "The link you were sent does not cover this part of the setup. Ask the person who sent it for a link that includes it.",
            ))
        }
    }

    /// Checks a form's `csrf` field (every POST of the portal).
    pub fn check_csrf(&self, form: &crate::http::Params) -> Result<(), PageError> {
        self.session.check_csrf(form.get("csrf"))
    }

    /// Who acts, for the audit log: `setup_link:<id>` and the browser's address.
    pub fn actor_name(&self) -> String {
        format!("setup_link:{}", self.grants.link)
    }

    /// The audit entry of an action of this session (`actor_name` held by the caller).
    pub fn actor<'a>(&'a self, name: &'a str) -> Actor<'a> {
        Actor { name, ip: &self.ip }
    }

    /// A portal page: `name` (a template extending `portal_base.html`) with `ctx` and the
    /// layout's values (`portal`: tenant name, nav, csrf token).
    pub fn page(&self, current: Option<Intent>, name: &str, ctx: serde_json::Value) -> HttpResponse {
        self.page_with(HttpResponse::Ok(), current, name, ctx)
    }

    /// [`PortalSession::page`] with another status.
    pub fn page_with(
        &self,
        builder: actix_web::HttpResponseBuilder,
        current: Option<Intent>,
        name: &str,
        ctx: serde_json::Value,
    ) -> HttpResponse {
        let nav: Vec<serde_json::Value> = self
            .grants
            .intents
            .iter()
            .map(|i| {
                serde_json::json!({
                    "id": i.as_str(),
                    "href": i.href(),
                    "current": Some(*i) == current,
                })
            })
            .collect();
        let portal = serde_json::json!({
            "tenant_name": self.tenant.name,
            "nav": nav,
            "csrf": self.session.csrf,
            "home_current": current.is_none(),
        });
        respond(builder, name, with_portal(ctx, portal), &self.look)
    }
}

fn with_portal(ctx: serde_json::Value, portal: serde_json::Value) -> serde_json::Value {
    let mut ctx = match ctx {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    ctx.insert("portal".into(), portal);
    serde_json::Value::Object(ctx)
}

/// The Content-Security-Policy of portal pages: scripts and styles from this origin only (the
/// files under `/setup/assets/`), images from this origin and the tenant's logo origin, forms
/// to this origin only.
pub fn csp(look: &Look) -> String {
    let img = match look.brand.logo_origin() {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Renders a portal template (not cached, the portal's CSP).
pub fn respond(
    mut builder: actix_web::HttpResponseBuilder,
    name: &str,
    ctx: serde_json::Value,
    look: &Look,
) -> HttpResponse {
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    builder.insert_header((header::CONTENT_SECURITY_POLICY, csp(look)));
    // The layout's values for a page without a session (landing, link errors): no nav.
    let ctx = match ctx.get("portal") {
        Some(_) => ctx,
        None => with_portal(
            ctx,
            serde_json::json!({"tenant_name": look.brand.display_name, "nav": [], "csrf": null, "home_current": false}),
        ),
    };
    match crate::templates::render(name, with_accent(ctx, look), look) {
        Ok(body) => builder.content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page cannot be rendered");
            crate::templates::failure()
        }
    }
}

/// The accent colour's stylesheet URL (`/setup/assets/accent.css?c=rrggbb`), if the tenant has
/// an accent: inline styles are not allowed on portal pages.
fn with_accent(mut ctx: serde_json::Value, look: &Look) -> serde_json::Value {
    let accent =
        look.brand.accent.as_deref().map(|c| format!("/setup/assets/accent.css?c={}", c.trim_start_matches('#')));
    if let serde_json::Value::Object(m) = &mut ctx {
        m.insert("accent_css".into(), accent.into());
    }
    ctx
}

/// The tenant's look (branding from its settings; the tenant's name when it has no display name).
pub fn look_of(t: &tenant::Model) -> Look {
    let s = crate::tenant::settings_of(t);
    let b = s.branding.unwrap_or_default();
    Look {
        brand: Branding::tenant(
            Some(b.display_name.as_deref().unwrap_or(&t.name)),
            b.accent.as_deref(),
            b.logo_url.as_deref(),
        ),
        lang: crate::templates::DEFAULT_LANG.to_string(),
    }
}

/// The page shown when there is no live portal session.
fn no_session() -> PageError {
    PageError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::PortalSessionRequired,
        "Your setup session has ended",
        "Open the setup link you were sent again to continue. If it no longer works, ask the person who sent it for a new one.",
    )
}

impl FromRequest for PortalSession {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(PageError::internal)?;
            let session = ui_session::current(&st, &req, UiKind::Portal, IDLE_SECS).await?.ok_or_else(no_session)?;
            let grants: Grants = serde_json::from_str(&session.row.grants).map_err(|_| no_session())?;
            let tenant_id = session.row.tenant_id.clone().ok_or_else(no_session)?;
            let tenant = crate::tenant::get(&st.db, &tenant_id).await?.ok_or_else(no_session)?;
            crate::http::record_tenant(&tenant.id);
            let look = look_of(&tenant);
            Ok(PortalSession { session, tenant, grants, look, ip: crate::http::peer(&req) })
        })
    }
}

/// The portal's routes. Fixed paths first; the link's landing page matches tokens only.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup", web::get().to(home))
        .route("/setup/", web::get().to(home))
        .route("/setup/logout", web::post().to(logout))
        .route("/setup/assets/portal.js", web::get().to(asset_js))
        .route("/setup/assets/portal.css", web::get().to(asset_css))
        .route("/setup/assets/accent.css", web::get().to(asset_accent))
        .configure(sso::routes)
        .configure(scim::routes)
        .configure(domains::routes)
        .configure(links::routes);
}

/// `/setup`: what the link asks for, with the state of each part.
async fn home(st: web::Data<AppState>, ps: PortalSession) -> Result<HttpResponse, PageError> {
    let link = crate::store::setup_links::get(&st.db, ps.link_id()).await?;
    let expires = link.map(|l| crate::util::rfc3339(l.expires_at)).unwrap_or_default();
    // The state of each part (SSO here; the other parts report theirs the same way).
    let sso_status = if ps.has(Intent::Sso) {
        let conns = crate::store::connections::all_of_tenant(&st.db, &ps.tenant.id, 50).await?;
        Some(if conns.iter().any(|c| c.enabled && c.state == ConnectionState::Active) {
            "live"
        } else if conns.is_empty() {
            "todo"
        } else {
            "draft"
        })
    } else {
        None
    };
    let scim_status = if ps.has(Intent::Scim) { Some(scim::status(&st, &ps.tenant.id).await?) } else { None };
    let domains_status = if ps.has(Intent::Domains) { Some(domains::status(&st, &ps.tenant.id).await?) } else { None };
    let items: Vec<serde_json::Value> = ps
        .grants
        .intents
        .iter()
        .map(|i| {
            let status = match i {
                Intent::Sso => sso_status,
                Intent::Scim => scim_status,
                Intent::Domains => domains_status,
            };
            serde_json::json!({"id": i.as_str(), "href": i.href(), "status": status})
        })
        .collect();
    Ok(ps.page(
        None,
        "portal_home.html",
        serde_json::json!({
            "items": items,
            "link_expires_at": expires,
            "session_expires_at": crate::util::rfc3339(ps.session.row.expires_at),
        }),
    ))
}

/// `POST /setup/logout`: ends this browser's portal session.
async fn logout(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = form(&req, &body)?;
    ps.check_csrf(&form)?;
    let cookie = ui_session::end(&st, &ps.session).await?;
    let mut r = respond(HttpResponse::Ok(), "portal_done.html", serde_json::json!({}), &ps.look);
    let _ = r.add_cookie(&cookie);
    Ok(r)
}

/// A portal form (urlencoded).
pub fn form(req: &HttpRequest, body: &[u8]) -> Result<crate::http::Params, PageError> {
    crate::http::form_params(req, body).map_err(|m| {
        PageError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, "This form could not be read", m)
    })
}

const PORTAL_JS: &str = include_str!("../../templates/assets/portal.js");
const PORTAL_CSS: &str = include_str!("../../templates/assets/portal.css");

fn asset(content_type: &'static str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

async fn asset_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", PORTAL_JS.to_string())
}

async fn asset_css() -> HttpResponse {
    asset("text/css; charset=utf-8", PORTAL_CSS.to_string())
}

/// `accent.css?c=rrggbb`: the tenant's accent colour for primary buttons (hex only).
async fn asset_accent(q: web::Query<std::collections::HashMap<String, String>>) -> HttpResponse {
    let c = q.get("c").map(String::as_str).unwrap_or("");
    let ok = (c.len() == 3 || c.len() == 6) && c.bytes().all(|b| b.is_ascii_hexdigit());
    let body = if ok {
        format!(".btn-primary,button:not(.secondary){{background:#{c};border-color:#{c}}}a.accent{{color:#{c}}}\n")
    } else {
        String::new()
    };
    asset("text/css; charset=utf-8", body)
}
