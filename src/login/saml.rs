//! SAML endpoints of each connection: SP metadata, the ACS (HTTP-POST), and the resume step.
//!
//! The ACS is a cross-site POST from the IdP, which does not carry fedgate's SameSite=Lax
//! browser-binding cookie. So the ACS only checks the answer (through the connector's
//! `complete`: signature, conditions, InResponseTo; then the replay cache) and keeps the
//! resulting identity on the pending login under a handle only the posting browser receives; it
//! then sends that browser (303, a top-level GET that does carry the cookie) to
//! `/sso/saml/resume`, which checks that this browser started the login before finishing it
//! through the shared completion path. A response posted into someone else's browser never
//! signs that browser in, and an answer posted for someone else's login id never ends it.
use super::complete::{finish_in, finish_then, AfterLogin};
use super::pending::{connector_state, context, load_routed_for_browser};
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{form_params, redirect, AppState, Params};
use crate::ids::{ConnectionId, LoginId, TenantId};
use crate::keys::{constant_time_eq, new_token, sha256_hex};
use crate::store::entities::connection;
use crate::store::entities::login::{self, LoginStatus};
use crate::store::logins::AnswerKept;
use crate::traces::{self, Outcome};
use crate::upstream::saml::validate::{self, SamlError};
use crate::upstream::saml::{connection_id_of_segment, metadata, SamlConnector};
use crate::upstream::{CallbackPayload, Connector, ConnectorState, SamlAnswer, StepLog, UpstreamError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest ACS form body.
const MAX_ACS_BODY: usize = validate::MAX_RESPONSE_B64 + 8 * 1024;
/// At most this many answers are kept for one pending login.
const MAX_ASSERTED: usize = 3;

fn unknown_connection() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ConnectionNotFound,
        "Sign-in method not found",
        "This SAML sign-in address does not belong to an active connection. Check the ACS URL configured at your identity provider.",
    )
}

/// A SAML connection row and its opened connector. The path segment is the connection id in
/// either URL form (`conn_…` or `conn-…`): the form the connection was set up with is what its
/// Audience, Recipient and Destination checks use.
async fn open(st: &AppState, segment: &str) -> Result<(connection::Model, Arc<SamlConnector>), PageError> {
    let row = crate::store::connections::get(&st.db, &connection_id_of_segment(segment))
        .await?
        .filter(|c| c.conn_type == "saml")
        .ok_or_else(unknown_connection)?;
    let opened = st.connectors.open(&row).map_err(|_| PageError::internal())?;
    let connector = opened.saml().cloned().ok_or_else(PageError::internal)?;
    Ok((row, connector))
}

/// GET /sso/saml/{connection}/metadata — the SP metadata to give the IdP.
pub async fn sp_metadata(path: web::Path<String>, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let (row, connector) = open(&st, &path.into_inner()).await?;
    let cfg = &connector.config;
    let xml = metadata::sp_metadata(
        &cfg.sp_entity_id(&st.config.issuer, &row.id),
        &cfg.acs_url(&st.config.issuer, &row.id),
        &cfg.sp_certificate,
        cfg.sign_requests,
    );
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((
            "Content-Disposition",
            format!(
                "inline; filename=\"fedgate-{}-metadata.xml\"",
                crate::upstream::saml::url_segment(&row.id, cfg.sp_url_form)
            ),
        ))
        .body(xml))
}

/// An ACS answer that matches no pending login (unreadable, unknown or finished InResponseTo,
/// unsolicited and refused or invalid): anyone can post these, so nothing is written (no login
/// row, trace, event or delivery). They are counted (`fedgate_anonymous_failures_total`) and
/// logged at most once per interval per connection and code; the person sees the code and the
/// request id.
fn detached_failure(st: &AppState, conn: &connection::Model, e: UpstreamError) -> Result<HttpResponse, PageError> {
    if matches!(e, UpstreamError::Busy) {
        return Ok(busy(st));
    }
    st.failure_log.anonymous_failure(
        &st.metrics,
        st.clock.now_ms(),
        &conn.tenant_id,
        &conn.id,
        e.code().as_str(),
        &e.detail(),
    );
    Err(PageError::new(
        StatusCode::BAD_REQUEST,
        e.code(),
        "Sign-in could not be completed",
        format!(
            "{} Go back to the application and sign in again; if it keeps failing, give your administrator this code and the request id.",
            e.public_message()
        ),
    ))
}

