//! `logins` table: pending logins (all login state lives here, so any instance continues any
//! login). Owned by `crate::login` through `crate::store::logins`.
use crate::ids::{ConnectionId, LoginId, TenantId};
use sea_orm::entity::prelude::*;

/// Where a login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum LoginStatus {
    /// Started; may still be routed, answered upstream, or finished.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Finished with a code or a session.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Ended with an error code.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "logins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: LoginId,
    /// The app's client id (`demo-app` for the built-in demo, else `cli_…`).
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    /// The app's `acr_values` (validated: fedgate's own values).
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub connection_id: Option<ConnectionId>,
    /// The connector's state (JSON; typed by `crate::upstream::ConnectorState`).
    pub connector_state: Option<String>,
    /// SHA-256 of the browser-binding cookie of the browser that started the login.
    pub binding_hash: String,
    pub status: LoginStatus,
    pub error_code: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
