//! fedgate's database migrations. One file per migration; every migration runs on SQLite and
//! PostgreSQL. SQLite cannot alter columns or foreign keys, so tables are shaped right the first
//! time and later migrations only add tables, columns and indexes.
#![forbid(unsafe_code)]
pub use sea_orm_migration::prelude::*;

mod schema_util;

mod m20261126_000001_foundation;
mod m20261126_000002_upstream_oidc;
mod m20261126_000003_scim;
mod m20261126_000004_events;
mod m20261126_000005_saml;
mod m20261127_000001_email_trust;
mod m20261205_000001_webhook_tenant_ids;
mod m20261205_000002_ui_sessions;
mod m20261206_100001_setup_links;
mod m20261206_200001_domain_claims;
mod m20261206_300001_console;
mod m20261206_400001_scim_growth_indexes;
mod m20261206_500001_retention_indexes;
mod m20261206_500002_admin_key_scopes;
mod m20261207_400001_machine_clients;
mod m20261207_500001_mfa;
mod m20261207_600001_claim_configs;
mod m20261207_800001_scim_page_hints;
mod m20261207_800002_scim_user_counts;
mod m20261208_100001_client_default_tenant;
mod m20261208_200001_keyset_page_indexes;
mod m20261208_400001_scim_filter_indexes;
mod m20261209_100001_console_filter_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_upstream_oidc::Migration),
            Box::new(m20261126_000003_scim::Migration),
            Box::new(m20261126_000004_events::Migration),
            Box::new(m20261126_000005_saml::Migration),
            Box::new(m20261127_000001_email_trust::Migration),
            Box::new(m20261205_000001_webhook_tenant_ids::Migration),
            Box::new(m20261205_000002_ui_sessions::Migration),
            Box::new(m20261206_100001_setup_links::Migration),
            Box::new(m20261206_200001_domain_claims::Migration),
            Box::new(m20261206_300001_console::Migration),
            Box::new(m20261206_400001_scim_growth_indexes::Migration),
            Box::new(m20261206_500001_retention_indexes::Migration),
            Box::new(m20261206_500002_admin_key_scopes::Migration),
            Box::new(m20261207_400001_machine_clients::Migration),
            Box::new(m20261207_500001_mfa::Migration),
            Box::new(m20261207_600001_claim_configs::Migration),
            Box::new(m20261207_800001_scim_page_hints::Migration),
            Box::new(m20261207_800002_scim_user_counts::Migration),
            Box::new(m20261208_100001_client_default_tenant::Migration),
            Box::new(m20261208_200001_keyset_page_indexes::Migration),
            Box::new(m20261208_400001_scim_filter_indexes::Migration),
            Box::new(m20261209_100001_console_filter_indexes::Migration),
        ]
    }
}
