//! `/sso/oidc/callback`: the one redirect URI of every OIDC connection. The login (and so the
//! connection) is found server-side from `state` — our LoginId — and the browser-binding cookie.
use crate::http::error::PageError;
use crate::http::AppState;
use crate::http::{form_params, Params};
use crate::ids::{ConnectionId, LoginId, TenantId};
use crate::issuer::flow::{self, pending_login};
use crate::store::entities::connection;
use crate::upstream::connections::ConnectionConfig;
use crate::upstream::{CallbackPayload, ConnectorState, LoginContext, StepLog};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use sea_orm::EntityTrait;
use std::collections::HashMap;

/// Parameters read from the callback (everything else is ignored).
const KEYS: [&str; 5] = ["state", "code", "iss", "error", "error_description"];

/// GET (query) or POST (`form_post`) /sso/oidc/callback
pub async fn callback(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params = if req.method() == actix_web::http::Method::POST {
        form_params(&req, &body).map_err(|m| PageError::bad_request("invalid_request", m))?
    } else {
        Params::parse(req.query_string()).map_err(|e| PageError::bad_request("invalid_request", e.to_string()))?
    };
    let state = params.get("state").unwrap_or_default().to_string();
    if state.is_empty() || LoginId::parse(&state).is_err() {
        return Err(anonymous(&st, unknown_state()));
    }
    // No pending login for this browser: nothing is written, the failure is counted and sampled.
    let login = match pending_login(&st, &req, &state).await {
        Ok(l) => l,
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
    let conn = match &login.connection_id {
        Some(c) => connection::Entity::find_by_id(c.clone()).one(&st.db).await?,
        None => None,
    }
    .filter(|c| c.conn_type == "oidc")
    .ok_or_else(|| {
        PageError::bad_request("connection_not_allowed", "This sign-in does not use an OpenID Connect connection.")
    })?;
    let cfg = ConnectionConfig::from_row(&conn).map_err(|e| {
        tracing::error!(connection = %conn.id, error = %e, "stored connection config is corrupt");
        PageError::internal()
    })?;
    let connector = match cfg.open(&st.upstream, &conn) {
        Ok(c) => c,
        Err(e) => return flow::upstream_failure(&st, &login, e, &steps).await,
    };
    let ctx = LoginContext {
        login_id: LoginId::from_db(login.id.clone()),
        tenant_id: TenantId::from_db(conn.tenant_id.clone()),
        connection_id: ConnectionId::from_db(conn.id.clone()),
        login_hint: login.login_hint.clone(),
        issuer: st.config.issuer.clone(),
        force_authn: false,
        prompt_login: false,
        max_age: None,
        steps: steps.clone(),
    };
    let connector_state =
        ConnectorState(login.connector_state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default());
    let mut payload = CallbackPayload { params: HashMap::new() };
    for k in KEYS {
        if let Some(v) = params.get(k) {
            payload.params.insert(k.to_string(), v.chars().take(4096).collect());
        }
    }
    match connector.complete(&ctx, &connector_state, payload).await {
        Ok(identity) => flow::finish_login(&st, &login, &conn, identity, &steps).await,
        Err(e) => flow::upstream_failure(&st, &login, e, &steps).await,
    }
}

/// Counts (and logs, sampled) a callback that belongs to no pending login of this browser.
fn anonymous(st: &AppState, e: PageError) -> PageError {
    st.failure_log.anonymous_failure(
        &st.metrics,
        st.clock.now_ms(),
        "-",
        "-",
        e.code,
        "OIDC callback without a pending login of this browser",
    );
    e
}

fn unknown_state() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "unknown_state",
        "Sign-in not found",
        "This answer from your identity provider does not belong to a sign-in in progress. Go back to the application and sign in again.",
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sso/oidc/callback", web::get().to(callback)).route("/sso/oidc/callback", web::post().to(callback));
}
