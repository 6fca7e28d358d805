//! `operators` table: who may use the operator console (`/console`), and with which role.
use sea_orm::entity::prelude::*;

/// What an operator may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum OperatorRole {
    /// Reads and writes.
    #[sea_orm(string_value = "full")]
    Full,
    /// Reads only: every write is refused (403).
    #[sea_orm(string_value = "read_only")]
    ReadOnly,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Full => "full",
            OperatorRole::ReadOnly => "read_only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(OperatorRole::Full),
            "read_only" | "read-only" => Some(OperatorRole::ReadOnly),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "operators")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Lowercased email of the operator's user in the operators' tenant.
    pub email: String,
    pub role: OperatorRole,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
