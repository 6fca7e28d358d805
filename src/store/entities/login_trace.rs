//! `login_traces` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_traces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Zero-padded start time in ms + id: newest-first listing and cursors.
    pub sort_key: String,
    pub tenant_id: Option<String>,
    pub connection_id: Option<String>,
    pub client_id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub cause: Option<String>,
    pub fix: Option<String>,
    pub steps: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The person's email when known (login_hint, the typed work email, the signed-in
    /// identity), lowercased: the console searches by it.
    pub email: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
