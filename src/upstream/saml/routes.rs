//! SAML endpoints of each connection: SP metadata, the ACS (HTTP-POST), and the resume step.
//!
//! The ACS is a cross-site POST from the IdP, which does not carry fedgate's SameSite=Lax
//! browser-binding cookie. So the ACS only validates the response (signature, conditions,
//! InResponseTo, replay) and stores the resulting identity on the pending login; it then sends
//! the browser (303, a top-level GET that does carry the cookie) to `/sso/saml/resume`, which
//! checks that this browser started the login before finishing it. A response posted into
//! someone else's browser therefore never signs that browser in.
use super::validate::{self, SamlError};
use super::{connection_id_of_segment, metadata, SamlConfig, SamlConnector};
use crate::http::error::PageError;
use crate::http::AppState;
use crate::http::{form_params, Params};
use crate::ids::LoginId;
use crate::issuer::flow::{self, AfterLogin, STATUS_PENDING};
use crate::keys::{new_token, sha256_hex};
use crate::store::entities::{connection, login, saml_assertion};
use crate::traces::{self, Outcome};
use crate::upstream::connections::ConnectionConfig;
use crate::upstream::{StepLog, UpstreamError, UpstreamIdentity};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use std::sync::Arc;

/// Largest ACS form body.
const MAX_ACS_BODY: usize = validate::MAX_RESPONSE_B64 + 8 * 1024;

fn unknown_connection() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "connection_not_found",
        "Sign-in method not found",
        "This SAML sign-in address does not belong to an active connection. Check the ACS URL configured at your identity provider.",
    )
}

/// Loads a SAML connection (enabled or not: the caller decides) and its configuration. The path
/// segment is the connection id in either URL form (`conn_…` or `conn-…`): the form the
/// connection was set up with is what its Audience, Recipient and Destination checks use.
async fn load(st: &AppState, segment: &str) -> Result<(connection::Model, SamlConfig), PageError> {
    let row = connection::Entity::find_by_id(connection_id_of_segment(segment))
        .one(&st.db)
        .await?
        .filter(|c| c.conn_type == "saml")
        .ok_or_else(unknown_connection)?;
    let Ok(ConnectionConfig::Saml(cfg)) = ConnectionConfig::from_row(&row) else {
        tracing::error!(connection = %row.id, "stored SAML connection config is corrupt");
        return Err(PageError::internal());
    };
    Ok((row, *cfg))
}

/// Loads a SAML connection and opens it (keys from the cache).
async fn open(st: &AppState, id: &str) -> Result<(connection::Model, SamlConnector), PageError> {
    let (row, cfg) = load(st, id).await?;
    let connector = super::open(&st.upstream, &row, cfg).map_err(|_| PageError::internal())?;
    Ok((row, connector))
}

/// GET /sso/saml/{connection}/metadata — the SP metadata to give the IdP.
pub async fn sp_metadata(path: web::Path<String>, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let (row, cfg) = load(&st, &path.into_inner()).await?;
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
            format!("inline; filename=\"fedgate-{}-metadata.xml\"", super::url_segment(&row.id, cfg.sp_url_form)),
        ))
        .body(xml))
}

/// A login row for a validated IdP-initiated answer (one that passed every check).
async fn detached_login(
    st: &AppState,
    conn: &connection::Model,
    client_id: &str,
    redirect_uri: &str,
) -> Result<login::Model, PageError> {
    let now = st.clock.now();
    Ok(login::ActiveModel {
        id: Set(LoginId::new(&*st.rng).to_string()),
        client_id: Set(client_id.to_string()),
        redirect_uri: Set(redirect_uri.to_string()),
        scope: Set("openid".into()),
        state: Set(None),
        nonce: Set(None),
        code_challenge: Set(None),
        prompt: Set(None),
        max_age: Set(None),
        login_hint: Set(None),
        tenant_id: Set(Some(conn.tenant_id.clone())),
        connection_id: Set(Some(conn.id.clone())),
        connector_state: Set(None),
        // Nobody can resume this login: the binding is a random value nobody holds.
        binding_hash: Set(sha256_hex(&new_token("fgb_", &*st.rng))),
        status: Set(STATUS_PENDING.into()),
        error_code: Set(None),
        created_at: Set(now),
        expires_at: Set(now + st.config.tokens.login_ttl),
        completed_at: Set(None),
    }
    .insert(&st.db)
    .await?)
}

