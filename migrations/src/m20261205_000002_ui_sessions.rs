//! Browser sessions of fedgate's own pages for people who are not signing in to an app: the
//! customer's IT admin in the setup portal (opened by a setup link) and the vendor's operator in
//! the console. The cookie's hash is stored, never the cookie.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ui_sessions")
                .if_not_exists()
                .col(ColumnDef::new("id").string().not_null().primary_key())
                .col(ColumnDef::new("kind").string().not_null())
                .col(ColumnDef::new("cookie_hash").string().not_null().unique_key())
                .col(ColumnDef::new("subject").string().not_null())
                .col(ColumnDef::new("tenant_id").string().null())
                .col(ColumnDef::new("grants").text().not_null())
                .col(ColumnDef::new("created_at").big_integer().not_null())
                .col(ColumnDef::new("last_seen_at").big_integer().not_null())
                .col(ColumnDef::new("idle_expires_at").big_integer().not_null())
                .col(ColumnDef::new("expires_at").big_integer().not_null())
                .col(ColumnDef::new("revoked_at").big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ui_sessions_subject")
                .table("ui_sessions")
                .col("kind")
                .col("subject")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ui_sessions_expires")
                .table("ui_sessions")
                .col("expires_at")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("ui_sessions").if_exists().to_owned()).await
    }
}
