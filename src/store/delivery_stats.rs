//! Figures on the webhook delivery queue for `/metrics`.
use super::entities::delivery;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

/// How many deliveries are pending, and when the oldest of them was created.
pub async fn pending(db: &impl ConnectionTrait) -> (Result<u64, DbErr>, Result<Option<i64>, DbErr>) {
    let q = delivery::Entity::find().filter(delivery::Column::Status.eq(delivery::PENDING));
    let count = q.clone().count(db).await;
    let oldest = q.order_by_asc(delivery::Column::CreatedAt).one(db).await.map(|d| d.map(|d| d.created_at));
    (count, oldest)
}
