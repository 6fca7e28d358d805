//! Queries on `clients` (the apps that trust fedgate) used outside the admin API.
use super::entities::client;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QuerySelect};

/// An app's display name.
pub async fn name_of(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    client::Entity::find_by_id(id.to_string())
        .select_only()
        .column(client::Column::Name)
        .into_tuple::<String>()
        .one(db)
        .await
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<client::Model>, DbErr> {
    client::Entity::find_by_id(id.to_string()).one(db).await
}
