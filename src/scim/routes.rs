//! `/scim/v2/{tenant}`: Users, Groups, `.search`, ServiceProviderConfig, ResourceTypes, Schemas.
//! Every request authenticates with a SCIM token of the tenant in the URL, and every
//! authenticated request is recorded in the tenant's request log (no bodies).
use crate::http::AppState;
use crate::scim::auth::ScimTenant;
use crate::scim::discovery;
use crate::scim::error::{LoggedErrorCode, ScimError, SCIM_JSON};
use crate::scim::models::{self as md, etag, Kind};
use crate::scim::service::{Ctx, ListQuery};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::Value;

/// Largest accepted request body.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Registers the SCIM routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2/{tenant}")
            .wrap(from_fn(request_log))
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .service(res("/ServiceProviderConfig").route(web::get().to(spc)))
            .service(res("/ResourceTypes").route(web::get().to(resource_types)))
            .service(res("/ResourceTypes/{id}").route(web::get().to(resource_type)))
            .service(res("/Schemas").route(web::get().to(schemas)))
            .service(res("/Schemas/{id}").route(web::get().to(schema)))
            .service(res("/.search").route(web::post().to(search_all)))
            .service(res("/Users").route(web::get().to(list_users)).route(web::post().to(create_user)))
            .service(res("/Users/.search").route(web::post().to(search_users)))
            .service(
                res("/Users/{id}")
                    .route(web::get().to(get_user))
                    .route(web::put().to(replace_user))
                    .route(web::patch().to(patch_user))
                    .route(web::delete().to(delete_user)),
            )
            .service(res("/Groups").route(web::get().to(list_groups)).route(web::post().to(create_group)))
            .service(res("/Groups/.search").route(web::post().to(search_groups)))
            .service(
                res("/Groups/{id}")
                    .route(web::get().to(get_group))
                    .route(web::put().to(replace_group))
                    .route(web::patch().to(patch_group))
                    .route(web::delete().to(delete_group)),
            )
            .default_service(web::to(|| async { Err::<HttpResponse, ScimError>(ScimError::not_found("endpoint")) })),
    );
}

type Res = Result<HttpResponse, ScimError>;

/// A resource whose other methods get a SCIM 405.
fn res(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, ScimError>(ScimError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "this method is not supported on this endpoint",
        ))
    }))
}

fn ctx<'a>(st: &'a AppState, t: ScimTenant) -> Ctx<'a> {
    let base = format!("{}/scim/v2/{}", st.config.issuer.trim_end_matches('/'), t.tenant.slug);
    Ctx { st, tenant: t.tenant, base }
}

fn json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status).content_type(SCIM_JSON).body(body.to_string())
}

fn resource(status: StatusCode, body: &Value, version: i64) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.content_type(SCIM_JSON).insert_header((header::ETAG, etag(version)));
    if status == StatusCode::CREATED {
        if let Some(loc) = body.pointer("/meta/location").and_then(Value::as_str) {
            r.insert_header((header::LOCATION, loc.to_string()));
        }
    }
    r.body(body.to_string())
}

fn query(req: &HttpRequest) -> Result<ListQuery, ScimError> {
    web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ScimError::invalid_value(format!("invalid query parameter: {e}")))
}

fn body_json(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not valid JSON: {e}")))
}

fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn not_modified(req: &HttpRequest, version: i64) -> bool {
    req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|h| {
        h.split(',').any(|t| t.trim().trim_start_matches("W/").trim_matches('"') == version.to_string())
    })
}

/// Projects a single resource by the request's `attributes` / `excludedAttributes`.
fn projected(req: &HttpRequest, v: Value) -> Result<Value, ScimError> {
    let q = query(req)?;
    let a = md::parse_attr_list(q.attributes.as_deref())?;
    let e = md::parse_attr_list(q.excluded_attributes.as_deref())?;
    Ok(md::project(v, &a, &e))
}

fn search_body(body: &[u8]) -> Result<ListQuery, ScimError> {
    let v = body_json(body)?;
    let mut q = ListQuery::default();
    let o = v.as_object().ok_or_else(|| ScimError::bad("invalidSyntax", "the body must be a SearchRequest object"))?;
    let get = |k: &str| o.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v);
    let list = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    };
    q.filter = get("filter").and_then(Value::as_str).map(str::to_string);
    q.sort_by = get("sortBy").and_then(Value::as_str).map(str::to_string);
    q.sort_order = get("sortOrder").and_then(Value::as_str).map(str::to_string);
    q.start_index = get("startIndex").and_then(Value::as_i64);
    q.count = get("count").and_then(Value::as_i64);
    q.attributes = list(get("attributes"));
    q.excluded_attributes = list(get("excludedAttributes"));
    Ok(q)
}

async fn spc(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::service_provider_config(&ctx(&st, t).base)))
}

async fn resource_types(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::list(discovery::resource_types(&ctx(&st, t).base))))
}

async fn resource_type(t: ScimTenant, st: web::Data<AppState>, path: web::Path<(String, String)>) -> Res {
    let id = &path.1;
    discovery::resource_types(&ctx(&st, t).base)
        .into_iter()
        .find(|r| r["id"].as_str() == Some(id.as_str()))
        .map(|r| json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("resource type"))
}

async fn schemas(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::list(discovery::schemas(&ctx(&st, t).base))))
}

async fn schema(t: ScimTenant, st: web::Data<AppState>, path: web::Path<(String, String)>) -> Res {
    let id = &path.1;
    discovery::schemas(&ctx(&st, t).base)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
        .map(|r| json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("schema"))
}

async fn list_users(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest) -> Res {
    Ok(json(StatusCode::OK, &ctx(&st, t).list(Kind::User, &query(&req)?).await?))
}

