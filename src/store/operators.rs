//! Queries on `operators` (the console's operators and their roles).
use super::entities::operator::{self, Model, OperatorRole};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// The operator with this (lowercased) email.
pub async fn by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<Model>, DbErr> {
    operator::Entity::find().filter(operator::Column::Email.eq(email)).one(db).await
}

/// Creates the operator, or sets the role of an existing one.
pub async fn upsert(
    db: &impl ConnectionTrait,
    id: &str,
    email: &str,
    role: OperatorRole,
    now: i64,
) -> Result<Model, DbErr> {
    operator::Entity::insert(operator::ActiveModel {
        id: Set(id.to_string()),
        email: Set(email.to_string()),
        role: Set(role),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(operator::Column::Email)
            .update_columns([operator::Column::Role, operator::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    by_email(db, email).await?.ok_or_else(|| DbErr::RecordNotFound(format!("operator {email}")))
}

/// Every operator, by email (a short list).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    operator::Entity::find().order_by_asc(operator::Column::Email).all(db).await
}
