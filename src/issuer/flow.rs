//! The login flow between `/oauth2/authorize` and the app's redirect: pending login rows (all
//! state in the database, so any instance can continue a login), starting a connection,
//! finishing a login (link the person, open a session, issue a code), and error redirects.
use crate::claims;
use crate::http::error::{log_internal, PageError};
use crate::http::AppState;
use crate::http::{build_cookie, cookie};
use crate::ids::{ConnectionId, LoginId, SessionId, TenantId};
use crate::keys::{constant_time_eq, new_token, sha256_hex};
use crate::store::entities::{auth_code, connection, login, session, tenant};
use crate::store::write_tx;
use crate::traces::{self, Outcome};
use crate::upstream::connections::ConnectionConfig;
use crate::upstream::{LoginAction, LoginContext, StepLog, UpstreamError, UpstreamIdentity};
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// Base names of fedgate's cookies. With an https issuer they are sent and read as
/// `__Host-fedgate_login` and `__Host-fedgate_session` ([`crate::http::cookie_name`]).
pub const BINDING_COOKIE: &str = "fedgate_login";
pub const SESSION_COOKIE: &str = "fedgate_session";
pub const CODE_PREFIX: &str = "fgac_";

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_FAILED: &str = "failed";

/// Builds `redirect_uri` + query parameters (the registered URI may carry its own query).
pub fn client_redirect_url(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

pub fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The URL that returns an error to the app for this login (RFC 6749 §4.1.2.1 + RFC 9207 `iss`).
pub fn error_url(st: &AppState, login: &login::Model, error: &str, description: &str) -> String {
    client_redirect_url(
        &login.redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", login.state.as_deref()),
            ("iss", Some(&st.config.issuer)),
        ],
    )
}

/// Reads the browser-binding cookie, creating one when absent. Returns (value, is_new).
pub fn binding(req: &actix_web::HttpRequest, st: &AppState) -> (String, bool) {
    match cookie(req, BINDING_COOKIE, st.config.secure_cookies()) {
        Some(v) => (v, false),
        None => (new_token("fgb_", &*st.rng), true),
    }
}

pub fn binding_cookie(st: &AppState, value: String) -> actix_web::cookie::Cookie<'static> {
    build_cookie(BINDING_COOKIE, value, st.config.secure_cookies(), st.config.tokens.login_ttl.max(3600))
}

/// Loads a pending login for a browser request, checking expiry and that the same browser
/// started it (the binding cookie), so a login cannot be finished in someone else's browser.
pub async fn pending_login(st: &AppState, req: &actix_web::HttpRequest, id: &str) -> Result<login::Model, PageError> {
    let not_found = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            "login_not_found",
            "Sign-in not found",
            "This sign-in link is not valid. Go back to the application and sign in again.",
        )
    };
    let id = LoginId::parse(id).map_err(|_| not_found())?;
    let row = login::Entity::find_by_id(id.into_string()).one(&st.db).await?.ok_or_else(not_found)?;
    let bound = cookie(req, BINDING_COOKIE, st.config.secure_cookies())
        .is_some_and(|c| constant_time_eq(&sha256_hex(&c), &row.binding_hash));
    if !bound {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "login_binding_mismatch",
            "Sign-in started in another browser",
            "This sign-in was started in a different browser or your cookies were cleared. Go back to the application and sign in again.",
        ));
    }
    if row.status != STATUS_PENDING {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "login_already_used",
            "Sign-in already finished",
            "This sign-in has already been completed. Go back to the application.",
        ));
    }
    if row.expires_at <= st.clock.now() {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "login_expired",
            "Sign-in expired",
            "This sign-in took too long and expired. Go back to the application and try again.",
        )
        .with_back(error_url(st, &row, "access_denied", "the sign-in expired")));
    }
    Ok(row)
}

/// Marks a login failed (best effort), records it on the trace and logs why.
pub async fn mark_failed(st: &AppState, login: &login::Model, code: &str) {
    let (cause, fix) = traces_explain(code);
    mark_failed_with(st, login, code, cause, fix, &StepLog::default()).await
}

fn traces_explain(code: &str) -> (String, String) {
    match code {
        "email_domain_not_allowed" => (
            "The identity provider signed the person in with an email address outside the organization's domains.".into(),
            "Add the domain to the organization, or set allow_email_outside_domains in its settings if this is expected.".into(),
        ),
        "user_inactive" => (
            "The person's user is deactivated in fedgate.".into(),
            "Reactivate the user (or their SCIM provisioning) if they should have access.".into(),
        ),
        other => (format!("The sign-in failed ({other})."), "See docs/error-codes.md.".into()),
    }
}

