//! `identities` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub subject: String,
    pub user_id: String,
    pub attributes: String,
    pub groups: String,
    pub created_at: i64,
    pub last_login_at: i64,
    /// The email this connection's IdP vouched for at the last login through it (after the
    /// connection's own rules: `email_verified`, `trusted_email_domains`, Google's primary
    /// email) and that was in a domain of the tenant then; NULL otherwise. Only this address is
    /// ever `email_verified: true` in tokens, and only while its domain is still trusted.
    pub verified_email: Option<String>,
    /// The domain part of `verified_email` (the key of `tenant_domains`).
    pub verified_email_domain: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
