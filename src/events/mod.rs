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
use crate::store::entities::{delivery as delivery_row, event, webhook_endpoint};
use base64::Engine;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
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
    tx: &impl ConnectionTrait,
    rng: &dyn Rng,
    now: i64,
    tenant_id: Option<&str>,
    event_type: &str,
    data: Value,
) -> Result<String, sea_orm::DbErr> {
    let id = format!("evt_{}", crate::ids::random128(rng));
    let backend = tx.get_database_backend();
    let data_text = data.to_string();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) \
             VALUES ($1, pg_current_xact_id()::text::bigint, $2, $3, $4, $5) RETURNING seq"
        }
        _ => "INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) VALUES (?, 0, ?, ?, ?, ?) RETURNING seq",
    };
    let row = tx
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [id.clone().into(), tenant_id.map(str::to_string).into(), event_type.into(), now.into(), data_text.into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("event insert returned nothing".into()))?;
    let seq: i64 = row.try_get("", "seq")?;
    let mut q = webhook_endpoint::Entity::find().filter(webhook_endpoint::Column::Enabled.eq(true));
    q = match tenant_id {
        Some(t) => q.filter(
            sea_orm::Condition::any()
                .add(webhook_endpoint::Column::TenantId.is_null())
                .add(webhook_endpoint::Column::TenantId.eq(t)),
        ),
        None => q.filter(webhook_endpoint::Column::TenantId.is_null()),
    };
    let endpoints = q.all(tx).await?;
    if endpoints.is_empty() {
        return Ok(id);
    }
    let payload = json!({
        "type": event_type,
        "timestamp": crate::util::rfc3339(now),
        "data": data,
    })
    .to_string();
    for ep in endpoints {
        let types = crate::util::from_json_list(&ep.event_types);
        if !webhooks::type_matches(&types, event_type) {
            continue;
        }
        let row = delivery_row::ActiveModel {
            id: sea_orm::Set(format!("dlv_{}", crate::ids::random128(rng))),
            kind: sea_orm::Set("webhook".into()),
            target_id: sea_orm::Set(ep.id.clone()),
            event_id: sea_orm::Set(Some(id.clone())),
            event_seq: sea_orm::Set(seq),
            ordering_key: sea_orm::Set(tenant_id.unwrap_or("-").to_string()),
            payload: sea_orm::Set(payload.clone()),
            status: sea_orm::Set(delivery_row::PENDING.into()),
            attempts: sea_orm::Set(0),
            next_attempt_at: sea_orm::Set(now),
            lease_owner: sea_orm::Set(None),
            lease_until: sea_orm::Set(None),
            last_status: sea_orm::Set(None),
            last_error: sea_orm::Set(None),
            last_latency_ms: sea_orm::Set(None),
            created_at: sea_orm::Set(now),
            finished_at: sea_orm::Set(None),
        };
        delivery_row::Entity::insert(row).exec_without_returning(tx).await?;
    }
    Ok(id)
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
    db: &impl ConnectionTrait,
    after: Option<(i64, i64)>,
    types: &[String],
    tenant: Option<&str>,
    limit: u64,
) -> Result<Vec<event::Model>, sea_orm::DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let backend = db.get_database_backend();
    let mut q = event::Entity::find();
    if let Some((tx_id, seq)) = after {
        q = q.filter(
            sea_orm::Condition::any()
                .add(event::Column::TxId.gt(tx_id))
                .add(sea_orm::Condition::all().add(event::Column::TxId.eq(tx_id)).add(event::Column::Seq.gt(seq))),
        );
    }
    if backend == DbBackend::Postgres {
        q = q.filter(sea_orm::sea_query::Expr::cust("tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
    }
    if !types.is_empty() {
        q = q.filter(event::Column::EventType.is_in(types.to_vec()));
    }
    if let Some(t) = tenant {
        q = q.filter(event::Column::TenantId.eq(t));
    }
    q.order_by_asc(event::Column::TxId).order_by_asc(event::Column::Seq).limit(limit).all(db).await
}

/// Removes events older than the retention period (in bounded batches).
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> Result<u64, sea_orm::DbErr> {
    crate::store::cleanup::delete_batched::<event::Entity, _>(
        db,
        event::Column::Seq,
        event::Column::OccurredAt.lt(before),
    )
    .await
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