/// [`mark_failed`] with an explicit cause, fix and the steps recorded so far.
pub async fn mark_failed_with(
    st: &AppState,
    login: &login::Model,
    code: &str,
    cause: String,
    fix: String,
    steps: &StepLog,
) {
    let r = login::Entity::update_many()
        .col_expr(login::Column::Status, STATUS_FAILED.into())
        .col_expr(login::Column::ErrorCode, code.into())
        .col_expr(login::Column::CompletedAt, st.clock.now().into())
        .col_expr(login::Column::ConnectorState, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .filter(login::Column::Id.eq(login.id.clone()))
        .filter(login::Column::Status.eq(STATUS_PENDING))
        .exec(&st.db)
        .await;
    if let Err(e) = r {
        log_internal("marking login failed", &e);
    }
    let tenant = login.tenant_id.as_deref().unwrap_or("-");
    let connection = login.connection_id.as_deref().unwrap_or("-");
    st.metrics.inc("fedgate_logins_total", &[("tenant", tenant), ("connection", connection), ("result", "failed")]);
    let data = serde_json::json!({"login_id": login.id, "tenant_id": login.tenant_id, "connection_id": login.connection_id,
                                  "client_id": login.client_id, "error_code": code});
    let emitted =
        crate::events::emit(&st.db, &*st.rng, st.clock.now(), login.tenant_id.as_deref(), "login.failed", data).await;
    if let Err(e) = emitted {
        log_internal("emitting login.failed", &e);
    }
    let outcome = Outcome::Failed { code: code.to_string(), cause, fix };
    traces::record_best_effort(&st.db, st.clock.now_ms(), login, login.connection_id.as_deref(), steps.take(), outcome)
        .await;
    tracing::info!(login = %login.id, code, "login failed");
}

/// Turns a connector error into what the person and the app see, and records it on the trace.
pub async fn upstream_failure(
    st: &AppState,
    login: &login::Model,
    e: UpstreamError,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    let conn_name = match &login.connection_id {
        Some(c) => connection::Entity::find_by_id(c.clone())
            .one(&st.db)
            .await
            .ok()
            .flatten()
            .map(|c| format!("{} ({})", c.name, c.id)),
        None => None,
    }
    .unwrap_or_else(|| "(none)".into());
    // The detail (which may quote the IdP or a library: xmlsec, OpenSSL, HTTP) goes to the log
    // and the admin-only trace, bounded; the person sees the code and a fixed sentence.
    let cause = e.detail();
    tracing::warn!(login = %login.id, code = e.code(), detail = %cause, "upstream sign-in failed");
    mark_failed_with(st, login, e.code(), cause, e.fix(&conn_name), steps).await;
    match e {
        UpstreamError::Denied(_) => {
            Ok(redirect(StatusCode::SEE_OTHER, &error_url(st, login, "access_denied", "the sign-in was declined")))
        }
        UpstreamError::Unreachable(_) => Err(PageError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            "Your sign-in service is not responding",
            "Your organization's identity provider could not be reached. Try again in a few minutes; if it keeps happening, tell your administrator.",
        )
        .with_trace(login.id.clone())
        .with_back(error_url(st, login, "temporarily_unavailable", "the identity provider could not be reached"))),
        other => Err(PageError::new(
            StatusCode::BAD_GATEWAY,
            other.code(),
            "Sign-in could not be completed",
            format!("{} Your administrator can find the details under this code.", other.public_message()),
        )
        .with_trace(login.id.clone())
        .with_back(error_url(st, login, "server_error", "the sign-in could not be completed"))),
    }
}

