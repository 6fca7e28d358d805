//! The number of live SCIM users per tenant (`scim IS NOT NULL AND deleted_at IS NULL`), kept by
//! triggers in the same transaction as every write to `users`, so an unfiltered `GET /Users`
//! answers `totalResults` without counting a million index entries. PostgreSQL spreads a
//! tenant's count over 16 rows (a random one per change, summed on read) so concurrent creates
//! in one tenant do not queue on one row lock; SQLite has one writer and one row. Triggers
//! catch every path (SCIM, SSO adoption, admin deletes, tenant deletion), old binaries included.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PG_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS scim_user_counts (tenant_id varchar NOT NULL, shard integer NOT NULL, \
     n bigint NOT NULL, PRIMARY KEY (tenant_id, shard))",
    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
    "CREATE OR REPLACE FUNCTION fedgate_scim_user_count() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE was boolean := false; now_live boolean := false;
     BEGIN
       IF TG_OP <> 'INSERT' THEN was := OLD.scim IS NOT NULL AND OLD.deleted_at IS NULL; END IF;
       IF TG_OP <> 'DELETE' THEN now_live := NEW.scim IS NOT NULL AND NEW.deleted_at IS NULL; END IF;
       IF was AND (NOT now_live OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) THEN
         INSERT INTO scim_user_counts (tenant_id, shard, n) VALUES (OLD.tenant_id, floor(random() * 16)::int, -1)
           ON CONFLICT (tenant_id, shard) DO UPDATE SET n = scim_user_counts.n - 1;
       END IF;
       IF now_live AND (NOT was OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) THEN
         INSERT INTO scim_user_counts (tenant_id, shard, n) VALUES (NEW.tenant_id, floor(random() * 16)::int, 1)
           ON CONFLICT (tenant_id, shard) DO UPDATE SET n = scim_user_counts.n + 1;
       END IF;
       RETURN NULL;
     END $$",
    "DROP TRIGGER IF EXISTS users_scim_count ON users",
    "CREATE TRIGGER users_scim_count AFTER INSERT OR UPDATE OF scim, deleted_at, tenant_id OR DELETE ON users \
     FOR EACH ROW EXECUTE FUNCTION fedgate_scim_user_count()",
    "DELETE FROM scim_user_counts",
    "INSERT INTO scim_user_counts (tenant_id, shard, n) SELECT tenant_id, 0, COUNT(*) FROM users \
     WHERE scim IS NOT NULL AND deleted_at IS NULL GROUP BY tenant_id",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS scim_user_counts (tenant_id varchar NOT NULL, shard integer NOT NULL, \
     n bigint NOT NULL, PRIMARY KEY (tenant_id, shard))",
    "CREATE TRIGGER IF NOT EXISTS users_scim_count_ins AFTER INSERT ON users \
     WHEN NEW.scim IS NOT NULL AND NEW.deleted_at IS NULL BEGIN \
     INSERT INTO scim_user_counts (tenant_id, shard, n) VALUES (NEW.tenant_id, 0, 1) \
     ON CONFLICT (tenant_id, shard) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS users_scim_count_del AFTER DELETE ON users \
     WHEN OLD.scim IS NOT NULL AND OLD.deleted_at IS NULL BEGIN \
     INSERT INTO scim_user_counts (tenant_id, shard, n) VALUES (OLD.tenant_id, 0, -1) \
     ON CONFLICT (tenant_id, shard) DO UPDATE SET n = n - 1; END",
    "CREATE TRIGGER IF NOT EXISTS users_scim_count_upd AFTER UPDATE OF scim, deleted_at, tenant_id ON users \
     WHEN (OLD.scim IS NOT NULL AND OLD.deleted_at IS NULL) IS NOT (NEW.scim IS NOT NULL AND NEW.deleted_at IS NULL) \
     OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN \
     INSERT INTO scim_user_counts (tenant_id, shard, n) \
       SELECT OLD.tenant_id, 0, -1 WHERE OLD.scim IS NOT NULL AND OLD.deleted_at IS NULL \
       ON CONFLICT (tenant_id, shard) DO UPDATE SET n = n - 1; \
     INSERT INTO scim_user_counts (tenant_id, shard, n) \
       SELECT NEW.tenant_id, 0, 1 WHERE NEW.scim IS NOT NULL AND NEW.deleted_at IS NULL \
       ON CONFLICT (tenant_id, shard) DO UPDATE SET n = n + 1; END",
    "DELETE FROM scim_user_counts",
    "INSERT INTO scim_user_counts (tenant_id, shard, n) SELECT tenant_id, 0, COUNT(*) FROM users \
     WHERE scim IS NOT NULL AND deleted_at IS NULL GROUP BY tenant_id",
];

const PG_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS users_scim_count ON users",
    "DROP FUNCTION IF EXISTS fedgate_scim_user_count()",
    "DROP TABLE IF EXISTS scim_user_counts",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS users_scim_count_ins",
    "DROP TRIGGER IF EXISTS users_scim_count_del",
    "DROP TRIGGER IF EXISTS users_scim_count_upd",
    "DROP TABLE IF EXISTS scim_user_counts",
];

async fn run(m: &SchemaManager<'_>, pg: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let statements = if m.get_database_backend() == DbBackend::Postgres { pg } else { sqlite };
    for sql in statements {
        m.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, PG_UP, SQLITE_UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, PG_DOWN, SQLITE_DOWN).await
    }
}