/// The answer while the verification pool is full: try again in a moment.
fn busy(st: &AppState) -> HttpResponse {
    st.metrics.inc("fedgate_saml_busy_total", &[]);
    let mut builder = HttpResponse::ServiceUnavailable();
    builder.insert_header((header::RETRY_AFTER, "2")).insert_header((header::CACHE_CONTROL, "no-store"));
    crate::templates::ErrorPage {
        title: "Sign-in is busy",
        message: UpstreamError::Busy.public_message(),
        code: ErrorCode::SamlBusy,
        request_id: &crate::http::current_request_id(),
        back: None,
        trace: None,
    }
    .respond(builder)
}

/// POST /sso/saml/{connection}/acs
#[tracing::instrument(name = "login.saml_acs", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty))]
pub async fn acs(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    st: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (conn, connector) = open(&st, &path.into_inner()).await?;
    crate::telemetry::record_login(Some(&conn.tenant_id), Some(&conn.id));
    // A draft of the setup portal (disabled) answers its test sign-ins only (checked below).
    if !conn.enabled && conn.state != connection::ConnectionState::Draft {
        return Err(unknown_connection());
    }
    if let Err(limited) = st.limits.acs_tenant(&conn.tenant_id) {
        return Ok(crate::http::limits::refuse(&st, &limited));
    }
    let steps = StepLog::default();
    let started = st.clock.now_ms();
    if body.len() > MAX_ACS_BODY {
        return detached_failure(&st, &conn, UpstreamError::Saml(SamlError::TooLarge));
    }
    let params = match form_params(&req, &body) {
        Ok(p) => p,
        Err(m) => return detached_failure(&st, &conn, UpstreamError::Saml(SamlError::Malformed(m))),
    };
    let response = params.get("SAMLResponse").unwrap_or_default().to_string();
    steps.push(
        "saml_response_received",
        started,
        0,
        serde_json::json!({"bytes": response.len(), "relay_state": params.get("RelayState").is_some()}),
    );
    // Base64, the byte checks and the unverified InResponseTo that names the login: CPU work,
    // on the connector's pool.
    let (xml, irt) = match connector.decode_and_peek(response).await {
        Ok(v) => v,
        Err(e) => return detached_failure(&st, &conn, e),
    };
    let payload = CallbackPayload { params: HashMap::new(), decoded: Some(xml) };
    match irt {
        Some(id) => solicited(&st, conn, connector, payload, &id, steps).await,
        None => unsolicited(&st, conn, connector, payload, steps).await,
    }
}

/// A response that does not complete the pending login it names: the attempt is recorded on the
/// login's trace (so the administrator sees why), the person sees why, and the login stays open.
/// The InResponseTo that chose this login is unsigned: whoever learns a login id can post
/// anything for it, and must not be able to end someone else's sign-in that way.
async fn attempt_failed(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    e: UpstreamError,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    if matches!(e, UpstreamError::Busy) {
        return Ok(busy(st));
    }
    let conn_name = format!("{} ({})", conn.name, conn.id);
    st.metrics.inc("fedgate_saml_responses_refused_total", &[("code", e.code().as_str())]);
    // Library text (xmlsec, OpenSSL) stays in the log and the admin-only trace, bounded.
    let detail = e.detail();
    let outcome = Outcome::Failed { code: e.code().to_string(), cause: detail.clone(), fix: e.fix(&conn_name) };
    traces::record_existing_best_effort(&st.db, st.clock.now_ms(), login, Some(&conn.id), steps.take(), outcome).await;
    tracing::info!(login = %login.id, code = %e.code(), detail = %detail, "SAML response refused; the sign-in stays open");
    if super::portal_test::is_test(login) {
        // The setup portal's result page shows the trace (cause and fix).
        return Ok(redirect(StatusCode::SEE_OTHER, &login.redirect_uri));
    }
    Err(PageError::new(
        StatusCode::BAD_REQUEST,
        e.code(),
        "Sign-in could not be completed",
        format!(
            "{} Go back to the application and sign in again; your administrator can find the details under this code.",
            e.public_message()
        ),
    )
    .with_trace(login.id.to_string()))
}

