//! `claim_configs` table: a tenant's or client's claim rules and a tenant's token hook.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "claim_configs")]
pub struct Model {
    /// A tenant id (`org_…`) or a client id (`cli_…`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: String,
    /// The rule set as JSON (`claims::rules::RuleSet`); None: no rules.
    pub rules: Option<String>,
    /// The token hook as JSON (`claims::hook::StoredHook`, secret sealed); tenants only.
    pub token_hook: Option<String>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
