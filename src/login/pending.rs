//! The pending login: the only login state, in the database (any instance continues any login),
//! bound to the browser that started it by a cookie, so a login can never be finished in
//! someone else's browser.
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{build_cookie, client_redirect_url, cookie, AppState};
use crate::ids::LoginId;
use crate::keys::{constant_time_eq, new_token, sha256_hex};
use crate::store::entities::connection;
use crate::store::entities::login::{LoginStatus, Model};
use crate::upstream::{ConnectorState, LoginContext, StepLog};
use actix_web::http::StatusCode;

/// Base name of the browser-binding cookie (`__Host-fedgate_login` with an https issuer).
pub const BINDING_COOKIE: &str = "fedgate_login";

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

/// The URL that returns an error to the app for this login (RFC 6749 §4.1.2.1 + RFC 9207 `iss`).
pub fn error_url(st: &AppState, login: &Model, error: &str, description: &str) -> String {
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

fn not_found() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::LoginNotFound,
        "Sign-in not found",
        "This sign-in link is not valid. Go back to the application and sign in again.",
    )
}

/// Loads a pending login for a browser request, checking expiry and that the same browser
/// started it (the binding cookie).
pub async fn load_for_browser(st: &AppState, req: &actix_web::HttpRequest, id: &str) -> Result<Model, PageError> {
    let id = LoginId::parse(id).map_err(|_| not_found())?;
    let row = crate::store::logins::get(&st.db, &id).await?.ok_or_else(not_found)?;
    check_browser(st, req, &row)?;
    Ok(row)
}

/// [`load_for_browser`] together with the connection the login was routed to, its tenant and
/// the tenant's domains (when they still exist), read in one query.
pub async fn load_routed_for_browser(
    st: &AppState,
    req: &actix_web::HttpRequest,
    id: &str,
) -> Result<crate::store::logins::Routed, PageError> {
    let id = LoginId::parse(id).map_err(|_| not_found())?;
    let routed = crate::store::logins::get_routed(&st.db, &id).await?.ok_or_else(not_found)?;
    check_browser(st, req, &routed.login)?;
    Ok(routed)
}

/// The same browser started the login, and it is still pending and unexpired.
fn check_browser(st: &AppState, req: &actix_web::HttpRequest, row: &Model) -> Result<(), PageError> {
    let bound = cookie(req, BINDING_COOKIE, st.config.secure_cookies())
        .is_some_and(|c| constant_time_eq(&sha256_hex(&c), &row.binding_hash));
    if !bound {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::LoginBindingMismatch,
            "Sign-in started in another browser",
            "This sign-in was started in a different browser or your cookies were cleared. Go back to the application and sign in again.",
        ));
    }
    if row.status != LoginStatus::Pending {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::LoginAlreadyUsed,
            "Sign-in already finished",
            "This sign-in has already been completed. Go back to the application.",
        ));
    }
    if row.expires_at <= st.clock.now() {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::LoginExpired,
            "Sign-in expired",
            "This sign-in took too long and expired. Go back to the application and try again.",
        )
        .with_back(error_url(st, row, "access_denied", "the sign-in expired")));
    }
    Ok(())
}

/// The connector's state stored on the login, typed.
pub fn connector_state(row: &Model) -> Option<ConnectorState> {
    row.connector_state.as_deref().and_then(ConnectorState::from_stored)
}

/// What the connector of `conn` knows about this login.
pub fn context(st: &AppState, row: &Model, conn: &connection::Model, steps: &StepLog) -> LoginContext {
    let prompt_login = row.prompt.as_deref().is_some_and(|p| p.split(' ').any(|x| x == "login"));
    LoginContext {
        login_id: row.id.clone(),
        tenant_id: crate::ids::TenantId::from_db(conn.tenant_id.clone()),
        connection_id: crate::ids::ConnectionId::from_db(conn.id.clone()),
        login_hint: row.login_hint.clone(),
        issuer: st.config.issuer.clone(),
        force_authn: prompt_login || row.max_age.is_some(),
        prompt_login,
        max_age: row.max_age,
        require_mfa: false,
        steps: steps.clone(),
    }
}

/// A connection disabled since its login began finishes nothing (a setup portal's test sign-in
/// uses its draft connection, which is disabled until tested).
pub fn still_enabled(login: &Model, conn: &connection::Model) -> Result<(), PageError> {
    if conn.enabled || super::portal_test::is_test(login) {
        return Ok(());
    }
    Err(PageError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ConnectionNotFound,
        "Sign-in method not found",
        "The sign-in method this answer is for has been turned off. Go back to the application and sign in again.",
    )
    .with_trace(login.id.to_string()))
}

/// The connection a login was sent to, if it still exists and has the type `kind`.
pub async fn routed_connection(st: &AppState, row: &Model, kind: &str) -> Result<Option<connection::Model>, PageError> {
    Ok(match &row.connection_id {
        Some(c) => crate::store::connections::get(&st.db, c.as_str()).await?.filter(|c| c.conn_type == kind),
        None => None,
    })
}
