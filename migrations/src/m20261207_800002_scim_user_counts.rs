//! The number of live SCIM users per tenant (`scim IS NOT NULL AND deleted_at IS NULL`), kept by
//! triggers in the same transaction as every write to `users`, so an unfiltered `GET /Users`
//! answers `totalResults` without counting a million index entries. PostgreSQL spreads a
//! tenant's count over 16 rows (a random one per change, summed on read) so concurrent creates
//! in one tenant do not queue on one row lock; PostgreSQL's triggers are per statement (transition
//! tables), SQLite's per row (it updates a row in place). SQLite has one writer and one row. Triggers
//! catch every path (SCIM, SSO adoption, admin deletes, tenant deletion), old binaries included.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PG_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS scim_user_counts (tenant_id varchar NOT NULL, shard integer NOT NULL, \
     n bigint NOT NULL, PRIMARY KEY (tenant_id, shard))",
    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
    // Statement-level triggers over transition tables: one change per tenant and statement, so
    // a statement touching a million rows (a tenant deleted) adds one row version, not a million.
    "CREATE OR REPLACE FUNCTION fedgate_scim_user_count() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO scim_user_counts (tenant_id, shard, n)
         SELECT tenant_id, floor(random() * 16)::int, SUM(d) FROM (
           SELECT tenant_id, 1 AS d FROM fedgate_new_rows WHERE scim IS NOT NULL AND deleted_at IS NULL
           UNION ALL
           SELECT tenant_id, -1 AS d FROM fedgate_old_rows WHERE scim IS NOT NULL AND deleted_at IS NULL
         ) c GROUP BY tenant_id HAVING SUM(d) <> 0
         ON CONFLICT (tenant_id, shard) DO UPDATE SET n = scim_user_counts.n + EXCLUDED.n;
       RETURN NULL;
     END $$",
    "CREATE OR REPLACE FUNCTION fedgate_scim_user_count_ins() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO scim_user_counts (tenant_id, shard, n)
         SELECT tenant_id, floor(random() * 16)::int, COUNT(*) FROM fedgate_new_rows
         WHERE scim IS NOT NULL AND deleted_at IS NULL GROUP BY tenant_id
         ON CONFLICT (tenant_id, shard) DO UPDATE SET n = scim_user_counts.n + EXCLUDED.n;
       RETURN NULL;
     END $$",
    "CREATE OR REPLACE FUNCTION fedgate_scim_user_count_del() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO scim_user_counts (tenant_id, shard, n)
         SELECT tenant_id, floor(random() * 16)::int, -COUNT(*) FROM fedgate_old_rows
         WHERE scim IS NOT NULL AND deleted_at IS NULL GROUP BY tenant_id
         ON CONFLICT (tenant_id, shard) DO UPDATE SET n = scim_user_counts.n + EXCLUDED.n;
       RETURN NULL;
     END $$",
    "DROP TRIGGER IF EXISTS users_scim_count_ins ON users",
    "DROP TRIGGER IF EXISTS users_scim_count_upd ON users",
    "DROP TRIGGER IF EXISTS users_scim_count_del ON users",
    "CREATE TRIGGER users_scim_count_ins AFTER INSERT ON users REFERENCING NEW TABLE AS fedgate_new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_user_count_ins()",
    "CREATE TRIGGER users_scim_count_upd AFTER UPDATE ON users \
     REFERENCING OLD TABLE AS fedgate_old_rows NEW TABLE AS fedgate_new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_user_count()",
    "CREATE TRIGGER users_scim_count_del AFTER DELETE ON users REFERENCING OLD TABLE AS fedgate_old_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_user_count_del()",
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
    "DROP TRIGGER IF EXISTS users_scim_count_ins ON users",
    "DROP TRIGGER IF EXISTS users_scim_count_upd ON users",
    "DROP TRIGGER IF EXISTS users_scim_count_del ON users",
    "DROP FUNCTION IF EXISTS fedgate_scim_user_count()",
    "DROP FUNCTION IF EXISTS fedgate_scim_user_count_ins()",
    "DROP FUNCTION IF EXISTS fedgate_scim_user_count_del()",
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
