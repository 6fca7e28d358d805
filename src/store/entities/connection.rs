//! `connections` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub conn_type: String,
    pub name: String,
    pub enabled: bool,
    pub config: String,
    pub secrets_enc: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// `draft` (made in the setup portal, not tested yet: never used for real logins or
    /// home-realm discovery) or `active`.
    pub state: ConnectionState,
    /// The `version` whose configuration passed a test sign-in (setup portal).
    pub tested_version: Option<i64>,
}

/// Whether a connection may serve real logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ConnectionState {
    /// Being set up: only test sign-ins from the setup portal use it.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Live (when also enabled).
    #[sea_orm(string_value = "active")]
    Active,
}

impl ConnectionState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Draft => "draft",
            ConnectionState::Active => "active",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
