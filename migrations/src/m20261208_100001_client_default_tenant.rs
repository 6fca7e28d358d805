//! A per-app default tenant for self-serve sign-ups (issue 15): a login of this client whose
//! person has no enterprise tenant (an email at a domain no tenant has, or a social button on the
//! email page) goes to this tenant's social connections. Nullable: existing clients keep their
//! behaviour and an older binary ignores the column.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("clients"))
                .add_column(ColumnDef::new(Alias::new("default_tenant_id")).string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Alias::new("clients")).drop_column(Alias::new("default_tenant_id")).to_owned(),
        )
        .await
    }
}
