//! `/scim/v2/{tenant}`: Users, Groups, `.search`, ServiceProviderConfig, ResourceTypes, Schemas.
//! Every request authenticates with a SCIM token of the tenant in the URL, and every
//! authenticated request is recorded in the tenant's request log (no bodies).
use crate::directory::provisioning::{ListQuery, Provisioning};
use crate::http::AppState;
use crate::scim::auth::ScimTenant;
use crate::scim::error::{LoggedErrorCode, ScimError, SCIM_JSON};
use crate::store::scim_user_view::UserWithGroups;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use fedgate_scim::discovery;
use fedgate_scim::resource::{etag, mentions, parse_attr_list, project};
use fedgate_scim::ResourceKind;
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
            .configure(resource_routes::<Users>)
            .configure(resource_routes::<Groups>)
            .default_service(web::to(|| async { Err::<HttpResponse, ScimError>(ScimError::not_found("endpoint")) })),
    );
}

/// A resource endpoint: the same handlers serve `/Users` and `/Groups`.
trait Endpoint: 'static {
    const KIND: ResourceKind;
    /// Whether the response needs the membership attribute. A group's `members` are loaded
    /// only when `attributes` / `excludedAttributes` let the response show them (a group may
    /// have many thousands); a user's `groups` always (the query is read after the lookup).
    fn relation_wanted(req: &HttpRequest) -> Result<bool, ScimError>;
}

struct Users;
struct Groups;

impl Endpoint for Users {
    const KIND: ResourceKind = ResourceKind::User;
    fn relation_wanted(_: &HttpRequest) -> Result<bool, ScimError> {
        Ok(true)
    }
}

impl Endpoint for Groups {
    const KIND: ResourceKind = ResourceKind::Group;
    fn relation_wanted(req: &HttpRequest) -> Result<bool, ScimError> {
        let q = query(req)?;
        let a = parse_attr_list(q.attributes.as_deref())?;
        let e = parse_attr_list(q.excluded_attributes.as_deref())?;
        let rel = Self::KIND.relation();
        Ok(!mentions(&e, rel) && (a.is_empty() || mentions(&a, rel)))
    }
}

/// `/{Users,Groups}`, `/.search` and `/{id}` of one resource type.
fn resource_routes<E: Endpoint>(cfg: &mut web::ServiceConfig) {
    let ep = E::KIND.endpoint();
    cfg.service(res(ep).route(web::get().to(list::<E>)).route(web::post().to(create::<E>)))
        .service(res(&format!("{ep}/.search")).route(web::post().to(search::<E>)))
        .service(
            res(&format!("{ep}/{{id}}"))
                .route(web::get().to(get::<E>))
                .route(web::put().to(replace::<E>))
                .route(web::patch().to(patch::<E>))
                .route(web::delete().to(delete::<E>)),
        );
}

type Res = Result<HttpResponse, ScimError>;
type IdPath = web::Path<(String, String)>;

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

/// A request's provisioning context: the state, the authenticated tenant, its SCIM base URL.
struct Ctx {
    st: web::Data<AppState>,
    t: ScimTenant,
    base: String,
}

impl Ctx {
    fn new(st: web::Data<AppState>, t: ScimTenant) -> Self {
        let base = format!("{}/scim/v2/{}", st.config.issuer.trim_end_matches('/'), t.tenant.slug);
        Self { st, t, base }
    }

    fn service(&self) -> Provisioning<'_> {
        Provisioning {
            db: &self.st.db,
            clock: &*self.st.clock,
            rng: &*self.st.rng,
            tenant: &self.t.tenant,
            base: &self.base,
        }
    }
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
    let a = parse_attr_list(q.attributes.as_deref())?;
    let e = parse_attr_list(q.excluded_attributes.as_deref())?;
    Ok(project(v, &a, &e))
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

// --- discovery -----------------------------------------------------------------------------------

async fn spc(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::service_provider_config(&Ctx::new(st, t).base)))
}

async fn resource_types(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::list(discovery::resource_types(&Ctx::new(st, t).base))))
}

async fn resource_type(t: ScimTenant, st: web::Data<AppState>, path: IdPath) -> Res {
    let id = &path.1;
    discovery::resource_types(&Ctx::new(st, t).base)
        .into_iter()
        .find(|r| r["id"].as_str() == Some(id.as_str()))
        .map(|r| json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("resource type"))
}

async fn schemas(t: ScimTenant, st: web::Data<AppState>) -> Res {
    Ok(json(StatusCode::OK, &discovery::list(discovery::schemas(&Ctx::new(st, t).base))))
}

async fn schema(t: ScimTenant, st: web::Data<AppState>, path: IdPath) -> Res {
    let id = &path.1;
    discovery::schemas(&Ctx::new(st, t).base)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
        .map(|r| json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found("schema"))
}

// --- Users and Groups ----------------------------------------------------------------------------

async fn list<E: Endpoint>(st: web::Data<AppState>, req: HttpRequest) -> Res {
    // A key lookup (what Okta and Entra ID send before each create): the users in the token's
    // statement. Anything else, a bad query included, authenticates first and then lists.
    let q = query(&req);
    if let (ResourceKind::User, Ok(q)) = (E::KIND, &q) {
        if let Some((t, view, users)) = crate::scim::auth::authenticate_with_lookup(&req, q).await? {
            return Ok(json(StatusCode::OK, &Ctx::new(st, t).service().looked_up(q, &view, users).await?));
        }
    }
    let t = ScimTenant::extract(&req).await?;
    Ok(json(StatusCode::OK, &Ctx::new(st, t).service().list(E::KIND, &q?).await?))
}

