//! The `admin_keys` table (admin API keys, stored as SHA-256 hashes).
use super::entities::admin_key::{self, Model};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// The key with this hash, revoked or not.
pub async fn find_by_hash(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<Model>, DbErr> {
    admin_key::Entity::find().filter(admin_key::Column::TokenHash.eq(token_hash)).one(db).await
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    admin_key::Entity::find_by_id(id.to_string()).one(db).await
}

/// Every key, newest first (a deployment has a handful).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    admin_key::Entity::find()
        .order_by_desc(admin_key::Column::CreatedAt)
        .order_by_desc(admin_key::Column::Id)
        .all(db)
        .await
}

/// Records a key's use.
pub async fn touch(db: &impl ConnectionTrait, key: Model, now: i64) -> Result<(), DbErr> {
    let mut m: admin_key::ActiveModel = key.into();
    m.last_used_at = Set(Some(now));
    m.update(db).await?;
    Ok(())
}

/// Revokes a key (once; the first revocation time stands). `false`: no such live key.
pub async fn revoke(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<bool, DbErr> {
    let r = admin_key::Entity::update_many()
        .col_expr(admin_key::Column::RevokedAt, Expr::value(now))
        .filter(admin_key::Column::Id.eq(id))
        .filter(admin_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// A new key's row.
#[derive(Debug, Clone)]
pub struct NewAdminKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scope: &'a str,
    pub tenant_id: Option<&'a str>,
    pub now: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewAdminKey<'_>) -> Result<Model, DbErr> {
    admin_key::ActiveModel {
        id: Set(n.id.to_string()),
        name: Set(n.name.to_string()),
        token_hash: Set(n.token_hash.to_string()),
        created_at: Set(n.now),
        last_used_at: Set(None),
        revoked_at: Set(None),
        scope: Set(n.scope.to_string()),
        tenant_id: Set(n.tenant_id.map(str::to_string)),
    }
    .insert(db)
    .await
}
