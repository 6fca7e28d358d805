//! The delivery worker: leases due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any
//! number of instances share the work), sends them, and records the attempt. At least once: a
//! killed instance's lease expires and another instance retries; receivers de-duplicate by
//! `webhook-id`. Per (endpoint, tenant) the oldest pending delivery goes first, so each tenant's
//! events arrive in order.
use super::{backchannel, webhooks};
use crate::clock::{Clock, Rng};
use crate::config::WebhookConfig;
use crate::keys::{KeyRing, MasterKey};
use crate::metrics::Metrics;
use crate::net::Outbound;
use crate::store::entities::{client, delivery, delivery_attempt, webhook_endpoint};
use crate::store::Db;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, Set, Statement};
use std::sync::Arc;
use std::time::Instant;

/// What the delivery worker uses (built once by the server, cheap to clone).
#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub master: Arc<MasterKey>,
    /// Signs back-channel logout tokens.
    pub keys: Arc<KeyRing>,
    pub outbound: Outbound,
    pub metrics: Arc<Metrics>,
    pub issuer: String,
    pub webhooks: WebhookConfig,
}

/// Seconds until attempt n+1 after n failures (first retry within 10 s), capped at 6 hours.
pub fn backoff(attempts: i32) -> i64 {
    const STEPS: [i64; 8] = [5, 30, 120, 600, 1800, 3600, 7200, 14400];
    STEPS.get((attempts.max(1) - 1) as usize).copied().unwrap_or(21600)
}

/// Leases up to `limit` due deliveries for this instance.
async fn lease(st: &Worker, owner: &str, limit: i64) -> Result<Vec<delivery::Model>, sea_orm::DbErr> {
    let now = st.clock.now();
    let until = now + st.webhooks.lease_secs;
    let backend = st.db.get_database_backend();
    let (p, lock) = match backend {
        DbBackend::Postgres => (["$1", "$2", "$3", "$4"], " FOR UPDATE SKIP LOCKED"),
        _ => (["?", "?", "?", "?"], ""),
    };
    let sql = format!(
        "UPDATE deliveries SET lease_owner = {o}, lease_until = {u} WHERE id IN (\
           SELECT d.id FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= {n} \
           AND (d.lease_until IS NULL OR d.lease_until < {n2}) \
           AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.target_id = d.target_id AND e.ordering_key = d.ordering_key \
                           AND e.status = 'pending' AND e.event_seq < d.event_seq) \
           ORDER BY d.next_attempt_at, d.event_seq LIMIT {l}{lock}) RETURNING *",
        o = p[0],
        u = p[1],
        n = p[2],
        n2 = p[2],
        l = p[3],
    );
    let values: Vec<sea_orm::Value> = if backend == DbBackend::Postgres {
        vec![owner.into(), until.into(), now.into(), limit.into()]
    } else {
        // SQLite numbers its `?` placeholders by position: `now` appears twice.
        vec![owner.into(), until.into(), now.into(), now.into(), limit.into()]
    };
    let rows = st.db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(|r| delivery::Model::from_query_result(r, "")).collect()
}

/// One round: lease, send, record. Returns how many deliveries were attempted.
pub async fn run_once(st: &Worker, owner: &str) -> Result<usize, sea_orm::DbErr> {
    let leased = lease(st, owner, 32).await?;
    let n = leased.len();
    for d in leased {
        let started = Instant::now();
        let result = send(st, &d).await;
        let latency = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        record(st, &d, result, latency).await?;
    }
    Ok(n)
}

enum Outcome {
    Ok(u16),
    Failed(Option<u16>, String),
    /// The target is gone or disabled: stop trying.
    Dropped(String),
}

async fn send(st: &Worker, d: &delivery::Model) -> Outcome {
    match d.kind.as_str() {
        "webhook" => {
            let ep = match webhook_endpoint::Entity::find_by_id(d.target_id.clone()).one(&st.db).await {
                Ok(Some(ep)) if ep.enabled => ep,
                Ok(_) => return Outcome::Dropped("endpoint deleted or disabled".into()),
                Err(e) => return Outcome::Failed(None, e.to_string()),
            };
            let secret = match st.master.open(&ep.secret_enc, &format!("webhook:{}", ep.id)) {
                Ok(s) => String::from_utf8_lossy(&s).into_owned(),
                Err(_) => return Outcome::Failed(None, "cannot decrypt the endpoint secret".into()),
            };
            let id = d.event_id.clone().unwrap_or_else(|| d.id.clone());
            let ts = st.clock.now();
            let Some(sig) = webhooks::sign(&secret, &id, ts, &d.payload) else {
                return Outcome::Failed(None, "malformed secret".into());
            };
            let headers = [("webhook-id", id), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)];
            match st.outbound.post(&ep.url, "application/json", &headers, d.payload.clone()).await {
                Ok((s, _)) if (200..300).contains(&s) => Outcome::Ok(s),
                Ok((s, body)) => {
                    Outcome::Failed(Some(s), format!("HTTP {s}: {}", body.chars().take(200).collect::<String>()))
                }
                Err(e) => Outcome::Failed(None, e.to_string()),
            }
        }
        backchannel::KIND => {
            let c = match client::Entity::find_by_id(d.target_id.clone()).one(&st.db).await {
                Ok(Some(c)) => c,
                Ok(None) => return Outcome::Dropped("client deleted".into()),
                Err(e) => return Outcome::Failed(None, e.to_string()),
            };
            let Some(uri) = c.backchannel_logout_uri.clone() else {
                return Outcome::Dropped("client has no backchannel_logout_uri".into());
            };
            let p: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
            let claims = backchannel::claims(
                &st.issuer,
                &c.id,
                p["sub"].as_str().unwrap_or_default(),
                p["sid"].as_str().unwrap_or_default(),
                st.clock.now(),
                &d.id,
            );
            let alg = crate::keys::Alg::parse(&c.id_token_alg).unwrap_or(crate::keys::Alg::ES256);
            let token = match st.keys.signer(alg).map(|k| k.sign_jwt("logout+jwt", &claims)) {
                Ok(Ok(t)) => t,
                _ => return Outcome::Failed(None, "cannot sign the logout token".into()),
            };
            let body: String =
                url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", &token).finish();
            match st.outbound.post(&uri, "application/x-www-form-urlencoded", &[], body).await {
                Ok((s, _)) if s == 200 || s == 204 => Outcome::Ok(s),
                Ok((s, body)) => {
                    Outcome::Failed(Some(s), format!("HTTP {s}: {}", body.chars().take(200).collect::<String>()))
                }
                Err(e) => Outcome::Failed(None, e.to_string()),
            }
        }
        other => Outcome::Dropped(format!("unknown delivery kind {other}")),
    }
}

