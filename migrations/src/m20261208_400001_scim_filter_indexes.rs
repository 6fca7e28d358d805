//! SCIM filters at a million users per tenant (issue 13, docs/performance.md "SCIM filters at
//! 10k / 100k / 1M users"):
//! - `meta.lastModified gt|ge|lt|le`: a partial index `(tenant_id, updated_at)` of live SCIM
//!   users (the list queries' own conditions).
//! - `emails.value eq` (and `emails[value eq]`, `co`, `sw`, `ew`): `scim_user_emails`, one row
//!   per (user, lower-cased email value) of every SCIM user's stored document, kept by
//!   triggers in the same transaction as every write to `users` (so an older binary during a
//!   rolling deploy keeps it right too), indexed `(tenant_id, value_lower)`. Before, every such
//!   filter parsed the JSON of every user of the tenant (12 s on PostgreSQL at 1M users).
//! - `co` (trigram indexes): on PostgreSQL, `pg_trgm` GIN indexes on `user_name_lower`,
//!   `external_id` and the email values, when the extension can be created (`pg_trgm` is a
//!   trusted extension from PostgreSQL 13: the database's owner may create it; otherwise a
//!   superuser runs `CREATE EXTENSION pg_trgm` and then this migration's `CREATE INDEX`
//!   statements by hand). Without it the migration succeeds and `co` scans, as before. On
//!   SQLite, FTS5 tables with the `trigram` tokenizer (external content: they store only the
//!   index) over `users (user_name_lower, external_id)` and the email values, kept by
//!   triggers.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const BOTH_UP: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS idx_users_scim_modified ON users (tenant_id, updated_at) \
     WHERE scim IS NOT NULL AND deleted_at IS NULL",
    "CREATE TABLE IF NOT EXISTS scim_user_emails (user_id varchar NOT NULL, tenant_id varchar NOT NULL, \
     value_lower varchar NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_scim_user_emails_value ON scim_user_emails (tenant_id, value_lower)",
    "CREATE INDEX IF NOT EXISTS idx_scim_user_emails_user ON scim_user_emails (user_id)",
];

const PG_UP: &[&str] = &[
    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
    // The lower-cased values of a stored document's emails (what the filter compares:
    // `lower(element #>> '{value}')`), once each.
    "CREATE OR REPLACE FUNCTION fedgate_scim_emails_of(doc text) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
       SELECT DISTINCT lower(x.v #>> '{value}')
       FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc::jsonb -> 'emails') = 'array'
                                      THEN doc::jsonb -> 'emails' ELSE '[]'::jsonb END) AS x(v)
       WHERE x.v #>> '{value}' IS NOT NULL $$",
    "CREATE OR REPLACE FUNCTION fedgate_scim_emails_ins() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO scim_user_emails (user_id, tenant_id, value_lower)
         SELECT n.id, n.tenant_id, v FROM fedgate_new_rows n, fedgate_scim_emails_of(n.scim) v WHERE n.scim IS NOT NULL;
       RETURN NULL;
     END $$",
    "CREATE OR REPLACE FUNCTION fedgate_scim_emails_upd() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       DELETE FROM scim_user_emails e USING fedgate_old_rows o JOIN fedgate_new_rows n ON n.id = o.id
         WHERE e.user_id = o.id AND (o.scim IS DISTINCT FROM n.scim OR o.tenant_id IS DISTINCT FROM n.tenant_id);
       INSERT INTO scim_user_emails (user_id, tenant_id, value_lower)
         SELECT n.id, n.tenant_id, v
         FROM fedgate_new_rows n JOIN fedgate_old_rows o ON o.id = n.id, fedgate_scim_emails_of(n.scim) v
         WHERE n.scim IS NOT NULL AND (o.scim IS DISTINCT FROM n.scim OR o.tenant_id IS DISTINCT FROM n.tenant_id);
       RETURN NULL;
     END $$",
    "CREATE OR REPLACE FUNCTION fedgate_scim_emails_del() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       DELETE FROM scim_user_emails e USING fedgate_old_rows o WHERE e.user_id = o.id;
       RETURN NULL;
     END $$",
    "DROP TRIGGER IF EXISTS users_scim_emails_ins ON users",
    "DROP TRIGGER IF EXISTS users_scim_emails_upd ON users",
    "DROP TRIGGER IF EXISTS users_scim_emails_del ON users",
    "CREATE TRIGGER users_scim_emails_ins AFTER INSERT ON users REFERENCING NEW TABLE AS fedgate_new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_emails_ins()",
    "CREATE TRIGGER users_scim_emails_upd AFTER UPDATE ON users \
     REFERENCING OLD TABLE AS fedgate_old_rows NEW TABLE AS fedgate_new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_emails_upd()",
    "CREATE TRIGGER users_scim_emails_del AFTER DELETE ON users REFERENCING OLD TABLE AS fedgate_old_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION fedgate_scim_emails_del()",
    "DELETE FROM scim_user_emails",
    "INSERT INTO scim_user_emails (user_id, tenant_id, value_lower) \
     SELECT u.id, u.tenant_id, v FROM users u, fedgate_scim_emails_of(u.scim) v WHERE u.scim IS NOT NULL",
    // A failure inside the block (no permission, no contrib package) is caught there: the
    // migration's transaction goes on without the trigram indexes.
    "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; \
     EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm unavailable (%): SCIM co filters scan the tenant', SQLERRM; END $$",
    "DO $$ BEGIN
       IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
         EXECUTE 'CREATE INDEX IF NOT EXISTS idx_users_username_trgm ON users USING gin (user_name_lower gin_trgm_ops)';
         EXECUTE 'CREATE INDEX IF NOT EXISTS idx_users_external_trgm ON users USING gin (external_id gin_trgm_ops)';
         EXECUTE 'CREATE INDEX IF NOT EXISTS idx_scim_user_emails_trgm ON scim_user_emails USING gin (value_lower gin_trgm_ops)';
       END IF;
     END $$",
];

