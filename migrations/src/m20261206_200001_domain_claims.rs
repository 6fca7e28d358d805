//! Domain claims of the setup portal: a tenant claims an email domain and proves it with a DNS
//! TXT record. A verified claim adds the domain to `tenant_domains` (what home-realm discovery
//! and email trust read); a pending claim is trusted for nothing.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("domain_claims")
                .if_not_exists()
                .col(ColumnDef::new("id").string().not_null().primary_key())
                .col(ColumnDef::new("tenant_id").string().not_null())
                .col(ColumnDef::new("domain").string().not_null())
                .col(ColumnDef::new("challenge").string().not_null())
                .col(ColumnDef::new("created_by").string().not_null())
                .col(ColumnDef::new("created_at").big_integer().not_null())
                .col(ColumnDef::new("checks").integer().not_null().default(0))
                .col(ColumnDef::new("last_checked_at").big_integer().null())
                .col(ColumnDef::new("last_result").text().null())
                .col(ColumnDef::new("next_check_at").big_integer().null())
                .col(ColumnDef::new("verified_at").big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("domain_claims_tenant_domain")
                .table("domain_claims")
                .col("tenant_id")
                .col("domain")
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("domain_claims_due")
                .table("domain_claims")
                .col("next_check_at")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("domain_claims").if_exists().to_owned()).await
    }
}
