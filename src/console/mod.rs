//! The operator console (`/console`): the SaaS vendor's support and engineering staff manage
//! tenants, SCIM tokens, webhooks, and answer "why can't they log in?" from the login traces.
//!
//! **Operators sign in through fedgate itself.** The console is a relying party of fedgate's own
//! issuer: an internal confidential client ([`CONSOLE_CLIENT_ID`]) with PKCE, `state` and
//! `nonce`, whose logins go to the operators' tenant ([`OPERATORS_SLUG`]) and its connection —
//! the same login path, pages, traces and policies every customer's people use. The code is
//! redeemed **in-process** ([`crate::issuer::token::exchange_code`], the very function behind
//! `/oauth2/token`): the same single-use, client, redirect_uri, expiry and PKCE checks, without
//! the server calling itself over the network (no loopback reachability, TLS-to-self or client
//! secret in transit to configure, nothing that breaks behind a proxy), and without a signed ID
//! token to verify against our own keys. Who signed in is then read from the grant's subject:
//! the operator is the *verified* email (an address the connection vouched for, in a domain of
//! the operators' tenant) of a user of the operators' tenant, listed in `operators`.
//!
//! The session is a `ui_session` of kind Console (`__Host-` cookie with https, HttpOnly,
//! SameSite=Strict); every form carries its CSRF token; pages are served with a CSP without
//! `unsafe-inline` (the stylesheet is a file, `/console/assets/console.css`) and
//! `frame-ancestors 'none'`. Every write goes through [`Write`], the one extractor that checks
//! the CSRF token and refuses read-only operators (403) — no handler checks roles itself. Writes
//! call the admin API's own functions, audited as `operator:<email>`.
pub mod pages;

use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{cookie, form_params, redirect, AppState, Params};
use crate::keys::{constant_time_eq, new_token, sha256_b64url, sha256_hex};
use crate::store::entities::operator::{self, OperatorRole};
use crate::store::entities::ui_session::UiKind;
use crate::util::to_json_list;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use std::future::Future;
use std::pin::Pin;

/// The operators' tenant: its users sign in to the console (when listed in `operators`).
pub const OPERATORS_SLUG: &str = "fedgate-operators";
/// The console's OAuth client at fedgate's own issuer.
pub const CONSOLE_CLIENT_ID: &str = "fedgate-console";
/// The sign-in cookie (state, nonce and PKCE verifier are derived from it): Lax, because the
/// browser comes back to the callback from the identity provider.
const LOGIN_COOKIE: &str = "fedgate_console_login";
/// How long a console session lives, and may sit idle (seconds).
pub const SESSION: crate::http::ui_session::Lifetime = crate::http::ui_session::Lifetime { ttl: 12 * 3600, idle: 3600 };
/// The console pages' Content-Security-Policy: no inline anything.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The console's stylesheet.
const CSS: &str = include_str!("../../templates/console_assets/console.css");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/assets/console.css", web::get().to(css))
        .route("/console/login", web::get().to(login))
        .route("/console/callback", web::get().to(callback))
        .route("/console/logout", web::post().to(logout))
        .route("/console", web::get().to(pages::tenants))
        .route("/console/tenants", web::post().to(pages::create_tenant))
        .route("/console/tenants/{tenant}", web::get().to(pages::tenant))
        .route("/console/tenants/{tenant}", web::post().to(pages::update_tenant))
        .route("/console/tenants/{tenant}/scim-tokens", web::post().to(pages::create_scim_token))
        .route("/console/tenants/{tenant}/setup-links", web::post().to(pages::create_setup_link))
        .route("/console/tenants/{tenant}/setup-links/{id}/revoke", web::post().to(pages::revoke_setup_link))
        .route("/console/tenants/{tenant}/scim-tokens/{id}/revoke", web::post().to(pages::revoke_scim_token))
        .route("/console/logins", web::get().to(pages::logins))
        .route("/console/logins/{id}", web::get().to(pages::login_trace))
        .route("/console/events", web::get().to(pages::events))
        .route("/console/webhooks", web::get().to(pages::webhooks))
        .route("/console/webhooks/{id}", web::get().to(pages::webhook))
        .route("/console/deliveries/{id}/replay", web::post().to(pages::replay_delivery))
        .route("/console/audit", web::get().to(pages::audit));
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

