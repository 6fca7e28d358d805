//! `setup_links` table: links the vendor sends a customer's IT admin to open the setup portal.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "setup_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    /// SHA-256 (hex) of the link's token; the token itself is never stored.
    pub token_hash: String,
    /// The intents granted, comma-separated (`sso,scim,domains`).
    pub intents: String,
    /// Who created it (the admin key's name and id, or the operator).
    pub created_by: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// How many times the link was redeemed.
    pub uses: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
