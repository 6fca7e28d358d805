//! `ui_sessions` table: browser sessions of the setup portal and the console.
use sea_orm::entity::prelude::*;

/// Which pages a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum UiKind {
    /// The customer's IT admin, opened by a setup link.
    #[sea_orm(string_value = "portal")]
    Portal,
    /// The vendor's operator, signed in through fedgate itself.
    #[sea_orm(string_value = "console")]
    Console,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ui_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: UiKind,
    pub cookie_hash: String,
    /// Portal: the setup link id. Console: the operator's user id.
    pub subject: String,
    pub tenant_id: Option<String>,
    /// What the session may do (JSON): the link's intents, or the operator's role.
    pub grants: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
