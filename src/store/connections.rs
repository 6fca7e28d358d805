//! Queries on `connections` used on the login path.
use super::entities::connection::{self, Model};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    connection::Entity::find_by_id(id.to_string()).one(db).await
}

/// The enabled connections of a tenant, in id (creation) order.
pub async fn enabled_of_tenant(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<Model>, DbErr> {
    connection::Entity::find()
        .filter(connection::Column::TenantId.eq(tenant_id))
        .filter(connection::Column::Enabled.eq(true))
        .order_by_asc(connection::Column::Id)
        .all(db)
        .await
}
