//! The setup portal: setup links (sent by the vendor to a customer's IT admin; the token's hash
//! is stored, never the token) and the life of a connection made in the portal: `state` is
//! `draft` (never used for real logins or home-realm discovery) until a test sign-in passed with
//! its current configuration (`tested_version`) or an operator forced it `active`. Connections
//! made before are `active`.
use crate::schema_util::{idx, t};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            t("setup_links")
                .col(ColumnDef::new("id").string().not_null().primary_key())
                .col(ColumnDef::new("tenant_id").string().not_null())
                .col(ColumnDef::new("token_hash").string().not_null().unique_key())
                .col(ColumnDef::new("intents").string().not_null())
                .col(ColumnDef::new("created_by").string().not_null())
                .col(ColumnDef::new("expires_at").big_integer().not_null())
                .col(ColumnDef::new("revoked_at").big_integer().null())
                .col(ColumnDef::new("created_at").big_integer().not_null())
                .col(ColumnDef::new("last_used_at").big_integer().null())
                .col(ColumnDef::new("uses").big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(idx("setup_links_tenant", "setup_links", &["tenant_id", "id"], false)).await?;
        for (name, col) in [
            ("state", ColumnDef::new("state").string().not_null().default("active").to_owned()),
            ("tested_version", ColumnDef::new("tested_version").big_integer().null().to_owned()),
        ] {
            if !m.has_column("connections", name).await? {
                m.alter_table(Table::alter().table("connections").add_column(col).to_owned()).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["state", "tested_version"] {
            if m.has_column("connections", name).await? {
                m.alter_table(Table::alter().table("connections").drop_column(name).to_owned()).await?;
            }
        }
        m.drop_table(Table::drop().table("setup_links").if_exists().to_owned()).await
    }
}
