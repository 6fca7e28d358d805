//! Ending fedgate's browser sessions: sign-out, deactivation, deletion, an admin's request.
//! Ending a session revokes every grant made under it, queues back-channel logout tokens and
//! emits `session.revoked`, all in the caller's transaction.
use crate::clock::Rng;
use crate::store::conn::{DbErr, Tx};
use crate::store::entities::session;
use crate::store::{grants, sessions};

/// Ends these sessions (see the module doc); returns how many.
async fn end_sessions(
    tx: &Tx,
    rng: &dyn Rng,
    ended: Vec<session::Model>,
    reason: &str,
    now: i64,
) -> Result<usize, DbErr> {
    let ids: Vec<String> = ended.iter().map(|s| s.id.clone()).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    sessions::revoke(tx, &ids, now).await?;
    grants::revoke_all(tx, grants::Of::Sessions(&ids), reason, now).await?;
    crate::events::backchannel::enqueue(tx, rng, now, &ids).await?;
    // One `session.revoked` per session, in order, written per run of one tenant's sessions (a
    // user's are all of one tenant) in multi-row statements.
    for run in ended.chunk_by(|a, b| a.tenant_id == b.tenant_id) {
        let data: Vec<serde_json::Value> = run
            .iter()
            .map(|s| {
                serde_json::json!({"session_id": s.id, "user_id": s.user_id, "tenant_id": s.tenant_id, "reason": reason})
            })
            .collect();
        let tenant = run.first().map(|s| s.tenant_id.as_str());
        match <[serde_json::Value; 1]>::try_from(data) {
            // One: the event's INSERT returns its endpoints (one statement fewer).
            Ok([one]) => crate::events::emit(tx, rng, now, tenant, "session.revoked", one).await.map(|_| ())?,
            Err(data) => crate::events::emit_many(tx, rng, now, tenant, "session.revoked", data).await?,
        }
    }
    tracing::info!(sessions = ids.len(), reason, "sessions ended");
    Ok(ids.len())
}

/// Ends every live session of a user (deactivation, deletion, an admin's request) and revokes
/// every live grant of theirs; returns how many sessions ended.
pub async fn revoke_user_sessions(
    tx: &Tx,
    rng: &dyn Rng,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<usize, DbErr> {
    let live = sessions::unrevoked_of_user(tx, user_id).await?;
    // Grants of already-ended sessions (e.g. offline refresh tokens) die too.
    grants::revoke_all(tx, grants::Of::LiveOfUser(user_id), reason, now).await?;
    end_sessions(tx, rng, live, reason, now).await
}

/// Ends one session (sign-out), if it is still live.
pub async fn end_session(tx: &Tx, rng: &dyn Rng, session_id: &str, reason: &str, now: i64) -> Result<usize, DbErr> {
    let live = sessions::unrevoked(tx, session_id).await?;
    end_sessions(tx, rng, live, reason, now).await
}
