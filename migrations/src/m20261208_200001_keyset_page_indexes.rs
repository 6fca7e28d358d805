//! Indexes that make the keyset pages of the events API, the console's trace search and
//! connection health, and the console's audit view by tenant an index seek at any size
//! (docs/performance.md, "Retention at 10M rows"):
//! - events of one tenant in commit order (`tenant_id, tx_id, seq`); the old `(tenant_id, seq)`
//!   index does not give that order, so a tenant's page sorted every event of the tenant;
//! - a connection's traces of one status, newest first (`connection_id, status, sort_key`);
//! - a tenant's audit entries, newest first (`tenant_id, seq`).
//!
//! Additive: the old indexes stay, and a binary of the previous release ignores these.
use crate::schema_util::idx;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(idx("idx_events_tenant_order", "events", &["tenant_id", "tx_id", "seq"], false)).await?;
        m.create_index(idx("idx_traces_connection", "login_traces", &["connection_id", "status", "sort_key"], false))
            .await?;
        m.create_index(idx("idx_audit_tenant", "audit_log", &["tenant_id", "seq"], false)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("idx_events_tenant_order", "events"),
            ("idx_traces_connection", "login_traces"),
            ("idx_audit_tenant", "audit_log"),
        ] {
            m.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}
