//! Upstream OpenID Connect: login traces ("why did my login fail?"). One row per login attempt,
//! keyed by the login id; steps are a JSON array. Times are Unix seconds, steps carry ms.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("login_traces")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("sort_key"))
                .col(string_null("tenant_id"))
                .col(string_null("connection_id"))
                .col(string("client_id"))
                .col(string("status"))
                .col(string_null("error_code"))
                .col(text_null("cause"))
                .col(text_null("fix"))
                .col(text("steps"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("idx_traces_tenant", vec!["tenant_id", "sort_key"]),
            ("idx_traces_sort", vec!["sort_key"]),
            ("idx_traces_created", vec!["created_at"]),
        ] {
            let mut i = Index::create();
            i.name(name).table("login_traces").if_not_exists();
            for c in cols {
                i.col(c);
            }
            m.create_index(i.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("login_traces").if_exists().to_owned()).await
    }
}
