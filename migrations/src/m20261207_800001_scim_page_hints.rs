//! SCIM paging hints: where the last page of a list in id order ended, so that the next page
//! (`startIndex` = previous start + rows returned) is an index seek (`id > last`) instead of an
//! `OFFSET` that walks every earlier index entry. One row per (query, next start), short-lived;
//! `tenant_id` is kept for tenant clean-up.
use crate::schema_util::{idx, t};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            t("scim_page_hints")
                .col(ColumnDef::new("id").string().not_null().primary_key())
                .col(ColumnDef::new("tenant_id").string().not_null())
                .col(ColumnDef::new("last_id").string().not_null())
                .col(ColumnDef::new("expires_at").big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(idx("scim_page_hints_expires", "scim_page_hints", &["expires_at"], false)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("scim_page_hints").if_exists().to_owned()).await
    }
}
