//! Indexes that let retention prune finished deliveries, their attempts and the SCIM request log
//! in small batches by age, without scanning the table.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn idx(name: &str, table: &str, col: &str) -> IndexCreateStatement {
    Index::create().name(name).table(Alias::new(table)).col(Alias::new(col)).if_not_exists().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(idx("idx_scim_requests_created", "scim_requests", "created_at")).await?;
        m.create_index(idx("idx_deliveries_finished", "deliveries", "finished_at")).await?;
        m.create_index(idx("idx_attempts_at", "delivery_attempts", "at")).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("idx_scim_requests_created", "scim_requests"),
            ("idx_deliveries_finished", "deliveries"),
            ("idx_attempts_at", "delivery_attempts"),
        ] {
            m.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}
