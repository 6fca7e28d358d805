//! Queries on fedgate's own browser sessions (`sessions`).
use super::entities::session::{self, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub cookie_hash: String,
    pub user_id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewSession) -> Result<Model, DbErr> {
    session::ActiveModel {
        id: Set(n.id),
        cookie_hash: Set(n.cookie_hash),
        user_id: Set(n.user_id),
        tenant_id: Set(n.tenant_id),
        connection_id: Set(n.connection_id),
        auth_time: Set(n.auth_time),
        amr: Set(crate::util::to_json_list(&n.amr)),
        created_at: Set(n.created_at),
        expires_at: Set(n.expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// The session whose cookie hashes to `cookie_hash`, if it is live at `now`.
pub async fn live_by_cookie(db: &impl ConnectionTrait, cookie_hash: &str, now: i64) -> Result<Option<Model>, DbErr> {
    Ok(session::Entity::find()
        .filter(session::Column::CookieHash.eq(cookie_hash))
        .one(db)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now))
}