async fn record(st: &Worker, d: &delivery::Model, outcome: Outcome, latency_ms: i32) -> Result<(), sea_orm::DbErr> {
    let now = st.clock.now();
    let attempts = d.attempts + 1;
    let (status, code, error) = match &outcome {
        Outcome::Ok(s) => (delivery::SUCCEEDED, Some(*s), None),
        Outcome::Failed(s, e) => {
            let give_up = now - d.created_at >= st.webhooks.retry_for;
            (if give_up { delivery::FAILED } else { delivery::PENDING }, *s, Some(e.clone()))
        }
        Outcome::Dropped(e) => (delivery::FAILED, None, Some(e.clone())),
    };
    let tx = crate::store::write_tx(&st.db).await?;
    let mut m: delivery::ActiveModel = d.clone().into();
    m.status = Set(status.into());
    m.attempts = Set(attempts);
    m.lease_owner = Set(None);
    m.lease_until = Set(None);
    m.last_status = Set(code.map(i32::from));
    m.last_error = Set(error.clone());
    m.last_latency_ms = Set(Some(latency_ms));
    m.next_attempt_at = Set(now + backoff(attempts));
    m.finished_at = Set((status != delivery::PENDING).then_some(now));
    sea_orm::ActiveModelTrait::update(m, &tx).await?;
    let a = delivery_attempt::ActiveModel {
        seq: sea_orm::NotSet,
        delivery_id: Set(d.id.clone()),
        target_id: Set(d.target_id.clone()),
        at: Set(now),
        status: Set(code.map(i32::from)),
        latency_ms: Set(latency_ms),
        error: Set(error),
    };
    delivery_attempt::Entity::insert(a).exec_without_returning(&tx).await?;
    if d.kind == "webhook" {
        endpoint_health(st, &tx, &d.target_id, matches!(outcome, Outcome::Ok(_)), now).await?;
    }
    tx.commit().await?;
    let result = match &outcome {
        Outcome::Ok(_) => "succeeded",
        Outcome::Failed(..) => "failed",
        Outcome::Dropped(_) => "dropped",
    };
    st.metrics.inc("fedgate_deliveries_total", &[("kind", &d.kind), ("result", result)]);
    if matches!(outcome, Outcome::Ok(_)) {
        tracing::debug!(delivery = %d.id, target = %d.target_id, "delivered");
    } else {
        tracing::info!(delivery = %d.id, target = %d.target_id, attempts, status, "delivery failed");
    }
    Ok(())
}

/// Tracks how long an endpoint has been failing; disables it after `disable_after` seconds of
/// uninterrupted failure and emits `webhook.endpoint_disabled`.
async fn endpoint_health(
    st: &Worker,
    tx: &sea_orm::DatabaseTransaction,
    endpoint_id: &str,
    ok: bool,
    now: i64,
) -> Result<(), sea_orm::DbErr> {
    let Some(ep) = webhook_endpoint::Entity::find_by_id(endpoint_id.to_string()).one(tx).await? else { return Ok(()) };
    let mut m: webhook_endpoint::ActiveModel = ep.clone().into();
    if ok {
        if ep.failing_since.is_none() {
            return Ok(());
        }
        m.failing_since = Set(None);
    } else {
        let since = ep.failing_since.unwrap_or(now);
        m.failing_since = Set(Some(since));
        if now - since >= st.webhooks.disable_after && ep.enabled {
            m.enabled = Set(false);
            m.disabled_reason = Set(Some(format!("failing since {}", crate::util::rfc3339(since))));
            super::emit(
                tx,
                &*st.rng,
                now,
                ep.tenant_id.as_deref(),
                "webhook.endpoint_disabled",
                serde_json::json!({"endpoint_id": ep.id, "url": ep.url, "failing_since": crate::util::rfc3339(since)}),
            )
            .await?;
            tracing::warn!(endpoint = %ep.id, "webhook endpoint disabled after failing continuously");
        } else if ep.failing_since.is_some() {
            return Ok(());
        }
    }
    m.updated_at = Set(now);
    sea_orm::ActiveModelTrait::update(m, tx).await?;
    Ok(())
}

/// Re-queues a delivery (manual replay).
pub async fn replay(db: &Db, now: i64, id: &str) -> Result<bool, sea_orm::DbErr> {
    let r = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, delivery::PENDING.into())
        .col_expr(delivery::Column::NextAttemptAt, now.into())
        .col_expr(delivery::Column::CreatedAt, now.into())
        .col_expr(delivery::Column::FinishedAt, sea_orm::sea_query::Expr::value(Option::<i64>::None))
        .filter(delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}