/// The email values of a stored document (of `NEW`, or of every user `u`), as the filter
/// compares them (`lower(json_extract(element, '$.value'))`), once each. Elements that are not
/// objects have no value, as on PostgreSQL (`json_extract` is only given objects).
fn sqlite_emails_of(row: &str) -> String {
    let from = if row == "u" { "users u, " } else { "" };
    let value = "(CASE WHEN j.type = 'object' THEN json_extract(j.value, '$.value') END)";
    format!(
        "SELECT DISTINCT {row}.id, {row}.tenant_id, lower({value}) FROM {from}json_each(CASE WHEN json_valid({row}.scim) \
         AND json_type({row}.scim, '$.emails') = 'array' THEN {row}.scim ELSE '{{\"emails\":[]}}' END, '$.emails') j \
         WHERE {row}.scim IS NOT NULL AND {value} IS NOT NULL"
    )
}

fn sqlite_up() -> Vec<String> {
    let mut v: Vec<String> = vec![
        format!(
            "CREATE TRIGGER IF NOT EXISTS users_scim_emails_ins AFTER INSERT ON users WHEN NEW.scim IS NOT NULL BEGIN \
             INSERT INTO scim_user_emails (user_id, tenant_id, value_lower) {}; END",
            sqlite_emails_of("NEW")
        ),
        "CREATE TRIGGER IF NOT EXISTS users_scim_emails_del AFTER DELETE ON users BEGIN \
         DELETE FROM scim_user_emails WHERE user_id = OLD.id; END"
            .into(),
        format!(
            "CREATE TRIGGER IF NOT EXISTS users_scim_emails_upd AFTER UPDATE OF scim, tenant_id, id ON users \
             WHEN OLD.scim IS NOT NEW.scim OR OLD.tenant_id IS NOT NEW.tenant_id OR OLD.id IS NOT NEW.id BEGIN \
             DELETE FROM scim_user_emails WHERE user_id = OLD.id; \
             INSERT INTO scim_user_emails (user_id, tenant_id, value_lower) {}; END",
            sqlite_emails_of("NEW")
        ),
        "DELETE FROM scim_user_emails".into(),
        format!("INSERT INTO scim_user_emails (user_id, tenant_id, value_lower) {}", sqlite_emails_of("u")),
    ];
    v.extend(
        [
            // External content: the FTS tables store only their index; `rowid` is the row's.
            "CREATE VIRTUAL TABLE IF NOT EXISTS scim_users_trgm USING fts5(user_name_lower, external_id, \
             content='users', content_rowid='rowid', tokenize='trigram')",
            "CREATE TRIGGER IF NOT EXISTS users_trgm_ins AFTER INSERT ON users BEGIN \
             INSERT INTO scim_users_trgm (rowid, user_name_lower, external_id) \
             VALUES (NEW.rowid, NEW.user_name_lower, NEW.external_id); END",
            "CREATE TRIGGER IF NOT EXISTS users_trgm_del AFTER DELETE ON users BEGIN \
             INSERT INTO scim_users_trgm (scim_users_trgm, rowid, user_name_lower, external_id) \
             VALUES ('delete', OLD.rowid, OLD.user_name_lower, OLD.external_id); END",
            "CREATE TRIGGER IF NOT EXISTS users_trgm_upd AFTER UPDATE OF user_name_lower, external_id ON users \
             WHEN OLD.user_name_lower IS NOT NEW.user_name_lower OR OLD.external_id IS NOT NEW.external_id BEGIN \
             INSERT INTO scim_users_trgm (scim_users_trgm, rowid, user_name_lower, external_id) \
             VALUES ('delete', OLD.rowid, OLD.user_name_lower, OLD.external_id); \
             INSERT INTO scim_users_trgm (rowid, user_name_lower, external_id) \
             VALUES (NEW.rowid, NEW.user_name_lower, NEW.external_id); END",
            "INSERT INTO scim_users_trgm (scim_users_trgm) VALUES ('rebuild')",
            "CREATE VIRTUAL TABLE IF NOT EXISTS scim_user_emails_trgm USING fts5(value_lower, \
             content='scim_user_emails', content_rowid='rowid', tokenize='trigram')",
            "CREATE TRIGGER IF NOT EXISTS scim_user_emails_trgm_ins AFTER INSERT ON scim_user_emails BEGIN \
             INSERT INTO scim_user_emails_trgm (rowid, value_lower) VALUES (NEW.rowid, NEW.value_lower); END",
            "CREATE TRIGGER IF NOT EXISTS scim_user_emails_trgm_del AFTER DELETE ON scim_user_emails BEGIN \
             INSERT INTO scim_user_emails_trgm (scim_user_emails_trgm, rowid, value_lower) \
             VALUES ('delete', OLD.rowid, OLD.value_lower); END",
            "INSERT INTO scim_user_emails_trgm (scim_user_emails_trgm) VALUES ('rebuild')",
        ]
        .map(String::from),
    );
    v
}

