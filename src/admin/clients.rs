//! `/admin/v1/clients`: the apps that trust fedgate as their OpenID provider.
use super::{page_of, Admin, Page, PageQuery};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::ClientId;
use crate::issuer::clients::{self as c, ClientType, ClientView, GrantType};
use crate::keys::{new_token, sha256_hex, Alg};
use crate::store::entities::{client, grant, refresh_token};
use crate::store::write_tx;
use crate::tenant::validate_name;
use crate::util::to_json_list;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
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
    client::Entity::find_by_id(id.to_string()).one(&state.db).await?.ok_or_else(|| ApiError::not_found("client"))
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
    let row = client::ActiveModel {
        id: Set(id.to_string()),
        name: Set(name),
        client_type: Set(b.client_type.as_str().into()),
        secret_hash: Set(secret.as_deref().map(sha256_hex)),
        redirect_uris: Set(to_json_list(&redirect_uris)),
        post_logout_redirect_uris: Set(to_json_list(&post_logout)),
        grant_types: Set(to_json_list(&grants)),
        id_token_alg: Set(alg.as_str().into()),
        backchannel_logout_uri: Set(bc),
        created_at: Set(now_ms / 1000),
        updated_at: Set(now_ms / 1000),
    }
    .insert(&state.db)
    .await?;
    crate::events::audit::record(
        &state.db,
        now_ms / 1000,
        &a.actor(),
        "client.create",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({"name": row.name, "type": row.client_type, "redirect_uris": redirect_uris}),
    )
    .await?;
    tracing::info!(client = %row.id, "client registered");
    Ok(HttpResponse::Created().json(c::view(&row, secret)))
}

/// List clients.
#[utoipa::path(get, path = "/clients", operation_id = "listClients", tag = "clients", params(PageQuery), responses((status = 200, body = Page<ClientView>)))]
#[get("/clients")]
pub async fn list(_a: Admin, state: web::Data<AppState>, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit()?;
    let mut query = client::Entity::find().order_by_asc(client::Column::Id).limit(limit + 1);
    if let Some(cur) = &q.cursor {
        query = query.filter(client::Column::Id.gt(cur.clone()));
    }
    let rows = query.all(&state.db).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, limit, |r| r.id.clone(), |r| c::view(&r, None))))
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
    let mut m: client::ActiveModel = row.into();
    if let Some(n) = &b.name {
        m.name = Set(validate_name("name", n)?);
    }
    if let Some(r) = &b.redirect_uris {
        m.redirect_uris = Set(to_json_list(&c::validate_uris("redirect_uris", r, dev, 1)?));
    }
    if let Some(r) = &b.post_logout_redirect_uris {
        m.post_logout_redirect_uris = Set(to_json_list(&c::validate_uris("post_logout_redirect_uris", r, dev, 0)?));
    }
    if let Some(g) = b.grant_types {
        m.grant_types = Set(to_json_list(&grant_list(Some(g))?));
    }
    if let Some(a) = &b.id_token_signed_response_alg {
        m.id_token_alg = Set(c::validate_alg(a)?.as_str().into());
    }
    if let Some(bc) = &b.backchannel_logout_uri {
        m.backchannel_logout_uri = Set(bc.as_deref().map(|u| backchannel(u, dev)).transpose()?);
    }
    m.updated_at = Set(state.clock.now());
    let row = m.update(&state.db).await?;
    crate::events::audit::record(
        &state.db,
        state.clock.now(),
        &a.actor(),
        "client.update",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({"name": row.name}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(c::view(&row, None)))
}

/// Delete a client and revoke every token issued to it.
#[utoipa::path(delete, path = "/clients/{id}", operation_id = "deleteClient", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
#[delete("/clients/{id}")]
pub async fn remove(a: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let tx = write_tx(&state.db).await?;
    let row =
        client::Entity::find_by_id(path.to_string()).one(&tx).await?.ok_or_else(|| ApiError::not_found("client"))?;
    let now = state.clock.now();
    let grants = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .and_where(grant::Column::ClientId.eq(row.id.clone()))
        .to_owned();
    refresh_token::Entity::delete_many().filter(refresh_token::Column::GrantId.in_subquery(grants)).exec(&tx).await?;
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, now.into())
        .col_expr(grant::Column::RevokedReason, "client_deleted".into())
        .filter(grant::Column::ClientId.eq(row.id.clone()))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(&tx)
        .await?;
    client::Entity::delete_by_id(row.id.clone()).exec(&tx).await?;
    crate::events::audit::record(
        &tx,
        now,
        &a.actor(),
        "client.delete",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
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
    let mut m: client::ActiveModel = row.into();
    m.secret_hash = Set(Some(sha256_hex(&secret)));
    m.updated_at = Set(state.clock.now());
    let row = m.update(&state.db).await?;
    crate::events::audit::record(
        &state.db,
        state.clock.now(),
        &a.actor(),
        "client.rotate_secret",
        "client",
        Some(&row.id),
        None,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(c::view(&row, Some(secret))))
}