/// A console page: the template in the default look, never cached, with the console's CSP.
pub fn page(status: StatusCode, name: &str, ctx: serde_json::Value) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::CONTENT_SECURITY_POLICY, CSP));
    crate::templates::respond(b, name, ctx)
}

/// Why a console request is not answered with its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No console session: sign in first (GET), or 401 for a form.
    SignIn,
    /// A page explaining a refusal (not an operator, read-only, ...): `console_notice.html`.
    Notice { status: StatusCode, kind: &'static str, code: ErrorCode },
    /// Any other page error (bad CSRF token, not found, internal).
    Page(PageError),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::SignIn => f.write_str("sign-in required"),
            ConsoleError::Notice { kind, .. } => write!(f, "console refusal: {kind}"),
            ConsoleError::Page(p) => p.fmt(f),
        }
    }
}

impl From<PageError> for ConsoleError {
    fn from(e: PageError) -> Self {
        ConsoleError::Page(e)
    }
}

impl From<crate::store::conn::DbErr> for ConsoleError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        ConsoleError::Page(e.into())
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Notice { status, .. } => *status,
            ConsoleError::Page(p) => p.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn => redirect(StatusCode::SEE_OTHER, "/console/login"),
            ConsoleError::Notice { status, kind, code } => notice(*status, kind, Some(*code), None),
            ConsoleError::Page(p) => p.error_response(),
        }
    }
}

/// The notice page (`kind` picks the text).
fn notice(status: StatusCode, kind: &str, code: Option<ErrorCode>, next: Option<&str>) -> HttpResponse {
    page(
        status,
        "console_notice.html",
        serde_json::json!({ "op": null, "kind": kind, "code": code.map(ErrorCode::as_str), "next": next, "request_id": crate::http::current_request_id() }),
    )
}

fn read_only() -> ConsoleError {
    ConsoleError::Notice { status: StatusCode::FORBIDDEN, kind: "read_only", code: ErrorCode::OperatorReadOnly }
}

/// A signed-in operator (any role): the console's read pages take this.
#[derive(Debug, Clone)]
pub struct Operator {
    pub email: String,
    pub role: OperatorRole,
    pub session: crate::http::ui_session::UiSession,
    pub ip: String,
}

impl Operator {
    /// Who did it, for the audit log: `operator:<email>`.
    pub fn actor_name(&self) -> String {
        format!("operator:{}", self.email)
    }

    /// What every page's header shows (and the sign-out form's token).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({ "email": self.email, "role": self.role.as_str(), "can_write": self.role == OperatorRole::Full, "csrf": self.session.csrf })
    }
}

async fn load_operator(st: &AppState, req: &HttpRequest) -> Result<Operator, ConsoleError> {
    let Some(session) = crate::http::ui_session::current(st, req, UiKind::Console, SESSION.idle).await? else {
        return Err(ConsoleError::SignIn);
    };
    let email = session.grants().get("email").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    // The role is read on every request: a demoted or removed operator loses access at once.
    let Some(op) = crate::store::operators::by_email(&st.db, &email).await? else {
        return Err(ConsoleError::SignIn);
    };
    Ok(Operator { email: op.email, role: op.role, session, ip: crate::http::peer(req) })
}

impl FromRequest for Operator {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = req.app_data::<web::Data<AppState>>().cloned().ok_or(ConsoleError::Page(PageError::internal()))?;
            load_operator(&st, &req).await
        })
    }
}

/// A write: a signed-in **full** operator whose form carries the session's CSRF token. The one
/// place writes are allowed or refused (read-only operators get a 403 page, whatever they post).
#[derive(Debug)]
pub struct Write {
    pub op: Operator,
    pub form: Params,
}

/// Largest console form (bytes).
const FORM_LIMIT: usize = 64 * 1024;

impl FromRequest for Write {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let st = req.app_data::<web::Data<AppState>>().cloned().ok_or(ConsoleError::Page(PageError::internal()))?;
            let op = match load_operator(&st, &req).await {
                Err(ConsoleError::SignIn) => {
                    return Err(ConsoleError::Notice {
                        status: StatusCode::UNAUTHORIZED,
                        kind: "session_ended",
                        code: ErrorCode::Unauthorized,
                    })
                }
                other => other?,
            };
            if op.role != OperatorRole::Full {
                tracing::warn!(operator = %op.email, path = %req.path(), "read-only operator tried to write");
                return Err(read_only());
            }
            let body = body.await.map_err(|_| {
                ConsoleError::Page(PageError::bad_request(ErrorCode::InvalidRequest, "The form could not be read."))
            })?;
            if body.len() > FORM_LIMIT {
                return Err(ConsoleError::Page(PageError::bad_request(
                    ErrorCode::PayloadTooLarge,
                    "The form is too large.",
                )));
            }
            let form = form_params(&req, &body)
                .map_err(|m| ConsoleError::Page(PageError::bad_request(ErrorCode::InvalidRequest, m)))?;
            op.session.check_csrf(form.get("csrf"))?;
            Ok(Write { op, form })
        })
    }
}

