//! `/admin/v1/clients`: the apps that trust fedgate as their OpenID provider.
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::ClientId;
use crate::issuer::clients::{self as c, ClientType, ClientView, GrantType, TokenAuthMethod};
use crate::keys::{new_token, sha256_hex, Alg};
use crate::store::clients::{self as store, ClientChanges};
use crate::store::entities::client;
use crate::store::{audited, clients};
use crate::tenant::validate_name;
use crate::util::{from_json_list, to_json_list};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;

pub const CLIENT_SECRET_PREFIX: &str = "fgcs_";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Exact-match redirect URIs (at least one with `authorization_code`; none for a
    /// machine-only client).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Default: authorization_code and refresh_token. `["client_credentials"]` alone makes a
    /// machine-only client (confidential).
    pub grant_types: Option<Vec<GrantType>>,
    /// ES256 (default), EdDSA or RS256. Also signs the client's access tokens.
    pub id_token_signed_response_alg: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
    /// Default: `client_secret_basic` (confidential) or `none` (public). `private_key_jwt`
    /// needs `jwks` or `jwks_uri`, and the client gets no secret.
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// Inline public keys (JWKS) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// https URL of the client's JWKS for `private_key_jwt`.
    pub jwks_uri: Option<String>,
    /// Scopes the client may request with `client_credentials`.
    pub scopes: Option<Vec<String>>,
    /// Binds the client's machine tokens to a tenant (id or slug): they carry its `org_id`.
    pub tenant_id: Option<String>,
    /// Access token lifetime in seconds (60 up to `tokens.max_client_access_token_ttl`).
    pub access_token_ttl: Option<i64>,
    /// `aud` of the client's access tokens (default: the client id).
    pub audience: Option<Vec<String>>,
    /// Browser origins (`https://app.example.com`) allowed to call the token, userinfo and
    /// revocation endpoints (public clients).
    pub web_origins: Option<Vec<String>>,
    /// The tenant (id or slug) of self-serve sign-ups: a login of this app whose email domain
    /// belongs to no tenant, or a social button on the email page, goes to this tenant's social
    /// connections (a tenant's verified domain still goes to that tenant).
    pub default_tenant: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub id_token_signed_response_alg: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Set to null to remove.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub backchannel_logout_uri: Option<Option<String>>,
    /// Switching to `private_key_jwt` removes the client secret; switching back needs a new
    /// secret (`POST /clients/{id}/secret`).
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// Set to null to remove.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<serde_json::Value>>,
    /// Set to null to remove.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub jwks_uri: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    /// Set to null to unbind.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tenant_id: Option<Option<String>>,
    /// Set to null for the default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub access_token_ttl: Option<Option<i64>>,
    /// Set to null for the default (the client id).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub audience: Option<Option<Vec<String>>>,
    pub web_origins: Option<Vec<String>>,
    /// Set to null to remove.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub default_tenant: Option<Option<String>>,
    /// False disables the client: no new tokens, and its machine tokens stop validating.
    pub enabled: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn grant_list(g: Option<Vec<GrantType>>) -> Result<Vec<String>, ApiError> {
    let g = g.unwrap_or_else(|| vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
    let machine_only = !g.is_empty() && g.iter().all(|x| *x == GrantType::ClientCredentials);
    if !machine_only && !g.contains(&GrantType::AuthorizationCode) {
        return Err(ApiError::invalid(
            "grant_types",
            ErrorCode::InvalidGrantTypes,
            "authorization_code is required (or client_credentials alone, for a machine-only client)",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for x in g {
        if !out.iter().any(|s| s == x.as_str()) {
            out.push(x.as_str().into());
        }
    }
    Ok(out)
}

fn backchannel(uri: &str, dev: bool) -> Result<String, ApiError> {
    c::validate_redirect_uri("backchannel_logout_uri", uri, dev).and_then(|u| {
        if u.starts_with("http") {
            Ok(u)
        } else {
            Err(ApiError::invalid("backchannel_logout_uri", ErrorCode::InvalidUri, "must be an http(s) URL"))
        }
    })
}

async fn load(state: &AppState, id: &str) -> Result<client::Model, ApiError> {
    clients::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("client"))
}

async fn tenant_of(state: &AppState, key: &str) -> Result<String, ApiError> {
    tenant_for(state, "tenant_id", key).await
}

async fn tenant_for(state: &AppState, field: &str, key: &str) -> Result<String, ApiError> {
    crate::tenant::find(&state.db, key)
        .await?
        .map(|t| t.id)
        .ok_or_else(|| ApiError::invalid(field, ErrorCode::UnknownTenant, "no such tenant"))
}

fn ttl(state: &AppState, v: i64) -> Result<i64, ApiError> {
    let max = state.config.tokens.max_client_access_token_ttl;
    if !(60..=max).contains(&v) {
        return Err(ApiError::invalid(
            "access_token_ttl",
            ErrorCode::OutOfRange,
            format!("access_token_ttl must be 60 to {max} seconds (tokens.max_client_access_token_ttl)"),
        ));
    }
    Ok(v)
}

/// The rules that tie a client's fields together, checked on the final row of a create or an
/// update.
fn check_row(r: &client::Model) -> Result<(), ApiError> {
    let grants = from_json_list(&r.grant_types);
    let confidential = r.client_type == "confidential";
    if grants.iter().any(|g| g == GrantType::ClientCredentials.as_str()) && !confidential {
        return Err(ApiError::invalid(
            "grant_types",
            ErrorCode::InvalidGrantTypes,
            "client_credentials is for confidential clients",
        ));
    }
    if grants.iter().any(|g| g == GrantType::AuthorizationCode.as_str()) && from_json_list(&r.redirect_uris).is_empty()
    {
        return Err(ApiError::invalid(
            "redirect_uris",
            ErrorCode::InvalidRedirectUri,
            "redirect_uris must list 1 to 32 URIs with authorization_code",
        ));
    }
    let method = c::auth_method_of(r);
    let bad_method = |m: &str| ApiError::invalid("token_endpoint_auth_method", ErrorCode::InvalidAuthMethod, m);
    match (confidential, method) {
        (true, TokenAuthMethod::None) => return Err(bad_method("confidential clients must authenticate")),
        (false, m) if m != TokenAuthMethod::None => return Err(bad_method("public clients use none")),
        _ => {}
    }
    let keys = r.jwks.is_some() as u8 + r.jwks_uri.is_some() as u8;
    if method == TokenAuthMethod::PrivateKeyJwt && keys != 1 {
        return Err(bad_method("private_key_jwt needs exactly one of jwks and jwks_uri"));
    }
    if method != TokenAuthMethod::PrivateKeyJwt && keys != 0 {
        return Err(ApiError::invalid("jwks", ErrorCode::InvalidJwks, "keys are used only with private_key_jwt"));
    }
    if confidential && r.web_origins.as_deref().is_some_and(|w| !from_json_list(w).is_empty()) {
        return Err(ApiError::invalid(
            "web_origins",
            ErrorCode::InvalidWebOrigin,
            "web_origins are for public clients (browser apps); a confidential client calls from its server",
        ));
    }
    Ok(())
}

fn audit_details(r: &client::Model) -> serde_json::Value {
    serde_json::json!({
        "name": r.name, "type": r.client_type, "redirect_uris": from_json_list(&r.redirect_uris),
        "grant_types": from_json_list(&r.grant_types), "token_endpoint_auth_method": c::auth_method_of(r).as_str(),
        "scopes": c::scopes_of(r), "tenant_id": r.tenant_id, "access_token_ttl": r.access_token_ttl,
        "jwks_uri": r.jwks_uri, "jwks": r.jwks.is_some(), "web_origins": c::web_origins_of(r),
        "enabled": r.disabled_at.is_none(), "default_tenant": r.default_tenant_id,
    })
}

/// Register an app. The response carries `client_secret` once; only its hash is stored.
#[utoipa::path(post, path = "/clients", operation_id = "createClient", tag = "clients", request_body = CreateClient,
    responses((status = 201, body = ClientView), (status = 400, description = "Invalid input")))]
#[post("/clients")]
pub async fn create(
    a: Admin,
    state: web::Data<AppState>,
    body: web::Json<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let dev = state.config.dev_mode;
    let name = validate_name("name", &b.name)?;
    let redirect_uris = c::validate_uris("redirect_uris", &b.redirect_uris, dev, 0)?;
    let post_logout =
        c::validate_uris("post_logout_redirect_uris", &b.post_logout_redirect_uris.unwrap_or_default(), dev, 0)?;
    let grants = grant_list(b.grant_types)?;
    let alg = match &b.id_token_signed_response_alg {
        Some(a) => c::validate_alg(a)?,
        None => Alg::ES256,
    };
    let bc = b.backchannel_logout_uri.as_deref().map(|u| backchannel(u, dev)).transpose()?;
    let method = b.token_endpoint_auth_method.unwrap_or(match b.client_type {
        ClientType::Confidential => TokenAuthMethod::ClientSecretBasic,
        ClientType::Public => TokenAuthMethod::None,
    });
    let jwks = b.jwks.as_ref().map(c::validate_jwks).transpose()?;
    let jwks_uri = b.jwks_uri.as_deref().map(|u| c::validate_jwks_uri(u, &state.outbound, dev)).transpose()?;
    let scopes = b.scopes.as_deref().map(c::validate_scopes).transpose()?;
    let tenant_id = match &b.tenant_id {
        Some(t) => Some(tenant_of(&state, t).await?),
        None => None,
    };
    let default_tenant_id = match &b.default_tenant {
        Some(t) => Some(tenant_for(&state, "default_tenant", t).await?),
        None => None,
    };
    let access_token_ttl = b.access_token_ttl.map(|v| ttl(&state, v)).transpose()?;
    let audience = b.audience.as_deref().map(c::validate_audience).transpose()?;
    let web_origins = b.web_origins.as_deref().map(c::validate_web_origins).transpose()?;
    let now_ms = state.clock.now_ms();
    let id = ClientId::new(now_ms, &*state.rng);
    let secret = (b.client_type == ClientType::Confidential && method != TokenAuthMethod::PrivateKeyJwt)
        .then(|| new_token(CLIENT_SECRET_PREFIX, &*state.rng));
    let row = client::Model {
        id: id.to_string(),
        name,
        client_type: b.client_type.as_str().into(),
        secret_hash: secret.as_deref().map(sha256_hex),
        redirect_uris: to_json_list(&redirect_uris),
        post_logout_redirect_uris: to_json_list(&post_logout),
        grant_types: to_json_list(&grants),
        id_token_alg: alg.as_str().into(),
        backchannel_logout_uri: bc,
        created_at: now_ms / 1000,
        updated_at: now_ms / 1000,
        scopes: scopes.map(|s| to_json_list(&s)),
        tenant_id,
        access_token_ttl,
        audience: audience.map(|a| to_json_list(&a)),
        auth_method: Some(method.as_str().into()),
        jwks,
        jwks_uri,
        web_origins: web_origins.map(|w| to_json_list(&w)),
        disabled_at: None,
        default_tenant_id,
    };
    check_row(&row)?;
    let tx = audited::begin(&state.db).await?;
    let row = store::insert(&*tx, row).await?;
    let entry = a.actor().entry(now_ms / 1000, "client.create", "client", Some(&row.id), None, audit_details(&row));
    tx.commit(&*state.rng, entry, None).await?;
    tracing::info!(client = %row.id, "client registered");
    Ok(HttpResponse::Created().json(c::view(&row, secret)))
}

/// List clients.
#[utoipa::path(get, path = "/clients", operation_id = "listClients", tag = "clients", params(PageQuery), responses((status = 200, body = Page<ClientView>)))]
#[get("/clients")]
pub async fn list(_a: Admin, state: web::Data<AppState>, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let rows = store::page(&state.db, q.request()?).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, |r| c::view(&r, None))))
}