/// Sends the browser to a connection (a connection of the login's tenant).
pub async fn start_connection(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    if login.tenant_id.as_deref().is_some_and(|t| t != conn.tenant_id) || !conn.enabled {
        return Err(PageError::bad_request(
            "connection_not_allowed",
            "That sign-in method is not available for your organization.",
        ));
    }
    let cfg = ConnectionConfig::from_row(conn).map_err(|e| {
        tracing::error!(connection = %conn.id, error = %e, "stored connection config is corrupt");
        PageError::internal()
    })?;
    let steps = StepLog::default();
    let mut pending = login.clone();
    pending.tenant_id = Some(conn.tenant_id.clone());
    pending.connection_id = Some(conn.id.clone());
    steps.push(
        "routed_to_connection",
        st.clock.now_ms(),
        0,
        serde_json::json!({ "connection_id": conn.id, "type": conn.conn_type, "name": conn.name }),
    );
    let connector = match cfg.open(&st.upstream, conn) {
        Ok(c) => c,
        Err(e) => return upstream_failure(st, &pending, e, &steps).await,
    };
    let prompt_login = login.prompt.as_deref().is_some_and(|p| p.split(' ').any(|x| x == "login"));
    let ctx = LoginContext {
        login_id: LoginId::from_db(login.id.clone()),
        tenant_id: TenantId::from_db(conn.tenant_id.clone()),
        connection_id: ConnectionId::from_db(conn.id.clone()),
        login_hint: login.login_hint.clone(),
        issuer: st.config.issuer.clone(),
        force_authn: prompt_login || login.max_age.is_some(),
        prompt_login,
        max_age: login.max_age,
        steps: steps.clone(),
    };
    crate::http::record_tenant(&conn.tenant_id);
    let start = match connector.begin(&ctx).await {
        Ok(s) => s,
        Err(e) => return upstream_failure(st, &pending, e, &steps).await,
    };
    let updated = login::Entity::update_many()
        .col_expr(login::Column::TenantId, conn.tenant_id.clone().into())
        .col_expr(login::Column::ConnectionId, conn.id.clone().into())
        .col_expr(login::Column::ConnectorState, start.state.0.to_string().into())
        .col_expr(login::Column::ExpiresAt, (st.clock.now() + st.config.tokens.login_ttl).into())
        .filter(login::Column::Id.eq(login.id.clone()))
        .filter(login::Column::Status.eq(STATUS_PENDING))
        .exec(&st.db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(PageError::bad_request("login_already_used", "This sign-in has already been completed."));
    }
    traces::record_best_effort(&st.db, st.clock.now_ms(), &pending, Some(&conn.id), steps.take(), Outcome::Pending)
        .await;
    tracing::info!(login = %login.id, connection = %conn.id, "login routed to connection");
    match start.action {
        LoginAction::Redirect(url) => Ok(redirect(status, &url)),
        LoginAction::AutoPost { url, fields } => Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(auto_post(&url, &fields))),
    }
}

fn auto_post(url: &str, fields: &[(String, String)]) -> String {
    use crate::html::escape;
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    crate::html::page(
        "Continue sign-in",
        &format!(
            "<h1>Continue to your identity provider</h1><form method=\"post\" action=\"{}\">{inputs}<button type=\"submit\">Continue</button></form>",
            escape(url)
        ),
    )
}

/// Issues an authorization code for a session and returns the app redirect URL.
#[allow(clippy::too_many_arguments)]
pub async fn issue_code(
    tx: &impl sea_orm::ConnectionTrait,
    st: &AppState,
    login_id: &str,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    nonce: Option<String>,
    code_challenge: Option<String>,
    user_id: &str,
    session_id: &str,
    auth_time: i64,
) -> Result<String, sea_orm::DbErr> {
    let now = st.clock.now();
    let code = new_token(CODE_PREFIX, &*st.rng);
    auth_code::ActiveModel {
        code_hash: Set(sha256_hex(&code)),
        login_id: Set(login_id.to_string()),
        client_id: Set(client_id.to_string()),
        redirect_uri: Set(redirect_uri.to_string()),
        user_id: Set(user_id.to_string()),
        session_id: Set(session_id.to_string()),
        scope: Set(scope.to_string()),
        nonce: Set(nonce),
        code_challenge: Set(code_challenge),
        auth_time: Set(auth_time),
        created_at: Set(now),
        expires_at: Set(now + st.config.tokens.code_ttl),
        used_at: Set(None),
        grant_id: Set(None),
    }
    .insert(tx)
    .await?;
    Ok(code)
}

pub fn success_url(st: &AppState, redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    client_redirect_url(redirect_uri, &[("code", Some(code)), ("state", state), ("iss", Some(&st.config.issuer))])
}

/// Finishes a login: normalizes the upstream identity, applies tenant policy, links the person,
/// opens a session, issues a code — one transaction — and redirects to the app.
pub async fn finish_login(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    up: UpstreamIdentity,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    finish_login_then(st, login, conn, up, steps, AfterLogin::Code).await
}