const PG_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS users_scim_emails_ins ON users",
    "DROP TRIGGER IF EXISTS users_scim_emails_upd ON users",
    "DROP TRIGGER IF EXISTS users_scim_emails_del ON users",
    "DROP FUNCTION IF EXISTS fedgate_scim_emails_ins()",
    "DROP FUNCTION IF EXISTS fedgate_scim_emails_upd()",
    "DROP FUNCTION IF EXISTS fedgate_scim_emails_del()",
    "DROP FUNCTION IF EXISTS fedgate_scim_emails_of(text)",
    "DROP INDEX IF EXISTS idx_users_username_trgm",
    "DROP INDEX IF EXISTS idx_users_external_trgm",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS users_scim_emails_ins",
    "DROP TRIGGER IF EXISTS users_scim_emails_upd",
    "DROP TRIGGER IF EXISTS users_scim_emails_del",
    "DROP TRIGGER IF EXISTS users_trgm_ins",
    "DROP TRIGGER IF EXISTS users_trgm_del",
    "DROP TRIGGER IF EXISTS users_trgm_upd",
    "DROP TRIGGER IF EXISTS scim_user_emails_trgm_ins",
    "DROP TRIGGER IF EXISTS scim_user_emails_trgm_del",
    "DROP TABLE IF EXISTS scim_users_trgm",
    "DROP TABLE IF EXISTS scim_user_emails_trgm",
];

const BOTH_DOWN: &[&str] = &["DROP TABLE IF EXISTS scim_user_emails", "DROP INDEX IF EXISTS idx_users_scim_modified"];

async fn run(m: &SchemaManager<'_>, statements: &[String]) -> Result<(), DbErr> {
    for sql in statements {
        m.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| String::from(*x)).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, &strings(BOTH_UP)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            run(m, &strings(PG_UP)).await
        } else {
            run(m, &sqlite_up()).await
        }
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            run(m, &strings(PG_DOWN)).await?;
        } else {
            run(m, &strings(SQLITE_DOWN)).await?;
        }
        run(m, &strings(BOTH_DOWN)).await
    }
}