/// The values of one console sign-in, derived from the sign-in cookie's random value: nothing
/// is stored, and nothing can be guessed without the cookie.
struct SignIn {
    state: String,
    nonce: String,
    verifier: String,
}

fn sign_in_values(secret: &str) -> SignIn {
    SignIn {
        state: sha256_b64url(format!("state:{secret}").as_bytes()),
        nonce: sha256_b64url(format!("nonce:{secret}").as_bytes()),
        // 43 characters of base64url: a valid RFC 7636 verifier.
        verifier: sha256_b64url(format!("pkce:{secret}").as_bytes()),
    }
}

fn callback_url(st: &AppState) -> String {
    format!("{}/console/callback", st.config.issuer.trim_end_matches('/'))
}

fn not_set_up() -> ConsoleError {
    ConsoleError::Notice {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "not_set_up",
        code: ErrorCode::ConsoleNotSetUp,
    }
}

/// The console's client, its redirect URI kept in step with the issuer (which may change
/// between runs).
async fn console_client(st: &AppState) -> Result<crate::store::entities::client::Model, ConsoleError> {
    let Some(mut c) = crate::store::clients::get(&st.db, CONSOLE_CLIENT_ID).await? else { return Err(not_set_up()) };
    let want = to_json_list(&[callback_url(st)]);
    if c.redirect_uris != want {
        c.redirect_uris = want;
        c.updated_at = st.clock.now();
        c = crate::store::clients::replace(&st.db, c).await?;
    }
    Ok(c)
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    /// Passed on as `login_hint`.
    pub email: Option<String>,
}

/// GET /console/login: starts an authorization request to fedgate's own issuer for the
/// operators' tenant.
async fn login(st: web::Data<AppState>, q: web::Query<LoginQuery>) -> Result<HttpResponse, ConsoleError> {
    console_client(&st).await?;
    if crate::tenant::find(&st.db, OPERATORS_SLUG).await?.is_none() {
        return Err(not_set_up());
    }
    let secret = new_token("fgcl_", &*st.rng);
    let v = sign_in_values(&secret);
    let mut u = url::Url::parse(&format!("{}/oauth2/authorize", st.config.issuer.trim_end_matches('/')))
        .map_err(|_| PageError::internal())?;
    {
        let mut qp = u.query_pairs_mut();
        qp.append_pair("response_type", "code")
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("redirect_uri", &callback_url(&st))
            .append_pair("scope", "openid email profile")
            .append_pair("state", &v.state)
            .append_pair("nonce", &v.nonce)
            .append_pair("code_challenge", &sha256_b64url(v.verifier.as_bytes()))
            .append_pair("code_challenge_method", "S256")
            .append_pair("organization", OPERATORS_SLUG);
        if let Some(e) = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty() && e.len() <= 320) {
            qp.append_pair("login_hint", e);
        }
    }
    let c = crate::http::build_cookie(LOGIN_COOKIE, secret, st.config.secure_cookies(), 600);
    let mut resp = redirect(StatusCode::SEE_OTHER, u.as_str());
    resp.add_cookie(&c).map_err(|_| PageError::internal())?;
    Ok(resp)
}

#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

fn refused(kind: &'static str, code: ErrorCode) -> ConsoleError {
    ConsoleError::Notice { status: StatusCode::FORBIDDEN, kind, code }
}