async fn solicited(
    st: &AppState,
    conn: connection::Model,
    connector: Arc<SamlConnector>,
    payload: CallbackPayload,
    id: &str,
    steps: StepLog,
) -> Result<HttpResponse, PageError> {
    let now = st.clock.now();
    let found = match LoginId::parse(id) {
        Ok(lid) => crate::store::logins::get(&st.db, &lid).await?,
        Err(_) => None,
    }
    .filter(|l| l.connection_id.as_ref().map(|c| c.as_str()) == Some(conn.id.as_str()));
    if found.as_ref().is_some_and(|l| l.status != LoginStatus::Pending) {
        // The sign-in this response answers is already over: a response used (or sent) twice.
        let e = SamlError::Replay(format!("(an answer to the finished sign-in {id})"));
        return detached_failure(st, &conn, UpstreamError::Saml(e));
    }
    // Only test sign-ins reach a disabled (draft) connection.
    let found = found.filter(|l| conn.enabled || super::portal_test::is_test(l));
    let Some(login) = found.filter(|l| l.expires_at > now) else {
        let e = SamlError::InResponseToMismatch {
            got: id.chars().take(100).collect(),
            expected: "a pending sign-in of this connection".into(),
        };
        return detached_failure(st, &conn, UpstreamError::Saml(e));
    };
    let Some(ConnectorState::Saml { saml_request_id, mut asserted }) = connector_state(&login) else {
        let e = UpstreamError::InvalidResponse("no pending SAML request for this sign-in".into());
        return attempt_failed(st, &login, &conn, e, &steps).await;
    };
    if asserted.len() >= MAX_ASSERTED {
        let e = UpstreamError::Saml(SamlError::Replay("(too many answers to this sign-in)".into()));
        return attempt_failed(st, &login, &conn, e, &steps).await;
    }
    let state = ConnectorState::Saml { saml_request_id: saml_request_id.clone(), asserted: asserted.clone() };
    let completed = match connector.complete(&context(st, &login, &conn, &steps), &state, payload).await {
        Ok(c) => c,
        Err(e) => return attempt_failed(st, &login, &conn, e, &steps).await,
    };
    // Keep the identity under a handle only this browser receives (in the resume URL).
    let handle = new_token("fgh_", &*st.rng);
    let mapped = serde_json::json!({"preset": connector.config.preset, "notes": completed.notes});
    asserted.push(SamlAnswer { handle_hash: sha256_hex(&handle), identity: completed.identity });
    let next = ConnectorState::Saml { saml_request_id, asserted };
    // The steps so far with the claims mapping: appended to the trace with the answer (in one
    // statement on PostgreSQL).
    let now_ms = st.clock.now_ms();
    let recorded = steps.take();
    let mut kept_steps = recorded.clone();
    kept_steps.push(traces::Step { step: "claims_mapped".into(), at_ms: now_ms, duration_ms: 0, detail: mapped });
    let trace = traces::pending_append(&login, Some(&conn.id), &kept_steps, now_ms);
    // The replay cache first (a response used before changes nothing), then the login.
    // Optimistic: a concurrent answer to the same login makes one of the two writes miss.
    let once = completed.one_time.as_ref().map(|o| (o.key.as_str(), o.until));
    let kept = crate::store::logins::keep_answer(
        &st.db,
        &conn.id,
        once,
        now,
        &login.id,
        login.connector_state.as_deref(),
        &next.to_stored(),
        trace,
    )
    .await?;
    let why = match kept {
        AnswerKept::Kept { traced: true } => None,
        AnswerKept::Kept { traced: false } => {
            let outcome = Outcome::Pending;
            traces::record_existing_best_effort(&st.db, now_ms, &login, Some(&conn.id), kept_steps, outcome).await;
            None
        }
        AnswerKept::Replayed => Some(once.map(|(k, _)| k.to_string()).unwrap_or_default()),
        AnswerKept::Raced => Some("(a concurrent answer to this sign-in)".to_string()),
    };
    if let Some(why) = why {
        steps.extend(recorded);
        return attempt_failed(st, &login, &conn, UpstreamError::Saml(SamlError::Replay(why)), &steps).await;
    }
    let url = format!("{}/sso/saml/resume?login={}&h={}", st.config.issuer, login.id, handle);
    Ok(redirect(StatusCode::SEE_OTHER, &url))
}

