//! Telling the app what changed.
//!
//! - A transactional outbox: `emit` writes the event row inside the caller's transaction, with
//!   the matching webhook deliveries, so no change exists without its event and no event without
//!   its change.
//! - The events API reads events in commit order. On PostgreSQL, sequence numbers are assigned
//!   before commit, so a reader ordering by sequence alone could skip an event whose transaction
//!   commits late. Each event therefore records its transaction id, readers only see events of
//!   transactions older than the oldest one still running (`pg_snapshot_xmin`), and the cursor
//!   orders by (transaction id, sequence). On SQLite writers are serialized, so the sequence is
//!   the commit order (transaction id 0).
pub mod audit;
pub mod backchannel;
pub mod delivery;
pub mod webhooks;

use crate::clock::Rng;
use crate::store::conn::Conn;
use crate::store::entities::event;
use base64::Engine;
use serde_json::{json, Value};

/// Every event type fedgate emits.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "connection.activated",
    "connection.deactivated",
    "connection.certificate_expiring",
    "connection.metadata_refresh_failed",
    "login.succeeded",
    "login.failed",
    "session.revoked",
    "webhook.endpoint_disabled",
];

/// Writes an event (and its webhook deliveries) inside the caller's transaction.
pub async fn emit(
    tx: &impl Conn,
    rng: &dyn Rng,
    now: i64,
    tenant_id: Option<&str>,
    event_type: &str,
    data: Value,
) -> Result<String, crate::store::conn::DbErr> {
    let e = crate::store::events::NewEvent {
        tenant_id: tenant_id.map(str::to_string),
        event_type: event_type.to_string(),
        data,
    };
    crate::store::events::emit(tx, rng, now, e).await
}

/// Writes events of one type (one per `data`, in order) and their webhook deliveries inside the
/// caller's transaction, in multi-row statements.
pub async fn emit_many(
    tx: &impl Conn,
    rng: &dyn Rng,
    now: i64,
    tenant_id: Option<&str>,
    event_type: &str,
    data: Vec<Value>,
) -> Result<(), crate::store::conn::DbErr> {
    crate::store::events::emit_many(tx, rng, now, tenant_id, event_type, data).await
}

/// An event as the events API shows it.
pub fn view(e: &event::Model) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "tenant_id": e.tenant_id,
        "occurred_at": crate::util::rfc3339(e.occurred_at),
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
    })
}

/// Opaque cursor: base64url of "tx_id.seq".
pub fn encode_cursor(tx_id: i64, seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tx_id}.{seq}"))
}

pub fn decode_cursor(c: &str) -> Option<(i64, i64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Events after `cursor`, in commit order, only from finished transactions.
pub async fn list(
    db: &impl Conn,
    after: Option<(i64, i64)>,
    types: &[String],
    tenant: Option<&str>,
    limit: u64,
) -> Result<Vec<event::Model>, crate::store::conn::DbErr> {
    crate::store::events::list(db, after, types, tenant, limit).await
}

/// Removes events older than the retention period (in bounded batches).
pub async fn prune(db: &impl Conn, before: i64) -> Result<u64, crate::store::conn::DbErr> {
    crate::store::events::prune(db, before).await
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cursor_roundtrip() {
        assert_eq!(decode_cursor(&encode_cursor(12, 34)), Some((12, 34)));
        assert_eq!(decode_cursor("garbage!"), None);
    }
}
