//! Indexes for SCIM at a million users per tenant (issue 13). (`externalId eq` already has
//! `idx_users_tenant_external`; its scan was the planner walking the id index, see
//! `ListSql::page_query`.)
//! - the live SCIM users of a tenant in id order, partial (`scim IS NOT NULL AND deleted_at IS
//!   NULL`, the list queries' own conditions), so a page at a deep `startIndex` skips index
//!   entries instead of table rows (an index-only scan on PostgreSQL), and a page with no filter
//!   is read in index order,
//! - on PostgreSQL, `text_pattern_ops` twins of the lower-cased userName and group displayName
//!   indexes: `sw` adds a byte-order range (`~>=~`/`~<~`) that only such an index serves
//!   (SQLite's BINARY indexes already compare bytes).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Same syntax on SQLite and PostgreSQL; sea-query has no partial index builder.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_users_scim_live ON users (tenant_id, id) \
                 WHERE scim IS NOT NULL AND deleted_at IS NULL",
            )
            .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            for sql in [
                "CREATE INDEX IF NOT EXISTS idx_users_tenant_username_pattern \
                 ON users (tenant_id, user_name_lower text_pattern_ops)",
                "CREATE INDEX IF NOT EXISTS idx_scim_groups_tenant_name_pattern \
                 ON scim_groups (tenant_id, display_name_lower text_pattern_ops)",
            ] {
                m.get_connection().execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // `DROP INDEX IF EXISTS name`: the same on both databases (index names are global).
        for name in ["idx_scim_groups_tenant_name_pattern", "idx_users_tenant_username_pattern", "idx_users_scim_live"]
        {
            m.get_connection().execute_unprepared(&format!("DROP INDEX IF EXISTS {name}")).await?;
        }
        Ok(())
    }
}
