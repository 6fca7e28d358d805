//! Indexes for the console's remaining filters, so each is an index seek at any size
//! (docs/performance.md, "Retention at 10M rows"):
//! - a connection's traces of every status, newest first (`connection_id, sort_key`): the trace
//!   search by connection alone; `idx_traces_connection` leads with the status, so it sorted
//!   every trace of the connection;
//! - audit entries by actor, newest first (`actor, seq`);
//! - audit entries by action, newest first (`action, seq`); an action family (`tenant.`) is a
//!   range on it, read one action at a time (`store::audit::search`).
//!
//! Additive: a binary of the previous release ignores them.
use crate::schema_util::idx;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &[&str]); 3] = [
    ("idx_traces_connection_time", "login_traces", &["connection_id", "sort_key"]),
    ("idx_audit_actor", "audit_log", &["actor", "seq"]),
    ("idx_audit_action", "audit_log", &["action", "seq"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, cols) in INDEXES {
            m.create_index(idx(name, table, cols, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            m.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}