/// GET /console/callback: the issuer's answer. Checks state (against the sign-in cookie) and
/// `iss`, redeems the code in-process with the PKCE verifier, checks the nonce, and opens the
/// console session of the operator the verified email names.
async fn callback(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let secure = st.config.secure_cookies();
    let Some(secret) = cookie(&req, LOGIN_COOKIE, secure) else {
        return Err(refused("sign_in_again", ErrorCode::StateMismatch));
    };
    let v = sign_in_values(&secret);
    if !q.state.as_deref().is_some_and(|s| constant_time_eq(s, &v.state)) {
        return Err(refused("sign_in_again", ErrorCode::StateMismatch));
    }
    if q.iss.as_deref() != Some(st.config.issuer.as_str()) {
        return Err(refused("sign_in_again", ErrorCode::IssParameterMismatch));
    }
    if q.error.is_some() {
        return Err(refused("sign_in_failed", ErrorCode::UpstreamDenied));
    }
    let code = q.code.as_deref().ok_or_else(|| refused("sign_in_again", ErrorCode::InvalidGrant))?;
    let client = console_client(&st).await?;
    let x = crate::issuer::token::exchange_code(&st, &client, code, &callback_url(&st), Some(&v.verifier))
        .await
        .map_err(|e| {
            tracing::warn!(error = ?e, "console sign-in: the code was refused");
            refused("sign_in_again", ErrorCode::InvalidGrant)
        })?;
    if !x.nonce.as_deref().is_some_and(|n| constant_time_eq(n, &v.nonce)) {
        return Err(refused("sign_in_again", ErrorCode::IdTokenNonceMismatch));
    }
    let op = operator_of(&x.subject, &st).await?;
    let Some(op) = op else {
        tracing::warn!(user = %x.subject.user.id, tenant = %x.subject.tenant.id, "console sign-in refused: not an operator");
        return Err(refused("not_operator", ErrorCode::OperatorRequired));
    };
    let (session, c) = crate::http::ui_session::open(
        &st,
        UiKind::Console,
        &x.subject.user.id,
        Some(&x.subject.tenant.id),
        serde_json::json!({ "email": op.email }),
        SESSION,
    )
    .await?;
    let now = st.clock.now();
    let actor = crate::events::audit::Actor { name: &format!("operator:{}", op.email), ip: &crate::http::peer(&req) };
    let entry = actor.entry(
        now,
        "console.sign_in",
        "ui_session",
        Some(&session.row.id),
        None,
        serde_json::json!({"role": op.role.as_str()}),
    );
    if let Err(e) = crate::store::audit::insert(&st.db, entry).await {
        crate::util::log_internal("auditing a console sign-in", &e);
    }
    tracing::info!(operator = %op.email, role = op.role.as_str(), "console sign-in");
    // The session cookie is SameSite=Strict and this answer ends a redirect chain that may have
    // started at the IdP (cross-site): a redirect to /console would arrive without the cookie.
    // A page that continues from our own origin does not.
    let mut resp = notice(StatusCode::OK, "signed_in", None, Some("/console"));
    resp.add_cookie(&c).map_err(|_| PageError::internal())?;
    resp.add_cookie(&crate::http::build_cookie(LOGIN_COOKIE, String::new(), secure, 0))
        .map_err(|_| PageError::internal())?;
    Ok(resp)
}

/// The operator a signed-in subject is: a user of the operators' tenant whose verified email is
/// listed in `operators`. A user of any other tenant is never one.
async fn operator_of(
    s: &crate::issuer::tokens::Subject,
    st: &AppState,
) -> Result<Option<operator::Model>, ConsoleError> {
    if s.tenant.slug != OPERATORS_SLUG {
        return Ok(None);
    }
    let Some(email) = s.verified_email.as_deref() else { return Ok(None) };
    Ok(crate::store::operators::by_email(&st.db, &email.to_ascii_lowercase()).await?)
}

/// POST /console/logout (CSRF-checked; any role may sign out).
async fn logout(req: HttpRequest, st: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ConsoleError> {
    let op = match load_operator(&st, &req).await {
        Ok(op) => op,
        Err(ConsoleError::SignIn) => return Ok(redirect(StatusCode::SEE_OTHER, "/console/login")),
        Err(e) => return Err(e),
    };
    let form = form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?;
    op.session.check_csrf(form.get("csrf"))?;
    let c = crate::http::ui_session::end(&st, &op.session).await?;
    let mut resp = notice(StatusCode::OK, "signed_out", None, Some("/console/login"));
    resp.add_cookie(&c).map_err(|_| PageError::internal())?;
    Ok(resp)
}

/// What `fedgate console bootstrap` did.
#[derive(Debug)]
pub struct Bootstrap {
    pub tenant_created: bool,
    pub connection_created: bool,
    pub domain_added: Option<String>,
    pub operator: operator::Model,
    pub console_url: String,
}

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("database: {0}")]
    Db(#[from] crate::store::conn::DbErr),
    #[error("{0}")]
    Invalid(String),
}