/// Get a client.
#[utoipa::path(get, path = "/clients/{id}", operation_id = "getClient", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 404, description = "Not found")))]
#[get("/clients/{id}")]
pub async fn get(_a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(c::view(&load(&state, &path).await?, None)))
}

/// Update a client.
#[utoipa::path(patch, path = "/clients/{id}", operation_id = "updateClient", tag = "clients", request_body = UpdateClient, params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 400, description = "Invalid input"), (status = 404, description = "Not found")))]
#[patch("/clients/{id}")]
pub async fn update(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateClient>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let dev = state.config.dev_mode;
    let mut row = load(&state, &path).await?;
    let now = state.clock.now();
    if let Some(n) = &b.name {
        row.name = validate_name("name", n)?;
    }
    if let Some(r) = &b.redirect_uris {
        row.redirect_uris = to_json_list(&c::validate_uris("redirect_uris", r, dev, 0)?);
    }
    if let Some(r) = &b.post_logout_redirect_uris {
        row.post_logout_redirect_uris = to_json_list(&c::validate_uris("post_logout_redirect_uris", r, dev, 0)?);
    }
    if let Some(g) = b.grant_types {
        row.grant_types = to_json_list(&grant_list(Some(g))?);
    }
    if let Some(a) = &b.id_token_signed_response_alg {
        row.id_token_alg = c::validate_alg(a)?.as_str().into();
    }
    if let Some(bc) = &b.backchannel_logout_uri {
        row.backchannel_logout_uri = bc.as_deref().map(|u| backchannel(u, dev)).transpose()?;
    }
    if let Some(m) = b.token_endpoint_auth_method {
        if m == TokenAuthMethod::PrivateKeyJwt {
            // A key-authenticated client has no secret to steal.
            row.secret_hash = None;
        }
        row.auth_method = Some(m.as_str().into());
    }
    if let Some(j) = &b.jwks {
        row.jwks = j.as_ref().map(c::validate_jwks).transpose()?;
    }
    if let Some(u) = &b.jwks_uri {
        row.jwks_uri = u.as_deref().map(|u| c::validate_jwks_uri(u, &state.outbound, dev)).transpose()?;
    }
    if let Some(s) = &b.scopes {
        row.scopes = Some(to_json_list(&c::validate_scopes(s)?));
    }
    if let Some(t) = &b.tenant_id {
        row.tenant_id = match t {
            Some(t) => Some(tenant_of(&state, t).await?),
            None => None,
        };
    }
    if let Some(t) = &b.default_tenant {
        row.default_tenant_id = match t {
            Some(t) => Some(tenant_for(&state, "default_tenant", t).await?),
            None => None,
        };
    }
    if let Some(t) = b.access_token_ttl {
        row.access_token_ttl = t.map(|v| ttl(&state, v)).transpose()?;
    }
    if let Some(au) = &b.audience {
        row.audience = au.as_deref().map(c::validate_audience).transpose()?.map(|a| to_json_list(&a));
    }
    if let Some(w) = &b.web_origins {
        row.web_origins = Some(to_json_list(&c::validate_web_origins(w)?));
    }
    if let Some(e) = b.enabled {
        row.disabled_at = match (e, row.disabled_at) {
            (true, _) => None,
            (false, Some(at)) => Some(at),
            (false, None) => Some(now),
        };
    }
    check_row(&row)?;
    row.updated_at = now;
    let tx = audited::begin(&state.db).await?;
    let row = store::replace(&*tx, row).await?;
    let entry = a.actor().entry(now, "client.update", "client", Some(&row.id), None, audit_details(&row));
    tx.commit(&*state.rng, entry, None).await?;
    state.client_keys.forget(&row.id);
    Ok(HttpResponse::Ok().json(c::view(&row, None)))
}

