//! Queries on `connections` used on the login path.
use super::entities::connection::{self, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

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

/// Every SAML connection (enabled or not).
pub async fn saml(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    connection::Entity::find().filter(connection::Column::ConnType.eq("saml")).all(db).await
}

/// Stores a connection's config. With `changed_at`, the version goes up (cached connectors of
/// the old version are reopened) and `updated_at` is set.
pub async fn set_config(
    db: &impl ConnectionTrait,
    row: &Model,
    config: String,
    changed_at: Option<i64>,
) -> Result<Model, DbErr> {
    let mut m: connection::ActiveModel = row.clone().into();
    m.config = Set(config);
    if let Some(now) = changed_at {
        m.version = Set(row.version + 1);
        m.updated_at = Set(now);
    }
    m.update(db).await
}
