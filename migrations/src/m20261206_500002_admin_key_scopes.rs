//! Admin key scopes: `scope` is `full` or `read_only`; `tenant_id`, when set, confines the key
//! to that tenant's routes. Existing keys stay full and global.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("admin_keys"))
                .add_column(ColumnDef::new(Alias::new("scope")).string().not_null().default("full"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("admin_keys"))
                .add_column(ColumnDef::new(Alias::new("tenant_id")).string().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in ["tenant_id", "scope"] {
            m.alter_table(Table::alter().table(Alias::new("admin_keys")).drop_column(Alias::new(col)).to_owned())
                .await?;
        }
        Ok(())
    }
}