async fn list_groups(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest) -> Res {
    Ok(json(StatusCode::OK, &ctx(&st, t).list(Kind::Group, &query(&req)?).await?))
}

async fn search_users(t: ScimTenant, st: web::Data<AppState>, body: web::Bytes) -> Res {
    Ok(json(StatusCode::OK, &ctx(&st, t).list(Kind::User, &search_body(&body)?).await?))
}

async fn search_groups(t: ScimTenant, st: web::Data<AppState>, body: web::Bytes) -> Res {
    Ok(json(StatusCode::OK, &ctx(&st, t).list(Kind::Group, &search_body(&body)?).await?))
}

/// `POST /.search` at the root: Users then Groups, paged together.
async fn search_all(t: ScimTenant, st: web::Data<AppState>, body: web::Bytes) -> Res {
    let q = search_body(&body)?;
    let c = ctx(&st, t);
    let start = q.start_index.unwrap_or(1).max(1);
    let count = q.count.unwrap_or(100).clamp(0, crate::scim::service::MAX_RESULTS);
    if start - 1 + count > crate::scim::service::MAX_RESULTS {
        return Err(ScimError::bad(
            "tooMany",
            "a search across resource types pages through at most 1000 results; search /Users or /Groups instead",
        ));
    }
    let mut wide = q.clone();
    wide.start_index = Some(1);
    wide.count = Some((start - 1 + count).min(crate::scim::service::MAX_RESULTS));
    let users = c.list(Kind::User, &wide).await?;
    let groups = c.list(Kind::Group, &wide).await?;
    let total = users["totalResults"].as_i64().unwrap_or(0) + groups["totalResults"].as_i64().unwrap_or(0);
    let mut all: Vec<Value> = Vec::new();
    for l in [&users, &groups] {
        if let Some(a) = l["Resources"].as_array() {
            all.extend(a.iter().cloned());
        }
    }
    let page: Vec<Value> = all.into_iter().skip((start - 1) as usize).take(count as usize).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total, "startIndex": start, "itemsPerPage": page.len(), "Resources": page
        }),
    ))
}

async fn get_user(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, path: web::Path<(String, String)>) -> Res {
    let (v, version) = ctx(&st, t).get_user(&path.1).await?;
    if not_modified(&req, version) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag(version))).finish());
    }
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn create_user(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Res {
    let (v, version) = ctx(&st, t).create_user(body_json(&body)?).await?;
    Ok(resource(StatusCode::CREATED, &projected(&req, v)?, version))
}

async fn replace_user(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Res {
    let (v, version) = ctx(&st, t).replace_user(&path.1, body_json(&body)?, if_match(&req).as_deref()).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn patch_user(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Res {
    let (v, version) = ctx(&st, t).patch_user(&path.1, body_json(&body)?, if_match(&req).as_deref()).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn delete_user(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Res {
    ctx(&st, t).delete_user(&path.1, if_match(&req).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn members_wanted(req: &HttpRequest) -> Result<bool, ScimError> {
    let q = query(req)?;
    let a = md::parse_attr_list(q.attributes.as_deref())?;
    let e = md::parse_attr_list(q.excluded_attributes.as_deref())?;
    Ok(!md::mentions(&e, "members") && (a.is_empty() || md::mentions(&a, "members")))
}

async fn get_group(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, path: web::Path<(String, String)>) -> Res {
    let (v, version) = ctx(&st, t).get_group(&path.1, members_wanted(&req)?).await?;
    if not_modified(&req, version) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag(version))).finish());
    }
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn create_group(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Res {
    let (v, version) = ctx(&st, t).create_group(body_json(&body)?).await?;
    Ok(resource(StatusCode::CREATED, &projected(&req, v)?, version))
}

async fn replace_group(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Res {
    let (v, version) = ctx(&st, t).replace_group(&path.1, body_json(&body)?, if_match(&req).as_deref()).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn patch_group(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Res {
    let with_members = members_wanted(&req)?;
    let (v, version) =
        ctx(&st, t).patch_group(&path.1, body_json(&body)?, if_match(&req).as_deref(), with_members).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn delete_group(
    t: ScimTenant,
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Res {
    ctx(&st, t).delete_group(&path.1, if_match(&req).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Records each authenticated SCIM request in the tenant's request log: method, path (with
/// query), status, duration and SCIM error code. Bodies are never recorded.
async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let path: String = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    }
    .chars()
    .take(1000)
    .collect();
    let res = next.call(req).await?;
    let tenant = res.request().extensions().get::<ScimTenant>().map(|t| t.tenant.id.clone());
    if let (Some(tenant_id), Some(st)) = (tenant, res.request().app_data::<web::Data<AppState>>().cloned()) {
        let error_code = res.response().extensions().get::<LoggedErrorCode>().map(|c| c.0.clone());
        let resource = path.split('/').nth(4).map(|r| r.split('?').next().unwrap_or(r)).unwrap_or("-").to_string();
        let status = res.status().as_u16().to_string();
        st.metrics.inc(
            "fedgate_scim_requests_total",
            &[("tenant", &tenant_id), ("resource", &resource), ("status", &status)],
        );
        let row = crate::store::entities::scim_request::ActiveModel {
            id: sea_orm::Set(crate::ids::ScimRequestId::new(st.clock.now_ms(), &*st.rng).to_string()),
            tenant_id: sea_orm::Set(tenant_id),
            method: sea_orm::Set(method),
            path: sea_orm::Set(path),
            status: sea_orm::Set(i32::from(res.status().as_u16())),
            duration_us: sea_orm::Set(started.elapsed().as_micros() as i64),
            error_code: sea_orm::Set(error_code),
            created_at: sea_orm::Set(st.clock.now()),
        };
        st.scim_log.push(row);
    }
    Ok(res)
}