/// An ACS answer that matches no pending login (unreadable, unknown or finished InResponseTo,
/// unsolicited and refused or invalid): anyone can post these, so nothing is written (no login
/// row, trace, event or delivery). They are counted (`fedgate_anonymous_failures_total`) and
/// logged at most once per interval per connection and code; the person sees the code and the
/// request id.
async fn detached_failure(
    st: &AppState,
    conn: &connection::Model,
    e: SamlError,
    _steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    let ue = UpstreamError::Saml(e);
    st.failure_log.anonymous_failure(
        &st.metrics,
        st.clock.now_ms(),
        &conn.tenant_id,
        &conn.id,
        ue.code(),
        &ue.detail(),
    );
    Err(PageError::new(
        StatusCode::BAD_REQUEST,
        ue.code(),
        "Sign-in could not be completed",
        format!(
            "{} Go back to the application and sign in again; if it keeps failing, give your administrator this code and the request id.",
            ue.public_message()
        ),
    ))
}

/// Consumes an assertion ID in the replay cache; a second use fails on every instance.
async fn consume(st: &AppState, conn_id: &str, a: &validate::ValidatedAssertion) -> Result<(), SamlError> {
    let r = saml_assertion::ActiveModel {
        connection_id: Set(conn_id.to_string()),
        assertion_id: Set(a.assertion_id.clone()),
        expires_at: Set(a.expires_at),
        consumed_at: Set(st.clock.now()),
    }
    .insert(&st.db)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if crate::store::is_unique_violation(&e) => Err(SamlError::Replay(a.assertion_id.clone())),
        Err(e) => {
            crate::util::log_internal("recording a SAML assertion", &e);
            Err(SamlError::Replay(a.assertion_id.clone()))
        }
    }
}

/// The pending login's SAML state (the `connector_state` column): the request id, and each
/// identity an ACS answer established, under the hash of the handle that only the browser which
/// posted that answer received. Several answers may arrive for one login (a person retrying,
/// or someone else posting a response for this request id): each is kept apart, so an answer
/// can only ever be finished by the browser that posted it, and only when that browser also
/// holds the login's binding cookie.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct AcsState {
    saml_request_id: String,
    #[serde(default)]
    asserted: Vec<Asserted>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Asserted {
    handle_hash: String,
    identity: UpstreamIdentity,
}

/// At most this many answers are kept for one pending login.
const MAX_ASSERTED: usize = 3;

impl AcsState {
    fn read(raw: Option<&str>) -> Self {
        let Some(v) = raw.and_then(|s| serde_json::from_str::<Value>(s).ok()) else { return Self::default() };
        let id = v.get("saml_request_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let asserted = match v.get("asserted") {
            // Written before answers were kept per handle (an in-flight login during an
            // upgrade): one identity, finished by the binding cookie alone.
            Some(Value::Object(_)) => v
                .get("asserted")
                .cloned()
                .and_then(|a| serde_json::from_value(a).ok())
                .map(|identity| vec![Asserted { handle_hash: String::new(), identity }])
                .unwrap_or_default(),
            Some(a @ Value::Array(_)) => serde_json::from_value(a.clone()).unwrap_or_default(),
            _ => Vec::new(),
        };
        Self { saml_request_id: id, asserted }
    }
}

/// The answer while the verification pool is full: try again in a moment.
fn busy() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::RETRY_AFTER, "2"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(crate::html::error_page(
            "Sign-in is busy",
            "Too many sign-ins are being checked right now. Go back to the application and try again in a moment.",
            "saml_busy",
            &crate::http::current_request_id(),
            None,
            None,
        ))
}

/// What a job on the SAML pool produced.
enum Pooled<T> {
    Done(T),
    Busy,
}

