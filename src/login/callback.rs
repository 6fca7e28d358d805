//! `/sso/oidc/callback`: the one redirect URI of every OIDC connection. The login (and so the
//! connection) is found server-side from `state` — our LoginId — and the browser-binding cookie.
use super::complete::{complete_with, upstream_failure};
use super::pending::{connector_state, load_routed_for_browser};
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{form_params, AppState, Params};
use crate::ids::LoginId;
use crate::upstream::{CallbackPayload, StepLog};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

/// Parameters read from the callback (everything else is ignored).
const KEYS: [&str; 6] = ["state", "code", "iss", "error", "error_description", "user"];

/// GET (query) or POST (`form_post`) /sso/oidc/callback
#[tracing::instrument(name = "login.oidc_callback", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty))]
pub async fn callback(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    callback_of(req, body, st, "oidc").await
}

/// GET /sso/github/callback: the redirect URI of every GitHub connection (OAuth 2.0: `state`,
/// `code`, or `error`), handled exactly like the OIDC callback.
pub async fn github_callback(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    callback_of(req, body, st, "github").await
}

async fn callback_of(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    kind: &'static str,
) -> Result<HttpResponse, PageError> {
    let params = if req.method() == actix_web::http::Method::POST {
        form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?
    } else {
        Params::parse(req.query_string())
            .map_err(|e| PageError::bad_request(ErrorCode::InvalidRequest, e.to_string()))?
    };
    let state = params.get("state").unwrap_or_default().to_string();
    if req.method() == actix_web::http::Method::POST
        && crate::http::cookie(&req, super::pending::BINDING_COOKIE, st.config.secure_cookies()).is_none()
    {
        // A `form_post` answer (Apple) is a cross-site POST: the browser does not send the
        // SameSite=Lax binding cookie with it. Hand the answer on to a top-level GET of the same
        // callback, which carries the cookie and is checked like any other (as the SAML ACS
        // hands over to its resume step).
        let mut u = url::Url::parse(&format!("{}/sso/{kind}/callback", st.config.issuer.trim_end_matches('/')))
            .map_err(|_| PageError::internal())?;
        {
            let mut q = u.query_pairs_mut();
            for k in KEYS {
                if let Some(v) = params.get(k) {
                    q.append_pair(k, &v.chars().take(4096).collect::<String>());
                }
            }
        }
        return Ok(crate::http::redirect(StatusCode::SEE_OTHER, u.as_str()));
    }
    if state.is_empty() || LoginId::parse(&state).is_err() {
        return Err(anonymous(&st, unknown_state()));
    }
    // No pending login for this browser: nothing is written, the failure is counted and sampled.
    // The login, its connection, the connection's tenant and its domains: one query.
    let routed = match load_routed_for_browser(&st, &req, &state).await {
        Ok(r) => r,
        Err(e) if e.code == "login_not_found" => return Err(anonymous(&st, unknown_state())),
        Err(e) => return Err(anonymous(&st, e).with_trace(state)),
    };
    let steps = StepLog::default();
    steps.push(
        "callback_received",
        st.clock.now_ms(),
        0,
        serde_json::json!({ "params": KEYS.iter().filter(|k| params.get(k).is_some()).collect::<Vec<_>>(), "error": params.get("error") }),
    );
    let login = routed.login;
    // Read in the same query as the login, never cached: a connection disabled since the login
    // began finishes nothing.
    let conn = routed.connection.filter(|c| c.conn_type == kind).ok_or_else(|| {
        PageError::bad_request(ErrorCode::ConnectionNotAllowed, "This answer is not for the sign-in method in use.")
    })?;
    super::pending::still_enabled(&login, &conn)?;
    crate::telemetry::record_login(Some(&conn.tenant_id), Some(&conn.id));
    let Some(cstate) = connector_state(&login) else {
        let e = crate::upstream::UpstreamError::InvalidResponse("no pending OIDC state for this sign-in".into());
        return upstream_failure(&st, &login, e, &steps).await;
    };
    let mut payload = CallbackPayload { params: HashMap::new(), decoded: None };
    for k in KEYS {
        if let Some(v) = params.get(k) {
            payload.params.insert(k.to_string(), v.chars().take(4096).collect());
        }
    }
    complete_with(&st, &login, &conn, routed.tenant, &cstate, payload, &steps).await
}

/// Counts (and logs, sampled) a callback that belongs to no pending login of this browser.
fn anonymous(st: &AppState, e: PageError) -> PageError {
    st.failure_log.anonymous_failure(
        &st.metrics,
        st.clock.now_ms(),
        "-",
        "-",
        e.code.as_str(),
        "OIDC callback without a pending login of this browser",
    );
    e
}

fn unknown_state() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::UnknownState,
        "Sign-in not found",
        "This answer from your identity provider does not belong to a sign-in in progress. Go back to the application and sign in again.",
    )
}
