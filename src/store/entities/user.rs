//! `users` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub user_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    pub external_id: Option<String>,
    pub attributes: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// Lower-cased SCIM userName (unique per tenant; NULL when not SCIM-managed or deleted).
    pub user_name_lower: Option<String>,
    /// Lower-cased email, for case-insensitive lookups.
    pub email_lower: Option<String>,
    /// The stored SCIM resource (JSON, without id/meta); NULL for users not provisioned by SCIM.
    pub scim: Option<String>,
    /// Incremented on every SCIM write (the ETag).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