/// Runs CPU work on a SAMLResponse (base64, parsing, signatures, decryption) on the bounded
/// blocking pool, never on the async workers.
async fn pooled<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<Pooled<T>, PageError> {
    match st.saml_pool.run(f).await {
        Ok(v) => Ok(Pooled::Done(v)),
        Err(crate::blocking::PoolError::Busy) => {
            st.metrics.inc("fedgate_saml_busy_total", &[]);
            Ok(Pooled::Busy)
        }
        Err(crate::blocking::PoolError::Failed) => Err(PageError::internal()),
    }
}

/// Validates a decoded response on the pool. A failure to decrypt (and verify) unauthenticated
/// ciphertext always takes at least `decryption_failure_floor_ms`, whatever failed inside.
async fn validate_pooled(
    st: &AppState,
    connector: &Arc<SamlConnector>,
    xml: Arc<str>,
    request: Option<String>,
    steps: &StepLog,
    started: i64,
) -> Result<Pooled<Result<validate::ValidatedAssertion, SamlError>>, PageError> {
    let (c, issuer, steps2) = (connector.clone(), st.config.issuer.clone(), steps.clone());
    let began = tokio::time::Instant::now();
    let r = pooled(st, move || c.validate(&issuer, &xml, request.as_deref(), &steps2, started)).await?;
    if let Pooled::Done(Err(SamlError::Decryption(_))) = &r {
        tokio::time::sleep_until(began + std::time::Duration::from_millis(st.config.saml.decryption_failure_floor_ms))
            .await;
    }
    Ok(r)
}