async fn search<E: Endpoint>(t: ScimTenant, st: web::Data<AppState>, body: web::Bytes) -> Res {
    Ok(json(StatusCode::OK, &Ctx::new(st, t).service().list(E::KIND, &search_body(&body)?).await?))
}

/// `POST /.search` at the root: Users then Groups, paged together.
async fn search_all(t: ScimTenant, st: web::Data<AppState>, body: web::Bytes) -> Res {
    Ok(json(StatusCode::OK, &Ctx::new(st, t).service().search_all(&search_body(&body)?).await?))
}

async fn get<E: Endpoint>(st: web::Data<AppState>, req: HttpRequest, path: IdPath) -> Res {
    let (v, version) = match E::KIND {
        // The commonest SCIM request: the user (and its groups) in the token's statement.
        ResourceKind::User => {
            let (t, found) = crate::scim::auth::authenticate_with_user(&req, &path.1).await?;
            Ctx::new(st, t).service().found_user(found)?
        }
        ResourceKind::Group => {
            let t = ScimTenant::extract(&req).await?;
            let wanted = E::relation_wanted(&req)?;
            Ctx::new(st, t).service().get(E::KIND, &path.1, wanted).await?
        }
    };
    if not_modified(&req, version) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag(version))).finish());
    }
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn create<E: Endpoint>(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Res {
    let (v, version) = Ctx::new(st, t).service().create(E::KIND, body_json(&body)?).await?;
    Ok(resource(StatusCode::CREATED, &projected(&req, v)?, version))
}

/// The context of a write of resource `id` and, when the write may run alone (`alone`, a User,
/// PostgreSQL), the user read in the token's statement (`Some(found)`): the write is then tried
/// in one statement ([`Provisioning::patch_user_read`]), anything else takes the transactional
/// path. The token is checked before the body's errors are told, either way.
async fn write_context<E: Endpoint>(
    st: web::Data<AppState>,
    req: &HttpRequest,
    id: &str,
    alone: bool,
) -> Result<(Ctx, Option<Option<UserWithGroups>>), ScimError> {
    if alone && E::KIND == ResourceKind::User && crate::store::writes_in_one_statement(&st.db) {
        let (t, found) = crate::scim::auth::authenticate_with_user(req, id).await?;
        return Ok((Ctx::new(st, t), Some(found)));
    }
    Ok((Ctx::new(st, ScimTenant::extract(req).await?), None))
}

async fn replace<E: Endpoint>(st: web::Data<AppState>, req: HttpRequest, path: IdPath, body: web::Bytes) -> Res {
    let if_match = if_match(&req);
    let parsed = body_json(&body);
    let alone = matches!(&parsed, Ok(b) if !crate::directory::provisioning::replace_may_deactivate(b));
    let (c, found) = write_context::<E>(st, &req, &path.1, alone).await?;
    let body = parsed?;
    if let Some(found) = found {
        if let Some((v, version)) = c.service().replace_user_read(found, body.clone(), if_match.as_deref()).await? {
            return Ok(resource(StatusCode::OK, &projected(&req, v)?, version));
        }
    }
    let (v, version) = c.service().replace(E::KIND, &path.1, body, if_match.as_deref()).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn patch<E: Endpoint>(st: web::Data<AppState>, req: HttpRequest, path: IdPath, body: web::Bytes) -> Res {
    let wanted = E::relation_wanted(&req)?;
    let if_match = if_match(&req);
    let parsed = body_json(&body);
    // The PatchOp parsed once, here: it decides whether the write may run alone and is the one
    // applied then.
    let alone = parsed.as_ref().ok().and_then(crate::directory::provisioning::patch_alone);
    let (c, found) = write_context::<E>(st, &req, &path.1, alone.is_some()).await?;
    let body = parsed?;
    if let (Some(found), Some(patch)) = (found, alone) {
        if let Some((v, version)) = c.service().patch_user_read(found, &patch, if_match.as_deref(), wanted).await? {
            return Ok(resource(StatusCode::OK, &projected(&req, v)?, version));
        }
    }
    let (v, version) = c.service().patch(E::KIND, &path.1, body, if_match.as_deref(), wanted).await?;
    Ok(resource(StatusCode::OK, &projected(&req, v)?, version))
}

async fn delete<E: Endpoint>(t: ScimTenant, st: web::Data<AppState>, req: HttpRequest, path: IdPath) -> Res {
    Ctx::new(st, t).service().delete(E::KIND, &path.1, if_match(&req).as_deref()).await?;
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
            &[
                ("tenant", &tenant_id),
                ("resource", &resource),
                ("method", crate::metrics::method_label(&method)),
                ("status", &status),
            ],
        );
        let row = crate::store::entities::scim_request::Model {
            id: crate::ids::ScimRequestId::new(st.clock.now_ms(), &*st.rng).to_string(),
            tenant_id,
            method,
            path,
            status: i32::from(res.status().as_u16()),
            duration_us: started.elapsed().as_micros() as i64,
            error_code,
            created_at: st.clock.now(),
        };
        st.scim_log.push(row);
    }
    Ok(res)
}
