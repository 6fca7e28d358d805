//! `/admin/v1/clients`: the apps that trust fedgate as their OpenID provider.
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::ClientId;
use crate::issuer::clients::{self as c, ClientType, ClientView, GrantType};
use crate::keys::{new_token, sha256_hex, Alg};
use crate::store::clients::{self as store, ClientChanges};
use crate::store::entities::client;
use crate::store::{audited, clients};
use crate::tenant::validate_name;
use crate::util::to_json_list;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;

pub const CLIENT_SECRET_PREFIX: &str = "fgcs_";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Exact-match redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Default: authorization_code and refresh_token.
    pub grant_types: Option<Vec<GrantType>>,
    /// ES256 (default), EdDSA or RS256.
    pub id_token_signed_response_alg: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
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
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn grant_list(g: Option<Vec<GrantType>>) -> Result<Vec<String>, ApiError> {
    let g = g.unwrap_or_else(|| vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
    if !g.contains(&GrantType::AuthorizationCode) {
        return Err(ApiError::invalid("grant_types", ErrorCode::InvalidGrantTypes, "authorization_code is required"));
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
    let redirect_uris = c::validate_uris("redirect_uris", &b.redirect_uris, dev, 1)?;
    let post_logout =
        c::validate_uris("post_logout_redirect_uris", &b.post_logout_redirect_uris.unwrap_or_default(), dev, 0)?;
    let grants = grant_list(b.grant_types)?;
    let alg = match &b.id_token_signed_response_alg {
        Some(a) => c::validate_alg(a)?,
        None => Alg::ES256,
    };
    let bc = b.backchannel_logout_uri.as_deref().map(|u| backchannel(u, dev)).transpose()?;
    let now_ms = state.clock.now_ms();
    let id = ClientId::new(now_ms, &*state.rng);
    let secret = (b.client_type == ClientType::Confidential).then(|| new_token(CLIENT_SECRET_PREFIX, &*state.rng));
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
    };
    let tx = audited::begin(&state.db).await?;
    let row = store::insert(&*tx, row).await?;
    let entry = a.actor().entry(
        now_ms / 1000,
        "client.create",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({"name": row.name, "type": row.client_type, "redirect_uris": redirect_uris}),
    );
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
    responses((status = 200, body = ClientView), (status = 404, description = "Not found")))]
#[patch("/clients/{id}")]
pub async fn update(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateClient>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let dev = state.config.dev_mode;
    let row = load(&state, &path).await?;
    let mut ch = ClientChanges::default();
    if let Some(n) = &b.name {
        ch.name = Some(validate_name("name", n)?);
    }
    if let Some(r) = &b.redirect_uris {
        ch.redirect_uris = Some(to_json_list(&c::validate_uris("redirect_uris", r, dev, 1)?));
    }
    if let Some(r) = &b.post_logout_redirect_uris {
        ch.post_logout_redirect_uris = Some(to_json_list(&c::validate_uris("post_logout_redirect_uris", r, dev, 0)?));
    }
    if let Some(g) = b.grant_types {
        ch.grant_types = Some(to_json_list(&grant_list(Some(g))?));
    }
    if let Some(a) = &b.id_token_signed_response_alg {
        ch.id_token_alg = Some(c::validate_alg(a)?.as_str().into());
    }
    if let Some(bc) = &b.backchannel_logout_uri {
        ch.backchannel_logout_uri = Some(bc.as_deref().map(|u| backchannel(u, dev)).transpose()?);
    }
    let tx = audited::begin(&state.db).await?;
    let row = store::update(&*tx, row, ch, state.clock.now()).await?;
    let entry = a.actor().entry(
        state.clock.now(),
        "client.update",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({"name": row.name}),
    );
    tx.commit(&*state.rng, entry, None).await?;
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
