//! Queries on `ui_sessions` (setup portal and console sessions).
use super::entities::ui_session::{self, Model, UiKind};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewUiSession {
    pub id: String,
    pub kind: UiKind,
    pub cookie_hash: String,
    pub subject: String,
    pub tenant_id: Option<String>,
    pub grants: String,
    pub now: i64,
    pub idle_secs: i64,
    pub ttl_secs: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewUiSession) -> Result<Model, DbErr> {
    ui_session::ActiveModel {
        id: Set(n.id),
        kind: Set(n.kind),
        cookie_hash: Set(n.cookie_hash),
        subject: Set(n.subject),
        tenant_id: Set(n.tenant_id),
        grants: Set(n.grants),
        created_at: Set(n.now),
        last_seen_at: Set(n.now),
        idle_expires_at: Set(n.now + n.idle_secs),
        expires_at: Set(n.now + n.ttl_secs),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// The live session of `kind` whose cookie hashes to `cookie_hash`.
pub async fn live(
    db: &impl ConnectionTrait,
    kind: UiKind,
    cookie_hash: &str,
    now: i64,
) -> Result<Option<Model>, DbErr> {
    Ok(ui_session::Entity::find()
        .filter(ui_session::Column::CookieHash.eq(cookie_hash))
        .filter(ui_session::Column::Kind.eq(kind))
        .one(db)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now && s.idle_expires_at > now))
}

/// Records activity (pushes the idle deadline), at most as often as the caller decides.
pub async fn touch(db: &impl ConnectionTrait, id: &str, now: i64, idle_secs: i64) -> Result<(), DbErr> {
    ui_session::Entity::update_many()
        .col_expr(ui_session::Column::LastSeenAt, now.into())
        .col_expr(ui_session::Column::IdleExpiresAt, (now + idle_secs).into())
        .filter(ui_session::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends one session.
pub async fn revoke(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    ui_session::Entity::update_many()
        .col_expr(ui_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(ui_session::Column::Id.eq(id))
        .filter(ui_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of `kind` opened for `subject` (a revoked setup link, a removed operator).
pub async fn revoke_subject(db: &impl ConnectionTrait, kind: UiKind, subject: &str, now: i64) -> Result<u64, DbErr> {
    Ok(ui_session::Entity::update_many()
        .col_expr(ui_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(ui_session::Column::Kind.eq(kind))
        .filter(ui_session::Column::Subject.eq(subject))
        .filter(ui_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Removes sessions that ended (expired or revoked) more than a day ago, in bounded batches.
pub async fn prune(db: &impl ConnectionTrait, now: i64) -> Result<u64, DbErr> {
    let ended = sea_orm::Condition::any()
        .add(ui_session::Column::ExpiresAt.lt(now - 86_400))
        .add(ui_session::Column::IdleExpiresAt.lt(now - 86_400))
        .add(ui_session::Column::RevokedAt.lt(now - 86_400));
    super::cleanup::delete_batched::<ui_session::Entity, _>(db, ui_session::Column::Id, ended).await
}

/// A session by id (live or not).
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    ui_session::Entity::find_by_id(id.to_string()).one(db).await
}
