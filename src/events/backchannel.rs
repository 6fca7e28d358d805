//! OpenID Connect Back-Channel Logout 1.0: when sessions end (logout, deactivation, an admin's
//! revocation), each client with a `backchannel_logout_uri` that holds a grant under those
//! sessions gets a logout token. Queued in the caller's transaction and delivered by the same
//! durable, retrying worker as webhooks.
use crate::store::entities::{client, delivery, grant};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

pub const KIND: &str = "backchannel_logout";
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Queues logout tokens for every client with a grant under `session_ids`.
pub async fn enqueue(
    tx: &impl ConnectionTrait,
    rng: &dyn crate::clock::Rng,
    now: i64,
    session_ids: &[String],
) -> Result<usize, sea_orm::DbErr> {
    if session_ids.is_empty() {
        return Ok(0);
    }
    let grants = grant::Entity::find().filter(grant::Column::SessionId.is_in(session_ids.to_vec())).all(tx).await?;
    let mut pairs: Vec<(String, String, String)> =
        grants.into_iter().map(|g| (g.client_id, g.session_id, g.user_id)).collect();
    pairs.sort();
    pairs.dedup();
    let mut n = 0;
    for (client_id, sid, sub) in pairs {
        let Some(c) = client::Entity::find_by_id(client_id.clone()).one(tx).await? else { continue };
        if c.backchannel_logout_uri.is_none() {
            continue;
        }
        let row = delivery::ActiveModel {
            id: Set(format!("dlv_{}", crate::ids::random128(rng))),
            kind: Set(KIND.into()),
            target_id: Set(client_id),
            event_id: Set(None),
            event_seq: Set(0),
            ordering_key: Set(sub.clone()),
            payload: Set(json!({"sub": sub, "sid": sid}).to_string()),
            status: Set(delivery::PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            lease_owner: Set(None),
            lease_until: Set(None),
            last_status: Set(None),
            last_error: Set(None),
            last_latency_ms: Set(None),
            created_at: Set(now),
            finished_at: Set(None),
        };
        delivery::Entity::insert(row).exec_without_returning(tx).await?;
        n += 1;
    }
    Ok(n)
}

/// The logout token's claims (signed at send time with the client's algorithm).
pub fn claims(issuer: &str, client_id: &str, sub: &str, sid: &str, now: i64, jti: &str) -> serde_json::Value {
    json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
        "sub": sub,
        "sid": sid,
        "events": { EVENT: {} },
    })
}