/// `fedgate console bootstrap`: the operators' tenant (created if missing, with the operator's
/// email domain), in dev mode a dev connection for it when it has none, the console's client,
/// and the operator with `role`. Idempotent; an existing operator gets the new role.
pub async fn bootstrap(st: &AppState, email: &str, role: OperatorRole) -> Result<Bootstrap, BootstrapError> {
    let email = crate::claims::normalize_email(email)
        .ok_or_else(|| BootstrapError::Invalid(format!("{email:?} is not an email address")))?;
    let domain = crate::claims::email_domain(&email)
        .ok_or_else(|| BootstrapError::Invalid(format!("{email:?} has no domain")))?;
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let mut tenant_created = false;
    let t = match crate::tenant::find(&st.db, OPERATORS_SLUG).await? {
        Some(t) => t,
        None => {
            tenant_created = true;
            let new = crate::store::tenants::NewTenant {
                id: crate::ids::TenantId::new(now_ms, &*st.rng).to_string(),
                slug: OPERATORS_SLUG.into(),
                name: "Operators (fedgate console)".into(),
                settings: "{}".into(),
                now,
            };
            crate::store::tenants::insert(&st.db, new).await?
        }
    };
    // The operator's address is trusted (verified) only in a domain of the operators' tenant.
    let mut domain_added = None;
    match crate::store::tenants::domain(&st.db, &domain).await? {
        Some(d) if d.tenant_id == t.id => {}
        Some(_) => {
            return Err(BootstrapError::Invalid(format!(
                "the domain {domain} belongs to another tenant; operators need a domain of their own tenant ({OPERATORS_SLUG})"
            )))
        }
        None => {
            crate::store::tenants::insert_domain(&st.db, &t.id, &domain, now).await?;
            domain_added = Some(domain.clone());
        }
    }
    let mut connection_created = false;
    if st.config.dev_mode && crate::store::connections::ids_of_tenant(&st.db, &t.id, 1).await?.is_empty() {
        let new = crate::store::connections::NewConnection {
            id: crate::ids::ConnectionId::new(now_ms, &*st.rng).to_string(),
            tenant_id: t.id.clone(),
            conn_type: "dev".into(),
            name: "Operators (dev sign-in)".into(),
            enabled: true,
            config: serde_json::json!({ "default_email": email }).to_string(),
            secrets_enc: None,
            now,
        };
        crate::store::connections::insert(&st.db, new).await?;
        connection_created = true;
    }
    let client = crate::store::entities::client::Model {
        id: CONSOLE_CLIENT_ID.into(),
        name: "fedgate console".into(),
        client_type: "confidential".into(),
        // The console redeems its codes in-process; this secret is never shown to anyone, so
        // nobody can use the client from outside.
        secret_hash: Some(sha256_hex(&new_token("fgcs_", &*st.rng))),
        redirect_uris: to_json_list(&[callback_url(st)]),
        post_logout_redirect_uris: to_json_list(&[]),
        grant_types: to_json_list(&["authorization_code".into()]),
        id_token_alg: "ES256".into(),
        backchannel_logout_uri: None,
        created_at: now,
        updated_at: now,
        ..crate::store::clients::no_machine_settings()
    };
    if crate::store::clients::get(&st.db, CONSOLE_CLIENT_ID).await?.is_some() {
        crate::store::clients::replace(&st.db, client).await?;
    } else {
        crate::store::clients::insert(&st.db, client).await?;
    }
    let operator =
        crate::store::operators::upsert(&st.db, &format!("op_{}", crate::ids::random128(&*st.rng)), &email, role, now)
            .await?;
    let actor = crate::events::audit::Actor { name: "cli", ip: "-" };
    let entry = actor.entry(
        now,
        "operator.bootstrap",
        "operator",
        Some(&operator.id),
        Some(&t.id),
        serde_json::json!({"email": operator.email, "role": role.as_str()}),
    );
    crate::store::audit::insert(&st.db, entry).await?;
    Ok(Bootstrap {
        tenant_created,
        connection_created,
        domain_added,
        operator,
        console_url: format!("{}/console", st.config.issuer.trim_end_matches('/')),
    })
}
