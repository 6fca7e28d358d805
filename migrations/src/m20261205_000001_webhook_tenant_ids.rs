//! Webhook endpoints scoped by tenant: earlier versions stored the tenant exactly as given at
//! creation, slug or id, but events carry the tenant id, so an endpoint created with a slug never
//! received an event. Such endpoints get their tenant's id (the API now stores ids only).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "UPDATE webhook_endpoints SET tenant_id = \
                   (SELECT t.id FROM tenants t WHERE t.slug = LOWER(webhook_endpoints.tenant_id)) \
                 WHERE tenant_id IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = webhook_endpoints.tenant_id) \
                   AND EXISTS (SELECT 1 FROM tenants t WHERE t.slug = LOWER(webhook_endpoints.tenant_id))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        // Ids are what the API stores from now on; there is nothing to undo.
        Ok(())
    }
}
