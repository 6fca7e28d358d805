//! Queries on authorization codes (`auth_codes`): stored as hashes, single use.
use super::entities::auth_code;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A code to store (its hash only).
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code_hash: String,
    pub login_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewCode) -> Result<(), DbErr> {
    auth_code::ActiveModel {
        code_hash: Set(n.code_hash),
        login_id: Set(n.login_id),
        client_id: Set(n.client_id),
        redirect_uri: Set(n.redirect_uri),
        user_id: Set(n.user_id),
        session_id: Set(n.session_id),
        scope: Set(n.scope),
        nonce: Set(n.nonce),
        code_challenge: Set(n.code_challenge),
        auth_time: Set(n.auth_time),
        created_at: Set(n.created_at),
        expires_at: Set(n.expires_at),
        used_at: Set(None),
        grant_id: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Marks the unused code `code_hash` used at `now` by grant `grant_id` and returns it; `None`
/// when it is unknown or already used (one statement: a code is exchanged at most once).
pub async fn claim(
    db: &impl ConnectionTrait,
    code_hash: &str,
    now: i64,
    grant_id: &str,
) -> Result<Option<auth_code::Model>, DbErr> {
    let claimed = auth_code::Entity::update_many()
        .col_expr(auth_code::Column::UsedAt, now.into())
        .col_expr(auth_code::Column::GrantId, grant_id.into())
        .filter(auth_code::Column::CodeHash.eq(code_hash))
        .filter(auth_code::Column::UsedAt.is_null())
        .exec_with_returning(db)
        .await?;
    Ok(claimed.into_iter().next())
}

pub async fn get(db: &impl ConnectionTrait, code_hash: &str) -> Result<Option<auth_code::Model>, DbErr> {
    auth_code::Entity::find_by_id(code_hash.to_string()).one(db).await
}
