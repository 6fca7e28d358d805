//! The dev connector's confirmation page (`/sso/dev/{login}`): one form, no JavaScript.
use super::flow::{self, pending_login};
use crate::html::{escape, page};
use crate::http::error::PageError;
use crate::http::form_params;
use crate::http::AppState;
use crate::store::entities::{client, connection, tenant};
use crate::upstream::connections::ConnectionConfig;
use crate::upstream::{CallbackPayload, ConnectorState, LoginContext, StepLog};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use sea_orm::EntityTrait;

async fn dev_connection(
    st: &AppState,
    login: &crate::store::entities::login::Model,
) -> Result<connection::Model, PageError> {
    if !st.config.dev_mode {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "dev_mode_disabled",
            "Not available",
            "The development sign-in is disabled.",
        ));
    }
    let cid = login
        .connection_id
        .clone()
        .ok_or_else(|| PageError::bad_request("login_not_routed", "This sign-in has not been sent to a connection."))?;
    connection::Entity::find_by_id(cid).one(&st.db).await?.filter(|c| c.conn_type == "dev").ok_or_else(|| {
        PageError::bad_request("connection_not_allowed", "This sign-in does not use the development connection.")
    })
}

pub async fn show(
    req: HttpRequest,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = pending_login(&st, &req, &path).await?;
    let conn = dev_connection(&st, &login).await?;
    let email = login
        .connector_state
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("email").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default();
    let app =
        client::Entity::find_by_id(login.client_id.clone()).one(&st.db).await?.map(|c| c.name).unwrap_or_default();
    let org = tenant::Entity::find_by_id(conn.tenant_id.clone()).one(&st.db).await?.map(|t| t.name).unwrap_or_default();
    let body = format!(
        "<h1>Development sign-in</h1>\
         <p>Sign in to <strong>{app}</strong> as <strong>{email}</strong> of <strong>{org}</strong>?</p>\
         <p class=\"muted\">This page exists only because dev mode is on. No password is checked.</p>\
         <form method=\"post\" action=\"/sso/dev/{id}\">\
         <input type=\"hidden\" name=\"login\" value=\"{id}\">\
         <button type=\"submit\" name=\"action\" value=\"approve\">Sign in</button> \
         <button type=\"submit\" class=\"secondary\" name=\"action\" value=\"deny\">Cancel</button></form>",
        app = escape(&app),
        email = escape(&email),
        org = escape(&org),
        id = escape(&login.id)
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(page("Development sign-in", &body)))
}

pub async fn submit(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = pending_login(&st, &req, &path).await?;
    let conn = dev_connection(&st, &login).await?;
    let params = form_params(&req, &body).map_err(|m| PageError::bad_request("invalid_request", m))?;
    let cfg = ConnectionConfig::from_row(&conn).map_err(|_| PageError::internal())?;
    let steps = StepLog::default();
    steps.push("callback_received", st.clock.now_ms(), 0, serde_json::Value::Null);
    let connector = match cfg.open(&st.upstream, &conn) {
        Ok(c) => c,
        Err(e) => return flow::upstream_failure(&st, &login, e, &steps).await,
    };
    let ctx = LoginContext {
        login_id: crate::ids::LoginId::from_db(login.id.clone()),
        tenant_id: crate::ids::TenantId::from_db(conn.tenant_id.clone()),
        connection_id: crate::ids::ConnectionId::from_db(conn.id.clone()),
        login_hint: login.login_hint.clone(),
        issuer: st.config.issuer.clone(),
        force_authn: false,
        prompt_login: false,
        max_age: None,
        steps: steps.clone(),
    };
    let state =
        ConnectorState(login.connector_state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default());
    let mut payload = CallbackPayload::default();
    if let Some(a) = params.get("action") {
        payload.params.insert("action".into(), a.to_string());
    }
    match connector.complete(&ctx, &state, payload).await {
        Ok(identity) => flow::finish_login(&st, &login, &conn, identity, &steps).await,
        Err(e) => flow::upstream_failure(&st, &login, e, &steps).await,
    }
}
