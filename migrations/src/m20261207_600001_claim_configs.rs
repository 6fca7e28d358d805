//! Claims the app defines: per tenant and per client claim rules (a typed JSON rule set) and a
//! tenant's token hook (URL, sealed signing secret, time budget, failure policy, namespace).
//! One row per owner: `owner_id` is a tenant id (`org_…`) or a client id (`cli_…`). A new
//! table: older binaries never read it.
use crate::schema_util::t;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            t("claim_configs")
                .col(ColumnDef::new("owner_id").string().not_null().primary_key())
                .col(ColumnDef::new("rules").text().null())
                .col(ColumnDef::new("token_hook").text().null())
                .col(ColumnDef::new("updated_at").big_integer().not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("claim_configs").if_exists().to_owned()).await
    }
}