/// Delete a client and revoke every token issued to it.
#[utoipa::path(delete, path = "/clients/{id}", operation_id = "deleteClient", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
#[delete("/clients/{id}")]
pub async fn remove(a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let tx = audited::begin(&state.db).await?;
    let row = clients::get(&*tx, &path).await?.ok_or_else(|| ApiError::not_found("client"))?;
    let now = state.clock.now();
    store::delete_and_revoke(&*tx, &row.id, now).await?;
    let entry = a.actor().entry(now, "client.delete", "client", Some(&row.id), None, serde_json::json!({}));
    tx.commit(&*state.rng, entry, None).await?;
    state.client_keys.forget(&row.id);
    Ok(HttpResponse::NoContent().finish())
}

/// Replace a confidential client's secret. The new secret is in the response, once.
#[utoipa::path(post, path = "/clients/{id}/secret", operation_id = "rotateClientSecret", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 400, description = "Public client"), (status = 404, description = "Not found")))]
#[post("/clients/{id}/secret")]
pub async fn rotate_secret(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = load(&state, &path).await?;
    if row.client_type != "confidential" {
        return Err(ApiError::invalid("type", ErrorCode::PublicClient, "public clients have no secret"));
    }
    if c::auth_method_of(&row) == TokenAuthMethod::PrivateKeyJwt {
        return Err(ApiError::invalid(
            "token_endpoint_auth_method",
            ErrorCode::InvalidAuthMethod,
            "this client authenticates with private_key_jwt; switch token_endpoint_auth_method first",
        ));
    }
    let secret = new_token(CLIENT_SECRET_PREFIX, &*state.rng);
    let ch = ClientChanges { secret_hash: Some(Some(sha256_hex(&secret))), ..Default::default() };
    let tx = audited::begin(&state.db).await?;
    let row = store::update(&*tx, row, ch, state.clock.now()).await?;
    let entry = a.actor().entry(
        state.clock.now(),
        "client.rotate_secret",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({}),
    );
    tx.commit(&*state.rng, entry, None).await?;
    Ok(HttpResponse::Ok().json(c::view(&row, Some(secret))))
}
