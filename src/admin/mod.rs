//! The admin API (`/admin/v1`): tenants, OAuth clients, connections. JSON in and out, errors
//! as `{"error": "code", "message": "...", "field": "..."}`, cursor pagination on lists, and an
//! OpenAPI 3 document generated from the same registrations that route requests.
pub mod admin_keys;
pub mod auth;
pub mod claims;
pub mod clients;
pub mod connections;
pub mod events;
pub mod logins;
pub mod scim;
pub mod setup_links;
pub mod tenants;

use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_actix_web::{scope, AppExt};

pub use auth::Admin;

/// The tenant a `{tenant}` path segment names (id or slug), or 404 `not_found`.
pub async fn tenant_or_404(st: &AppState, key: &str) -> Result<crate::store::entities::tenant::Model, ApiError> {
    crate::tenant::find(&st.db, key).await?.ok_or_else(|| ApiError::not_found("tenant"))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "fedgate admin API", version = "1", description = "Manage tenants, their connections, and the OAuth clients (apps) that trust fedgate."),
    modifiers(&BearerAuth),
    security(("admin_key" = []))
)]
struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "admin_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Registers the admin API on an app. The same registrations route requests and produce the
/// OpenAPI document, so the two cannot drift apart.
pub fn register<T>(app: utoipa_actix_web::UtoipaApp<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Error = actix_web::Error,
        InitError = (),
    >,
{
    app.openapi(ApiDoc::openapi()).service(
        scope::scope("/admin/v1")
            .wrap(actix_web::middleware::from_fn(auth::guard))
            .app_data(json_config())
            .app_data(path_config())
            .app_data(query_config())
            .service(openapi_json)
            .service(admin_keys::list)
            .service(admin_keys::create)
            .service(admin_keys::revoke)
            .service(tenants::create)
            .service(tenants::list)
            .service(tenants::get)
            .service(tenants::update)
            .service(tenants::remove)
            .service(clients::create)
            .service(clients::list)
            .service(clients::get)
            .service(clients::update)
            .service(clients::remove)
            .service(clients::rotate_secret)
            .service(connections::create)
            .service(connections::list)
            .service(connections::get)
            .service(connections::update)
            .service(connections::remove)
            .service(connections::refresh_metadata)
            .service(events::list_events)
            .service(events::create_webhook)
            .service(events::list_webhooks)
            .service(events::get_webhook)
            .service(events::update_webhook)
            .service(events::delete_webhook)
            .service(events::list_deliveries)
            .service(events::replay_delivery)
            .service(events::audit_log)
            .service(events::revoke_sessions)
            .service(scim::create_token)
            .service(scim::list_tokens)
            .service(scim::revoke_token)
            .service(scim::list_requests)
            .service(logins::list)
            .service(logins::get)
            .service(setup_links::create)
            .service(setup_links::list)
            .service(setup_links::revoke)
            .service(connections::activate)
            .service(claims::get_tenant_rules)
            .service(claims::put_tenant_rules)
            .service(claims::preview_tenant)
            .service(claims::get_client_rules)
            .service(claims::put_client_rules)
            .service(claims::preview_client)
            .service(claims::get_hook)
            .service(claims::put_hook)
            .service(claims::delete_hook)
            .default_service(web::to(|| async {
                Err::<HttpResponse, ApiError>(ApiError::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "no such admin API route",
                ))
            })),
    )
}

/// The OpenAPI document, built from the route registrations.
pub fn openapi_document() -> serde_json::Value {
    let (_, doc) = register(actix_web::App::new().into_utoipa_app()).split_for_parts();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// This OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApiDocument", tag = "meta", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/openapi.json")]
async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&*state.openapi)
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(1024 * 1024).error_handler(|err, _req| {
        use actix_web::error::JsonPayloadError as E;
        let e = match &err {
            E::ContentType => ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "the request body must be application/json",
            ),
            E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the request body is too large",
            ),
            E::Deserialize(d) => {
                ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, d.to_string())
            }
            other => ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, other.to_string()),
        };
        e.into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| {
        ApiError::new(actix_web::http::StatusCode::NOT_FOUND, ErrorCode::NotFound, "not found").into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, ErrorCode::InvalidQuery, e.to_string()).into()
    })
}

/// Cursor pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid("limit", ErrorCode::InvalidLimit, "limit must be between 1 and 200")),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T: Serialize> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl PageQuery {
    /// The store's page request for these parameters.
    pub fn request(&self) -> Result<crate::store::page::PageRequest<'_>, ApiError> {
        Ok(crate::store::page::PageRequest { cursor: self.cursor.as_deref(), limit: self.limit()? })
    }
}

/// The API's page of a store page.
pub fn page_of<R, T: Serialize>(p: crate::store::page::Page<R>, view: impl FnMut(R) -> T) -> Page<T> {
    let p = p.map(view);
    Page { data: p.rows, next_cursor: p.next_cursor }
}