/// What a finished login answers the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLogin {
    /// An authorization code to the app's redirect_uri (the normal case).
    Code,
    /// Only fedgate's session, then this URL (IdP-initiated SAML: the app starts a fresh OIDC
    /// flow there, which the session answers).
    SessionThen(String),
}

/// [`finish_login`] with a choice of answer.
pub async fn finish_login_then(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    up: UpstreamIdentity,
    steps: &StepLog,
    after: AfterLogin,
) -> Result<HttpResponse, PageError> {
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    // The dev connector's confirmation page is the authentication itself.
    let upstream_auth_time = if conn.conn_type == "dev" { up.auth_time.or(Some(now)) } else { up.auth_time };
    if let Err(cause) = claims::check_reauthentication(
        login.prompt.as_deref(),
        login.max_age,
        login.created_at,
        upstream_auth_time,
        clock_skew_of(conn),
        now,
    ) {
        return upstream_failure(st, login, UpstreamError::ReauthenticationMissing(cause), steps).await;
    }
    // The session's auth_time is when the person authenticated upstream, when the IdP says so
    // (never in the future, never before 1970).
    let auth_time = upstream_auth_time.map_or(now, |t| t.clamp(0, now));
    let mut ident = match claims::normalize(up) {
        Ok(i) => i,
        Err(m) => return upstream_failure(st, login, UpstreamError::InvalidResponse(m.into()), steps).await,
    };
    let tenant =
        tenant::Entity::find_by_id(conn.tenant_id.clone()).one(&st.db).await?.ok_or_else(PageError::internal)?;
    let settings = crate::tenant::settings_of(&tenant);
    if let Some(email) = &ident.email {
        let rows = crate::tenant::domain_rows_of(&st.db, &tenant.id).await?;
        let domains: Vec<String> = rows.iter().map(|d| d.domain.clone()).collect();
        let domain = claims::email_domain(email).unwrap_or_default();
        // The IdP vouching is not enough: fedgate calls an address verified only in a domain of
        // the tenant (whatever allow_email_outside_domains lets in).
        let vouched = ident.email_verified;
        ident.email_verified = vouched && crate::tenant::domain_trusted_for_email(&tenant.id, email, &rows);
        if !settings.allow_email_outside_domains && !domains.contains(&domain) {
            let (cause, fix) = traces_explain("email_domain_not_allowed");
            let cause =
                format!("{cause} The address is at {domain}; the organization's domains are {}.", domains.join(", "));
            mark_failed_with(st, login, "email_domain_not_allowed", cause, fix, steps).await;
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "email_domain_not_allowed",
                "Email address not allowed",
                format!(
                    "Your identity provider signed you in as an address at {domain}, which is not a domain of {}.",
                    tenant.name
                ),
            )
            .with_trace(login.id.clone())
            .with_back(error_url(
                st,
                login,
                "access_denied",
                "the email domain is not allowed for this organization",
            )));
        }
        if vouched && !ident.email_verified {
            steps.push(
                "email_untrusted",
                now_ms,
                0,
                serde_json::json!({ "email_domain": domain, "note": "the IdP vouched for the address, but its domain is not one of the organization's: email_verified is false" }),
            );
        }
    }
    // Two first logins of the same person at once (PostgreSQL runs them concurrently) race to
    // create the identity; the loser retries and links to the winner's user.
    let mut attempt = 0;
    let (tx, linked) = loop {
        attempt += 1;
        let tx = write_tx(&st.db).await?;
        match crate::directory::link_login(&tx, &tenant.id, &conn.id, &ident, &settings, now_ms, &*st.rng).await {
            Ok(l) => break (tx, l),
            Err(crate::directory::LinkError::Inactive) => {
                drop(tx);
                let (cause, fix) = traces_explain("user_inactive");
                mark_failed_with(st, login, "user_inactive", cause, fix, steps).await;
                return Ok(redirect(
                    StatusCode::SEE_OTHER,
                    &error_url(st, login, "access_denied", "the user is deactivated"),
                ));
            }
            Err(crate::directory::LinkError::Db(e)) if attempt < 3 && crate::store::is_unique_violation(&e) => {
                drop(tx);
                tracing::debug!(login = %login.id, "identity created concurrently; retrying the link");
            }
            Err(crate::directory::LinkError::Db(e)) => return Err(e.into()),
        }
    };
    let session_id = SessionId::new(&*st.rng);
    let session_secret = new_token("fgs_", &*st.rng);
    session::ActiveModel {
        id: Set(session_id.to_string()),
        cookie_hash: Set(sha256_hex(&session_secret)),
        user_id: Set(linked.user.id.clone()),
        tenant_id: Set(tenant.id.clone()),
        connection_id: Set(conn.id.clone()),
        auth_time: Set(auth_time),
        amr: Set(crate::util::to_json_list(&ident.amr)),
        created_at: Set(now),
        expires_at: Set(now + st.config.tokens.session_ttl),
        revoked_at: Set(None),
    }
    .insert(&tx)
    .await?;
    let location = match &after {
        AfterLogin::Code => {
            let code = issue_code(
                &tx,
                st,
                &login.id,
                &login.client_id,
                &login.redirect_uri,
                &login.scope,
                login.nonce.clone(),
                login.code_challenge.clone(),
                &linked.user.id,
                session_id.as_str(),
                auth_time,
            )
            .await?;
            success_url(st, &login.redirect_uri, &code, login.state.as_deref())
        }
        AfterLogin::SessionThen(url) => url.clone(),
    };
    let done = login::Entity::update_many()
        .col_expr(login::Column::Status, STATUS_COMPLETED.into())
        .col_expr(login::Column::CompletedAt, now.into())
        .col_expr(login::Column::ConnectorState, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .filter(login::Column::Id.eq(login.id.clone()))
        .filter(login::Column::Status.eq(STATUS_PENDING))
        .exec(&tx)
        .await?;
    if done.rows_affected != 1 {
        // Another request finished (or failed) this login first: a replayed callback.
        drop(tx);
        return Err(PageError::bad_request("login_already_used", "This sign-in has already been completed."));
    }
    if linked.created {
        crate::events::emit(
            &tx,
            &*st.rng,
            now,
            Some(&tenant.id),
            "user.created",
            crate::directory::user_event(&linked.user, "sso"),
        )
        .await?;
    }
    crate::events::emit(
        &tx,
        &*st.rng,
        now,
        Some(&tenant.id),
        "login.succeeded",
        serde_json::json!({"login_id": login.id, "user_id": linked.user.id, "tenant_id": tenant.id, "connection_id": conn.id,
                           "client_id": login.client_id, "session_id": session_id.as_str()}),
    )
    .await?;
    let done_ms = st.clock.now_ms();
    steps.push(
        "user_linked",
        done_ms,
        done_ms - now_ms,
        serde_json::json!({ "user_id": linked.user.id, "created": linked.created, "groups": ident.groups.len() }),
    );
    match after {
        AfterLogin::Code => steps.push("code_issued", done_ms, 0, serde_json::json!({ "client_id": login.client_id })),
        AfterLogin::SessionThen(_) => {
            steps.push("session_opened", done_ms, 0, serde_json::json!({ "next": "initiate_login_uri" }))
        }
    }
    let mut traced = login.clone();
    traced.tenant_id = Some(tenant.id.clone());
    traces::record(&tx, &traced, Some(&tenant.id), Some(&conn.id), steps.take(), Outcome::Completed, done_ms).await?;
    tx.commit().await?;
    st.metrics
        .inc("fedgate_logins_total", &[("tenant", &tenant.id), ("connection", &conn.id), ("result", "succeeded")]);
    tracing::info!(login = %login.id, user = %linked.user.id, tenant = %tenant.id, connection = %conn.id, jit = linked.created, "login succeeded");
    let cookie = build_cookie(SESSION_COOKIE, session_secret, st.config.secure_cookies(), st.config.tokens.session_ttl);
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The clock skew a connection allows (its own setting; 120 s for the dev connector).
fn clock_skew_of(conn: &connection::Model) -> i64 {
    match ConnectionConfig::from_row(conn) {
        Ok(ConnectionConfig::Saml(c)) => c.clock_skew_secs,
        Ok(ConnectionConfig::Oidc(c)) => c.clock_skew,
        _ => 120,
    }
}

/// fedgate's own browser session from the cookie, if valid now.
pub async fn current_session(
    st: &AppState,
    req: &actix_web::HttpRequest,
) -> Result<Option<session::Model>, sea_orm::DbErr> {
    let Some(c) = cookie(req, SESSION_COOKIE, st.config.secure_cookies()) else {
        return Ok(None);
    };
    let now = st.clock.now();
    Ok(session::Entity::find()
        .filter(session::Column::CookieHash.eq(sha256_hex(&c)))
        .one(&st.db)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now))
}
