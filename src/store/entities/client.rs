//! `clients` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub client_type: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub id_token_alg: String,
    pub backchannel_logout_uri: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// JSON list of the scopes `client_credentials` may request (null: none).
    pub scopes: Option<String>,
    /// The tenant the client's machine tokens speak for (`org_id`).
    pub tenant_id: Option<String>,
    /// Access token lifetime for this client (null: `tokens.access_token_ttl`).
    pub access_token_ttl: Option<i64>,
    /// JSON list of access token audiences (null: the client id).
    pub audience: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none` (null: by type).
    pub auth_method: Option<String>,
    /// Inline JWKS (public keys) for `private_key_jwt`.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// JSON list of browser origins allowed to call the token endpoint (CORS).
    pub web_origins: Option<String>,
    pub disabled_at: Option<i64>,
    /// The tenant of self-serve sign-ups: logins with no enterprise tenant go to its social
    /// connections (null: none).
    pub default_tenant_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
