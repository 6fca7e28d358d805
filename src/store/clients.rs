//! Queries on `clients` (the apps that trust fedgate): lookups for the issuer and the login pages,
//! writes and lists for the admin API and the demo.
use super::entities::client::{self, Model};
use super::entities::{grant, refresh_token};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};

/// An app's display name.
pub async fn name_of(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    client::Entity::find_by_id(id.to_string())
        .select_only()
        .column(client::Column::Name)
        .into_tuple::<String>()
        .one(db)
        .await
}

pub async fn get(db: &impl super::inline::ReadConn, id: &str) -> Result<Option<client::Model>, DbErr> {
    // Every token request and authorization request reads its client: inline on SQLite.
    super::inline::one(db, client::Entity::find_by_id(id.to_string())).await
}

/// The machine-to-machine columns of a client that has none of them (an interactive app).
pub fn no_machine_settings() -> Model {
    Model {
        id: String::new(),
        name: String::new(),
        client_type: String::new(),
        secret_hash: None,
        redirect_uris: "[]".into(),
        post_logout_redirect_uris: "[]".into(),
        grant_types: "[]".into(),
        id_token_alg: String::new(),
        backchannel_logout_uri: None,
        created_at: 0,
        updated_at: 0,
        scopes: None,
        tenant_id: None,
        access_token_ttl: None,
        audience: None,
        auth_method: None,
        jwks: None,
        jwks_uri: None,
        web_origins: None,
        disabled_at: None,
        default_tenant_id: None,
    }
}

/// Whether some enabled client registered `origin` (exact) as a web origin (CORS).
pub async fn origin_registered(db: &impl ConnectionTrait, origin: &str) -> Result<bool, DbErr> {
    // Coarse filter in SQL (the JSON text contains the quoted origin), exact check in Rust.
    let needle = format!("%{}%", serde_json::Value::from(origin));
    let rows: Vec<Option<String>> = client::Entity::find()
        .select_only()
        .column(client::Column::WebOrigins)
        .filter(client::Column::WebOrigins.like(needle))
        .filter(client::Column::DisabledAt.is_null())
        .limit(16)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.iter().flatten().any(|w| crate::util::from_json_list(w).iter().any(|o| o == origin)))
}

/// Inserts a client row as given.
pub async fn insert(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    client::ActiveModel::from(row).reset_all().insert(db).await
}

/// Writes every column of a client row (the row must exist).
pub async fn replace(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    client::ActiveModel::from(row).reset_all().update(db).await
}

/// Every client, oldest first.
pub async fn page(db: &impl ConnectionTrait, req: PageRequest<'_>) -> Result<Page<Model>, DbErr> {
    page::fetch(db, client::Entity::find(), client::Column::Id, Order::Asc, req, |r| r.id.clone()).await
}

/// What an update changes (absent: unchanged; list fields are JSON lists).
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<String>,
    pub post_logout_redirect_uris: Option<String>,
    pub grant_types: Option<String>,
    pub id_token_alg: Option<String>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub secret_hash: Option<Option<String>>,
    pub scopes: Option<Option<String>>,
    pub tenant_id: Option<Option<String>>,
    pub access_token_ttl: Option<Option<i64>>,
    pub audience: Option<Option<String>>,
    pub auth_method: Option<Option<String>>,
    pub jwks: Option<Option<String>>,
    pub jwks_uri: Option<Option<String>>,
    pub web_origins: Option<Option<String>>,
    pub disabled_at: Option<Option<i64>>,
}

pub async fn update(db: &impl ConnectionTrait, row: Model, c: ClientChanges, now: i64) -> Result<Model, DbErr> {
    let mut m: client::ActiveModel = row.into();
    if let Some(v) = c.name {
        m.name = Set(v);
    }
    if let Some(v) = c.redirect_uris {
        m.redirect_uris = Set(v);
    }
    if let Some(v) = c.post_logout_redirect_uris {
        m.post_logout_redirect_uris = Set(v);
    }
    if let Some(v) = c.grant_types {
        m.grant_types = Set(v);
    }
    if let Some(v) = c.id_token_alg {
        m.id_token_alg = Set(v);
    }
    if let Some(v) = c.backchannel_logout_uri {
        m.backchannel_logout_uri = Set(v);
    }
    if let Some(v) = c.secret_hash {
        m.secret_hash = Set(v);
    }
    if let Some(v) = c.scopes {
        m.scopes = Set(v);
    }
    if let Some(v) = c.tenant_id {
        m.tenant_id = Set(v);
    }
    if let Some(v) = c.access_token_ttl {
        m.access_token_ttl = Set(v);
    }
    if let Some(v) = c.audience {
        m.audience = Set(v);
    }
    if let Some(v) = c.auth_method {
        m.auth_method = Set(v);
    }
    if let Some(v) = c.jwks {
        m.jwks = Set(v);
    }
    if let Some(v) = c.jwks_uri {
        m.jwks_uri = Set(v);
    }
    if let Some(v) = c.web_origins {
        m.web_origins = Set(v);
    }
    if let Some(v) = c.disabled_at {
        m.disabled_at = Set(v);
    }
    m.updated_at = Set(now);
    m.update(db).await
}

/// Deletes a client: its refresh tokens go, its grants are revoked (`client_deleted`).
pub async fn delete_and_revoke(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    let grants = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .and_where(grant::Column::ClientId.eq(id))
        .to_owned();
    refresh_token::Entity::delete_many().filter(refresh_token::Column::GrantId.in_subquery(grants)).exec(db).await?;
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, now.into())
        .col_expr(grant::Column::RevokedReason, "client_deleted".into())
        .filter(grant::Column::ClientId.eq(id))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    client::Entity::delete_by_id(id.to_string()).exec(db).await?;
    super::claim_configs::delete(db, id).await?;
    Ok(())
}