/// IdP-initiated: only when the connection enables it. The assertion passes every check (and
/// the replay cache); fedgate then opens its own session and sends the browser to the app's
/// login-initiation URL, where the app starts a normal authorization request (state, nonce,
/// PKCE) that the session answers. No authorization code is ever sent unsolicited.
async fn unsolicited(
    st: &AppState,
    conn: connection::Model,
    connector: Arc<SamlConnector>,
    payload: CallbackPayload,
    steps: StepLog,
) -> Result<HttpResponse, PageError> {
    if !conn.enabled {
        return detached_failure(st, &conn, UpstreamError::Saml(SamlError::Unsolicited));
    }
    let cfg = &connector.config.idp_initiated;
    let (Some(client_id), Some(initiate), true) = (cfg.client_id.clone(), cfg.initiate_login_uri.clone(), cfg.enabled)
    else {
        return detached_failure(st, &conn, UpstreamError::Saml(SamlError::Unsolicited));
    };
    let completed = match connector.complete_response(&st.config.issuer, payload, None, &steps).await {
        Ok(c) => c,
        Err(e) => return detached_failure(st, &conn, e),
    };
    let now = st.clock.now();
    if let Some(once) = &completed.one_time {
        if !crate::store::replay::consume(&st.db, &conn.id, &once.key, once.until, now).await? {
            return detached_failure(st, &conn, UpstreamError::Saml(SamlError::Replay(once.key.clone())));
        }
    }
    let login = crate::store::logins::insert(
        &st.db,
        crate::store::logins::NewLogin {
            id: LoginId::new(&*st.rng),
            client_id,
            redirect_uri: initiate.clone(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: None,
            max_age: None,
            acr_values: None,
            login_hint: None,
            tenant_id: Some(TenantId::from_db(conn.tenant_id.clone())),
            connection_id: Some(ConnectionId::from_db(conn.id.clone())),
            // Nobody can resume this login: the binding is a random value nobody holds.
            binding_hash: sha256_hex(&new_token("fgb_", &*st.rng)),
            created_at: now,
            expires_at: now + st.config.tokens.login_ttl,
        },
    )
    .await?;
    let identity = completed.identity;
    let mut next = url::Url::parse(&initiate).map_err(|_| PageError::internal())?;
    {
        let mut q = next.query_pairs_mut();
        q.append_pair("iss", &st.config.issuer);
        q.append_pair("connection", &conn.id);
        if let Some(e) = identity.email.as_deref().and_then(crate::claims::normalize_email) {
            q.append_pair("login_hint", &e);
        }
    }
    finish_then(st, &login, &conn, identity, &steps, AfterLogin::SessionThen(next.to_string())).await
}

/// GET /sso/saml/resume?login=&h= — the browser returns with its binding cookie and the handle
/// of the answer it posted; that answer's identity finishes the login.
pub async fn resume(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params = Params::parse(req.query_string())
        .map_err(|e| PageError::bad_request(ErrorCode::InvalidRequest, e.to_string()))?;
    let id = params.get("login").unwrap_or_default().to_string();
    // The login, its connection, the connection's tenant and its domains: one query.
    let crate::store::logins::Routed { login, connection: routed, tenant } =
        load_routed_for_browser(&st, &req, &id).await?;
    let handle_hash = params.get("h").map(sha256_hex).unwrap_or_default();
    let identity = match connector_state(&login) {
        Some(ConnectorState::Saml { asserted, .. }) => {
            asserted.into_iter().find(|a| constant_time_eq(&a.handle_hash, &handle_hash)).map(|a| a.identity)
        }
        _ => None,
    };
    let Some(identity) = identity else {
        return Err(PageError::bad_request(
            ErrorCode::LoginNotAsserted,
            "Your identity provider has not answered this sign-in yet. Go back to the application and sign in again.",
        )
        .with_trace(login.id.to_string()));
    };
    let test = super::portal_test::is_test(&login);
    // Read in the same query as the login, never cached: a connection disabled since the ACS
    // answered finishes nothing.
    let conn = routed.filter(|c| c.conn_type == "saml").filter(|c| c.enabled || test).ok_or_else(unknown_connection)?;
    let steps = StepLog::default();
    steps.push("browser_returned", st.clock.now_ms(), 0, serde_json::json!({}));
    finish_in(&st, &login, &conn, tenant, identity, &steps, AfterLogin::Code).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sso/saml/resume", web::get().to(resume))
        .route("/sso/saml/{connection}/metadata", web::get().to(sp_metadata))
        .service(
            web::resource("/sso/saml/{connection}/acs")
                .app_data(web::PayloadConfig::new(MAX_ACS_BODY + 1))
                .route(web::post().to(acs)),
        );
}
