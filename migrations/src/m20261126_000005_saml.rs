//! SAML: the assertion replay cache. One row per consumed assertion, keyed by (connection,
//! assertion ID), kept until the assertion could no longer be accepted anyway; the primary key
//! makes a replay fail on every instance at once.
use crate::schema_util::{idx, t};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            t("saml_assertions")
                .col(string("connection_id"))
                .col(string("assertion_id"))
                .col(big_integer("expires_at"))
                .col(big_integer("consumed_at"))
                .primary_key(Index::create().col("connection_id").col("assertion_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(idx("idx_saml_assertions_expires", "saml_assertions", &["expires_at"], false)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("saml_assertions").if_exists().to_owned()).await
    }
}
