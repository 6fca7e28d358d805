//! `saml_assertions` table: the SAML replay cache.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_assertions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub assertion_id: String,
    pub expires_at: i64,
    pub consumed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
