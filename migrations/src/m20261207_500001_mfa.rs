//! MFA (issue 15): the app's requested `acr_values` on the pending login, and the `acr` a session
//! achieved (carried into tokens and refreshes). Both nullable: rows of an older binary have none
//! (a session without `acr` is `urn:fedgate:acr:basic`).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("logins"))
                .add_column(ColumnDef::new(Alias::new("acr_values")).string().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("sessions"))
                .add_column(ColumnDef::new(Alias::new("acr")).string().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Alias::new("sessions")).drop_column(Alias::new("acr")).to_owned()).await?;
        m.alter_table(Table::alter().table(Alias::new("logins")).drop_column(Alias::new("acr_values")).to_owned())
            .await?;
        Ok(())
    }
}
