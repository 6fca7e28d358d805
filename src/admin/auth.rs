//! Admin API authentication: `Authorization: Bearer <admin key>`. Keys are stored as SHA-256
//! hashes and looked up by hash; the comparison of the stored hash is constant-time.
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::keys::{constant_time_eq, sha256_hex};
use crate::store::admin_keys;
use actix_web::{web, FromRequest, HttpRequest};

/// Proof that the request carries a valid admin key, allowed on this route: the key's scope
/// is checked here, in the extractor every admin handler takes, never per handler.
///
/// Scopes: `full` or `read_only` (GET and HEAD only), and optionally one tenant: such a key
/// reaches only `/admin/v1/tenants/{its tenant}/...` (not the tenant's deletion) and the
/// OpenAPI document; every other route answers 403 `admin_key_out_of_scope`, whether the other
/// tenant exists or not.
#[derive(Debug, Clone)]
pub struct Admin {
    pub key_id: String,
    pub key_name: String,
    pub ip: String,
    pub read_only: bool,
    pub tenant_id: Option<String>,
}

/// A key's scope, as the API and the CLI name it.
pub const SCOPE_FULL: &str = "full";
pub const SCOPE_READ_ONLY: &str = "read_only";

/// Whether a key with this scope may call this request. `path` is the raw request path;
/// `tenant` is the id of the tenant its `/admin/v1/tenants/{tenant}` segment names, if any.
pub fn allowed(
    read_only: bool,
    key_tenant: Option<&str>,
    method: &actix_web::http::Method,
    path: &str,
    tenant: Option<&str>,
) -> Result<(), ApiError> {
    use actix_web::http::{Method, StatusCode};
    if read_only && !(method == Method::GET || method == Method::HEAD) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            crate::error_code::ErrorCode::AdminKeyReadOnly,
            "this admin key is read-only",
        ));
    }
    let Some(own) = key_tenant else { return Ok(()) };
    let out_of_scope = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            crate::error_code::ErrorCode::AdminKeyOutOfScope,
            "this admin key is limited to one tenant and cannot use this route",
        )
    };
    match tenant_segment(path) {
        Some((_, rest)) if rest.is_empty() && method == Method::DELETE => Err(out_of_scope()),
        Some(_) if tenant == Some(own) => Ok(()),
        _ => Err(out_of_scope()),
    }
}

/// `/admin/v1/tenants/<segment>[/<rest>]` -> (segment, rest). The segment is taken as it is
/// written: a percent-encoded one names no tenant (slugs and ids never need encoding), so this
/// reading and the router's can never disagree on which tenant a request is about.
pub fn tenant_segment(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/admin/v1/tenants/")?;
    let (seg, tail) = match rest.split_once('/') {
        Some((seg, tail)) => (seg, tail),
        None => (rest, ""),
    };
    (!seg.is_empty() && !seg.contains('%')).then_some((seg, tail))
}

/// The admin API's gate, on the `/admin/v1` scope: authenticates the key and checks its scope
/// before any handler or body extractor runs (so an out-of-scope or unauthenticated request
/// learns nothing from body validation), then hands the [`Admin`] to the handler. The OpenAPI
/// document is public.
pub async fn guard(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    use actix_web::HttpMessage;
    if req.path() == "/admin/v1/openapi.json" {
        return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body);
    }
    match authenticate(&req).await {
        Ok(admin) => {
            req.extensions_mut().insert(admin);
            next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body)
        }
        Err(e) => {
            let resp = actix_web::ResponseError::error_response(&e);
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}

async fn authenticate(req: &actix_web::dev::ServiceRequest) -> Result<Admin, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(ApiError::internal)?;
    let ip = crate::http::peer(req.request());
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
        .filter(|t| t.starts_with(ADMIN_KEY_PREFIX) && t.len() < 200)
        .ok_or_else(ApiError::unauthorized)?;
    let hash = sha256_hex(&token);
    let key = admin_keys::find_by_hash(&state.db, &hash)
        .await?
        .filter(|k| k.revoked_at.is_none() && constant_time_eq(&k.token_hash, &hash))
        .ok_or_else(ApiError::unauthorized)?;
    let now = state.clock.now();
    // Record use at most once a minute, so reads do not turn into writes.
    if key.last_used_at.is_none_or(|t| now - t >= 60) {
        if let Err(e) = admin_keys::touch(&state.db, key.clone(), now).await {
            tracing::warn!(error = %e, "could not record admin key use");
        }
    }
    let read_only = key.scope == SCOPE_READ_ONLY;
    let tenant = match (&key.tenant_id, tenant_segment(req.path())) {
        (Some(_), Some((seg, _))) => crate::tenant::find(&state.db, seg).await?.map(|t| t.id),
        _ => None,
    };
    allowed(read_only, key.tenant_id.as_deref(), req.method(), req.path(), tenant.as_deref())?;
    Ok(Admin {
        key_name: format!("{} ({})", key.name, key.id),
        key_id: key.id,
        ip,
        read_only,
        tenant_id: key.tenant_id,
    })
}

impl Admin {
    /// Who did it, for the audit log: the admin key's name and id, and the peer address.
    pub fn actor(&self) -> crate::events::audit::Actor<'_> {
        crate::events::audit::Actor { name: &self.key_name, ip: &self.ip }
    }
}

pub const ADMIN_KEY_PREFIX: &str = "fgadm_";

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    /// The [`Admin`] the gate ([`guard`]) authenticated for this request.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        std::future::ready(req.extensions().get::<Admin>().cloned().ok_or_else(ApiError::unauthorized))
    }
}

/// Creates a full, global admin key; returns (id, plaintext key).
pub async fn create_key(
    db: &crate::store::Db,
    name: &str,
    now_ms: i64,
    rng: &dyn crate::clock::Rng,
) -> Result<(String, String), crate::store::conn::DbErr> {
    create_scoped_key(db, name, false, None, now_ms, rng).await
}

/// Creates an admin key with a scope (read-only, one tenant's id); returns (id, plaintext key).
/// The plaintext exists only in the answer: the table keeps its SHA-256.
pub async fn create_scoped_key(
    db: &impl crate::store::conn::Conn,
    name: &str,
    read_only: bool,
    tenant_id: Option<&str>,
    now_ms: i64,
    rng: &dyn crate::clock::Rng,
) -> Result<(String, String), crate::store::conn::DbErr> {
    let id = crate::ids::AdminKeyId::new(now_ms, rng);
    let token = crate::keys::new_token(ADMIN_KEY_PREFIX, rng);
    admin_keys::insert(
        db,
        admin_keys::NewAdminKey {
            id: id.as_str(),
            name,
            token_hash: &sha256_hex(&token),
            scope: if read_only { SCOPE_READ_ONLY } else { SCOPE_FULL },
            tenant_id,
            now: now_ms / 1000,
        },
    )
    .await?;
    Ok((id.to_string(), token))
}
