//! The operator console: the operators (who may use `/console`, with which role), and login
//! traces searchable by email.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("operators")
                .if_not_exists()
                .col(ColumnDef::new("id").string().not_null().primary_key())
                .col(ColumnDef::new("email").string().not_null().unique_key())
                .col(ColumnDef::new("role").string().not_null())
                .col(ColumnDef::new("created_at").big_integer().not_null())
                .col(ColumnDef::new("updated_at").big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table("login_traces").add_column(ColumnDef::new("email").string().null()).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("login_traces_email")
                .table("login_traces")
                .col("email")
                .col("sort_key")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("login_traces_status")
                .table("login_traces")
                .col("status")
                .col("sort_key")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("login_traces_status").table("login_traces").to_owned()).await?;
        m.drop_index(Index::drop().name("login_traces_email").table("login_traces").to_owned()).await?;
        m.alter_table(Table::alter().table("login_traces").drop_column("email").to_owned()).await?;
        m.drop_table(Table::drop().table("operators").if_exists().to_owned()).await
    }
}