/// POST /sso/saml/{connection}/acs
pub async fn acs(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    st: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (conn, connector) = open(&st, &path.into_inner()).await?;
    let connector = Arc::new(connector);
    crate::http::record_tenant(&conn.tenant_id);
    if !conn.enabled {
        return Err(unknown_connection());
    }
    if let Err(limited) = st.limits.acs_tenant(&conn.tenant_id) {
        return Ok(crate::http::limits::refuse(&st, &limited));
    }
    let steps = StepLog::default();
    let started = st.clock.now_ms();
    if body.len() > MAX_ACS_BODY {
        return detached_failure(&st, &conn, SamlError::TooLarge, &steps).await;
    }
    let params = match form_params(&req, &body) {
        Ok(p) => p,
        Err(m) => return detached_failure(&st, &conn, SamlError::Malformed(m), &steps).await,
    };
    let response = params.get("SAMLResponse").unwrap_or_default().to_string();
    steps.push(
        "saml_response_received",
        started,
        0,
        serde_json::json!({"bytes": response.len(), "relay_state": params.get("RelayState").is_some()}),
    );
    // Base64, the byte checks and the unverified InResponseTo: CPU work, on the pool too.
    let decoded = pooled(&st, move || {
        let xml = validate::decode(&response)?;
        let irt = validate::peek_in_response_to(&xml)?;
        Ok::<_, SamlError>((Arc::<str>::from(xml), irt))
    })
    .await?;
    let (xml, irt) = match decoded {
        Pooled::Busy => return Ok(busy()),
        Pooled::Done(Ok(v)) => v,
        Pooled::Done(Err(e)) => return detached_failure(&st, &conn, e, &steps).await,
    };
    match irt {
        Some(id) => solicited(&st, conn, connector, xml, &id, steps, started).await,
        None => unsolicited(&st, conn, connector, xml, steps, started).await,
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
    let conn_name = format!("{} ({})", conn.name, conn.id);
    st.metrics.inc("fedgate_saml_responses_refused_total", &[("code", e.code())]);
    // Library text (xmlsec, OpenSSL) stays in the log and the admin-only trace, bounded.
    let detail = e.detail();
    let outcome = Outcome::Failed { code: e.code().to_string(), cause: detail.clone(), fix: e.fix(&conn_name) };
    traces::record_best_effort(&st.db, st.clock.now_ms(), login, Some(&conn.id), steps.take(), outcome).await;
    tracing::info!(login = %login.id, code = e.code(), detail = %detail, "SAML response refused; the sign-in stays open");
    Err(PageError::new(
        StatusCode::BAD_REQUEST,
        e.code(),
        "Sign-in could not be completed",
        format!(
            "{} Go back to the application and sign in again; your administrator can find the details under this code.",
            e.public_message()
        ),
    )
    .with_trace(login.id.clone()))
}

async fn solicited(
    st: &AppState,
    conn: connection::Model,
    connector: Arc<SamlConnector>,
    xml: Arc<str>,
    id: &str,
    steps: StepLog,
    started: i64,
) -> Result<HttpResponse, PageError> {
    let now = st.clock.now();
    let found = match LoginId::parse(id) {
        Ok(_) => login::Entity::find_by_id(id.to_string()).one(&st.db).await?,
        Err(_) => None,
    }
    .filter(|l| l.connection_id.as_deref() == Some(conn.id.as_str()));
    if found.as_ref().is_some_and(|l| l.status != STATUS_PENDING) {
        // The sign-in this response answers is already over: a response used (or sent) twice.
        let e = SamlError::Replay(format!("(an answer to the finished sign-in {id})"));
        return detached_failure(st, &conn, e, &steps).await;
    }
    let pending = found.filter(|l| l.expires_at > now);
    let Some(login) = pending else {
        let e = SamlError::InResponseToMismatch {
            got: id.chars().take(100).collect(),
            expected: "a pending sign-in of this connection".into(),
        };
        return detached_failure(st, &conn, e, &steps).await;
    };
    let state = AcsState::read(login.connector_state.as_deref());
    if state.asserted.len() >= MAX_ASSERTED {
        let e = UpstreamError::Saml(SamlError::Replay("(too many answers to this sign-in)".into()));
        return attempt_failed(st, &login, &conn, e, &steps).await;
    }
    let a = match validate_pooled(st, &connector, xml, Some(id.to_string()), &steps, started).await? {
        Pooled::Busy => return Ok(busy()),
        Pooled::Done(Ok(a)) => a,
        Pooled::Done(Err(e)) => return attempt_failed(st, &login, &conn, UpstreamError::Saml(e), &steps).await,
    };
    if let Err(e) = consume(st, &conn.id, &a).await {
        return attempt_failed(st, &login, &conn, UpstreamError::Saml(e), &steps).await;
    }
    let (identity, notes) = match connector.identity(&a) {
        Ok(i) => i,
        Err(e) => return attempt_failed(st, &login, &conn, e, &steps).await,
    };
    steps.push(
        "claims_mapped",
        st.clock.now_ms(),
        0,
        serde_json::json!({"preset": connector.config.preset, "notes": notes}),
    );
    // Keep the identity under a handle only this browser receives (in the resume URL).
    let handle = new_token("fgh_", &*st.rng);
    let mut next = state;
    next.saml_request_id = id.to_string();
    next.asserted.push(Asserted { handle_hash: sha256_hex(&handle), identity });
    let next_json = serde_json::to_string(&next).map_err(|_| PageError::internal())?;
    let mut update = login::Entity::update_many()
        .col_expr(login::Column::ConnectorState, next_json.into())
        .filter(login::Column::Id.eq(login.id.clone()))
        .filter(login::Column::Status.eq(STATUS_PENDING));
    // Optimistic: a concurrent answer to the same login makes one of the two writes miss.
    update = match &login.connector_state {
        Some(old) => update.filter(login::Column::ConnectorState.eq(old.clone())),
        None => update.filter(login::Column::ConnectorState.is_null()),
    };
    let stored = update.exec(&st.db).await?;
    if stored.rows_affected != 1 {
        let e = UpstreamError::Saml(SamlError::Replay("(a concurrent answer to this sign-in)".into()));
        return attempt_failed(st, &login, &conn, e, &steps).await;
    }
    traces::record_best_effort(&st.db, st.clock.now_ms(), &login, Some(&conn.id), steps.take(), Outcome::Pending).await;
    let url = format!("{}/sso/saml/resume?login={}&h={}", st.config.issuer, login.id, handle);
    Ok(flow::redirect(StatusCode::SEE_OTHER, &url))
}

/// IdP-initiated: only when the connection enables it. The assertion passes every check (and
/// the replay cache); fedgate then opens its own session and sends the browser to the app's
/// login-initiation URL, where the app starts a normal authorization request (state, nonce,
/// PKCE) that the session answers. No authorization code is ever sent unsolicited.
async fn unsolicited(
    st: &AppState,
    conn: connection::Model,
    connector: Arc<SamlConnector>,
    xml: Arc<str>,
    steps: StepLog,
    started: i64,
) -> Result<HttpResponse, PageError> {
    let cfg: &SamlConfig = &connector.config;
    let (Some(client_id), Some(initiate), true) =
        (cfg.idp_initiated.client_id.clone(), cfg.idp_initiated.initiate_login_uri.clone(), cfg.idp_initiated.enabled)
    else {
        return detached_failure(st, &conn, SamlError::Unsolicited, &steps).await;
    };
    let a = match validate_pooled(st, &connector, xml, None, &steps, started).await? {
        Pooled::Busy => return Ok(busy()),
        Pooled::Done(Ok(a)) => a,
        Pooled::Done(Err(e)) => return detached_failure(st, &conn, e, &steps).await,
    };
    if let Err(e) = consume(st, &conn.id, &a).await {
        return detached_failure(st, &conn, e, &steps).await;
    }
    let login = detached_login(st, &conn, &client_id, &initiate).await?;
    let identity = match connector.identity(&a) {
        Ok(i) => i.0,
        Err(e) => return flow::upstream_failure(st, &login, e, &steps).await,
    };
    let mut next = url::Url::parse(&initiate).map_err(|_| PageError::internal())?;
    {
        let mut q = next.query_pairs_mut();
        q.append_pair("iss", &st.config.issuer);
        q.append_pair("connection", &conn.id);
        if let Some(e) = identity.email.as_deref().and_then(crate::claims::normalize_email) {
            q.append_pair("login_hint", &e);
        }
    }
    flow::finish_login_then(st, &login, &conn, identity, &steps, AfterLogin::SessionThen(next.to_string())).await
}

/// GET /sso/saml/resume?login=&h= — the browser returns with its binding cookie and the handle
/// of the answer it posted; that answer's identity finishes the login.
pub async fn resume(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params =
        Params::parse(req.query_string()).map_err(|e| PageError::bad_request("invalid_request", e.to_string()))?;
    let id = params.get("login").unwrap_or_default().to_string();
    let login = flow::pending_login(&st, &req, &id).await?;
    let state = AcsState::read(login.connector_state.as_deref());
    let handle_hash = params.get("h").map(sha256_hex).unwrap_or_default();
    let identity = state
        .asserted
        .into_iter()
        .find(|a| crate::keys::constant_time_eq(&a.handle_hash, &handle_hash))
        .map(|a| a.identity);
    let Some(identity) = identity else {
        return Err(PageError::bad_request(
            "login_not_asserted",
            "Your identity provider has not answered this sign-in yet. Go back to the application and sign in again.",
        )
        .with_trace(login.id.clone()));
    };
    let conn = match &login.connection_id {
        Some(c) => connection::Entity::find_by_id(c.clone()).one(&st.db).await?,
        None => None,
    }
    .filter(|c| c.conn_type == "saml" && c.enabled)
    .ok_or_else(unknown_connection)?;
    let steps = StepLog::default();
    steps.push("browser_returned", st.clock.now_ms(), 0, serde_json::json!({}));
    flow::finish_login(&st, &login, &conn, identity, &steps).await
}

/// `{connection}` is the connection id in either URL form: `conn_…` (connections set up before
/// the hyphen form) or `conn-…` (no underscore, which Okta's SAML wizard requires).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sso/saml/resume", web::get().to(resume))
        .route("/sso/saml/{connection}/metadata", web::get().to(sp_metadata))
        .service(
            web::resource("/sso/saml/{connection}/acs")
                .app_data(web::PayloadConfig::new(MAX_ACS_BODY + 1))
                .route(web::post().to(acs)),
        );
}
