//! `/admin/v1/.../logins`: login traces, to answer "why did my login fail?".
use super::Admin;
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::page::PageRequest;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;

/// Filters for a tenant's login traces, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// `pending`, `completed`, `failed` or `abandoned`.
    pub status: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// List a tenant's login attempts (traces), newest first.
#[utoipa::path(get, path = "/tenants/{tenant}/logins", operation_id = "listLoginTraces", tag = "logins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), LoginQuery),
    responses((status = 200, description = "A page of login traces", body = Object), (status = 404, description = "Unknown tenant")))]
#[get("/tenants/{tenant}/logins")]
pub async fn list(
    _a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = crate::tenant::find(&state.db, &path).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=200).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("limit", ErrorCode::InvalidLimit, "limit must be between 1 and 200")),
    };
    if let Some(s) = &q.status {
        if !crate::traces::STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(
                "status",
                ErrorCode::InvalidStatus,
                "status must be pending, completed, failed or abandoned",
            ));
        }
    }
    let req = PageRequest { cursor: q.cursor.as_deref(), limit };
    let rows = crate::store::traces::page_of_tenant(&state.db, &tenant.id, q.status.as_deref(), req).await?;
    let page = super::page_of(rows, |r| crate::traces::view(&r));
    Ok(HttpResponse::Ok().json(page))
}

/// One login attempt's trace: steps with timings and, on failure, the code, cause and fix.
#[utoipa::path(get, path = "/logins/{id}", operation_id = "getLoginTrace", tag = "logins",
    params(("id" = String, Path, description = "Trace id (the login id shown to the person)")),
    responses((status = 200, description = "The trace", body = Object), (status = 404, description = "Not found")))]
#[get("/logins/{id}")]
pub async fn get(_a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = crate::store::traces::get(&state.db, &path).await?.ok_or_else(|| ApiError::not_found("login"))?;
    Ok(HttpResponse::Ok().json(crate::traces::view(&row)))
}
