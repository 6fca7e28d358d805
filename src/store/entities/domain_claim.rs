//! `domain_claims` table: a tenant's claim on an email domain, proven by a DNS TXT record.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domain_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    /// The random part of the TXT value (public: it is published in DNS).
    pub challenge: String,
    /// Who claimed it (`setup_link:<id>` or an admin key's name).
    pub created_by: String,
    pub created_at: i64,
    pub checks: i32,
    pub last_checked_at: Option<i64>,
    /// JSON of `tenant::dns::CheckResult`.
    pub last_result: Option<String>,
    /// When the background job checks it next; `None`: never (verified, or given up).
    pub next_check_at: Option<i64>,
    pub verified_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
