//! The dev connector's confirmation page (`/sso/dev/{login}`): one form, no JavaScript. Only
//! in dev mode.
use super::complete::{complete_with, upstream_failure};
use super::pending::{connector_state, load_for_browser, routed_connection};
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{form_params, AppState};
use crate::store::entities::{connection, login};
use crate::upstream::{CallbackPayload, ConnectorState, StepLog};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

async fn dev_connection(st: &AppState, login: &login::Model) -> Result<connection::Model, PageError> {
    if !st.config.dev_mode {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::DevModeDisabled,
            "Not available",
            "The development sign-in is disabled.",
        ));
    }
    if login.connection_id.is_none() {
        return Err(PageError::bad_request(
            ErrorCode::LoginNotRouted,
            "This sign-in has not been sent to a connection.",
        ));
    }
    let conn = routed_connection(st, login, "dev").await?.ok_or_else(|| {
        PageError::bad_request(ErrorCode::ConnectionNotAllowed, "This sign-in does not use the development connection.")
    })?;
    super::pending::still_enabled(login, &conn)?;
    Ok(conn)
}

pub async fn show(
    req: HttpRequest,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = load_for_browser(&st, &req, &path).await?;
    let conn = dev_connection(&st, &login).await?;
    let email = match connector_state(&login) {
        Some(ConnectorState::Dev { email }) => email,
        _ => String::new(),
    };
    let app = crate::store::clients::name_of(&st.db, &login.client_id).await?.unwrap_or_default();
    let org = crate::tenant::get(&st.db, &conn.tenant_id).await?.map(|t| t.name).unwrap_or_default();
    let mut builder = HttpResponse::Ok();
    builder.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    Ok(crate::templates::respond(
        builder,
        "dev_login.html",
        serde_json::json!({ "app": app, "email": email, "org": org, "login_id": login.id.as_str() }),
    ))
}

pub async fn submit(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let login = load_for_browser(&st, &req, &path).await?;
    let conn = dev_connection(&st, &login).await?;
    let params = form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?;
    let steps = StepLog::default();
    steps.push("callback_received", st.clock.now_ms(), 0, serde_json::Value::Null);
    let Some(state) = connector_state(&login) else {
        let e = crate::upstream::UpstreamError::InvalidResponse("no email in connector state".into());
        return upstream_failure(&st, &login, e, &steps).await;
    };
    let mut payload = CallbackPayload::default();
    if let Some(a) = params.get("action") {
        payload.params.insert("action".into(), a.to_string());
    }
    complete_with(&st, &login, &conn, None, &state, payload, &steps).await
}
