//! OpenID Connect Back-Channel Logout 1.0: when sessions end (logout, deactivation, an admin's
//! revocation), each client with a `backchannel_logout_uri` that holds a grant under those
//! sessions gets a logout token. Queued in the caller's transaction and delivered by the same
//! durable, retrying worker as webhooks.
use crate::store::conn::Conn;
use crate::store::deliveries::{self, NewDelivery};
use serde_json::json;

pub const KIND: &str = "backchannel_logout";
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Queues logout tokens for every client with a grant under `session_ids`.
pub async fn enqueue(
    tx: &impl Conn,
    rng: &dyn crate::clock::Rng,
    now: i64,
    session_ids: &[String],
) -> Result<usize, crate::store::conn::DbErr> {
    if session_ids.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for (client_id, sid, sub) in deliveries::backchannel_targets(tx, session_ids).await? {
        let d = NewDelivery {
            id: format!("dlv_{}", crate::ids::random128(rng)),
            kind: KIND.into(),
            target_id: client_id,
            event_id: None,
            event_seq: 0,
            ordering_key: sub.clone(),
            payload: json!({"sub": sub, "sid": sid}).to_string(),
            now,
        };
        deliveries::insert(tx, d).await?;
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
