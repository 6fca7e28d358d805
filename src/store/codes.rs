//! Queries on authorization codes (`auth_codes`): stored as hashes, single use.
use super::entities::auth_code;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

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
