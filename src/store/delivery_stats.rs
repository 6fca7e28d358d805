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

/// Pending webhook deliveries per endpoint: (endpoint id, how many, when the oldest was
/// created). One grouped query (the pending deliveries are few: they are sent within seconds).
pub async fn pending_by_webhook(db: &impl ConnectionTrait) -> Result<Vec<(String, u64, i64)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::QuerySelect;
    let rows: Vec<(String, i64, Option<i64>)> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::TargetId)
        .column_as(Expr::col(delivery::Column::Id).count(), "n")
        .column_as(Expr::col(delivery::Column::CreatedAt).min(), "oldest")
        .filter(delivery::Column::Status.eq(delivery::PENDING))
        .filter(delivery::Column::Kind.eq("webhook"))
        .group_by(delivery::Column::TargetId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(t, n, oldest)| (t, u64::try_from(n).unwrap_or(0), oldest.unwrap_or(0))).collect())
}
