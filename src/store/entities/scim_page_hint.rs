//! `scim_page_hints` table: where a page of a SCIM list in id order ended (see
//! `store::scim_list`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scim_page_hints")]
pub struct Model {
    /// SHA-256 (hex) of the query (tenant, resource, conditions and their values) and the
    /// 1-based index of the next page's first row.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    /// The id of the last row served.
    pub last_id: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
