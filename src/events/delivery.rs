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
use crate::store::deliveries::{self, Attempt};
use crate::store::entities::delivery;
use crate::store::Db;
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
async fn lease(st: &Worker, owner: &str, limit: i64) -> Result<Vec<delivery::Model>, crate::store::conn::DbErr> {
    let now = st.clock.now();
    deliveries::lease(&st.db, owner, now, now + st.webhooks.lease_secs, limit).await
}

/// One round: lease, send (all at once), record. Returns how many deliveries were attempted.
/// Per (endpoint, tenant) only the oldest pending delivery is ever leased, so what one round
/// sends together is independent and per-tenant order holds.
pub async fn run_once(st: &Worker, owner: &str) -> Result<usize, crate::store::conn::DbErr> {
    let leased = lease(st, owner, 32).await?;
    let n = leased.len();
    for r in futures_util::future::join_all(leased.into_iter().map(|d| deliver(st, d))).await {
        r?;
    }
    Ok(n)
}

/// Sends one leased delivery and records the outcome (fenced by its lease). When the database
/// is unreachable at that moment (a restart, a failover), recording is retried until the lease
/// ends: an outcome recorded late is still recorded once, where giving up would have the
/// delivery sent again by the next lease holder (a duplicate the receiver must drop).
async fn deliver(st: &Worker, d: delivery::Model) -> Result<(), crate::store::conn::DbErr> {
    let started = Instant::now();
    let result = send(st, &d).await;
    let latency = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let deadline = started + std::time::Duration::from_secs(st.webhooks.lease_secs.max(1) as u64);
    loop {
        match record(st, &d, &result, latency).await {
            Err(e) if crate::store::is_unavailable(&e) && Instant::now() < deadline => {
                tracing::warn!(delivery = %d.id, error = %e, "database unavailable; recording the delivery again shortly");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            r => return r,
        }
    }
}

/// The background worker: keeps up to `max_in_flight` deliveries in flight, each in its own task,
/// and leases more as soon as a slot frees. A slow or hanging endpoint holds only its own
/// slots (one per tenant at most, by the ordering rule) for at most the HTTP timeout, never the
/// others' deliveries; rounds do not wait for the slowest send.
pub async fn run_forever(st: Worker, owner: String, poll: std::time::Duration, max_in_flight: usize) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    loop {
        let free = slots.available_permits();
        if free > 0 {
            match lease(&st, &owner, free as i64).await {
                Ok(due) if !due.is_empty() => {
                    for d in due {
                        let Ok(slot) = slots.clone().acquire_owned().await else { return };
                        let st = st.clone();
                        tokio::spawn(async move {
                            if let Err(e) = deliver(&st, d).await {
                                crate::util::log_internal("recording a delivery failed", &e);
                            }
                            drop(slot);
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => crate::util::log_internal("leasing deliveries failed", &e),
            }
        }
        tokio::time::sleep(poll).await;
    }
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
            let ep = match crate::store::webhooks::get(&st.db, &d.target_id).await {
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
            let c = match crate::store::clients::get(&st.db, &d.target_id).await {
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

async fn record(
    st: &Worker,
    d: &delivery::Model,
    outcome: &Outcome,
    latency_ms: i32,
) -> Result<(), crate::store::conn::DbErr> {
    let now = st.clock.now();
    let attempts = d.attempts + 1;
    let (status, code, error) = match outcome {
        Outcome::Ok(s) => (delivery::SUCCEEDED, Some(*s), None),
        Outcome::Failed(s, e) => {
            let give_up = now - d.created_at >= st.webhooks.retry_for;
            (if give_up { delivery::FAILED } else { delivery::PENDING }, *s, Some(e.clone()))
        }
        Outcome::Dropped(e) => (delivery::FAILED, None, Some(e.clone())),
    };
    let tx = crate::store::write_tx(&st.db).await?;
    let attempt = Attempt {
        at: now,
        status,
        http_status: code.map(i32::from),
        error,
        latency_ms,
        next_attempt_at: now + backoff(attempts),
    };
    if !deliveries::record_attempt(&tx, d, attempt).await? {
        // The lease ran out while this send was in flight and another worker owns the delivery
        // now: its outcome stands, this one is dropped (the receiver may have seen the message
        // twice; it de-duplicates by webhook-id).
        drop(tx);
        st.metrics
            .inc("fedgate_deliveries_total", &[("kind", &d.kind), ("target", &d.target_id), ("result", "lease_lost")]);
        tracing::warn!(delivery = %d.id, target = %d.target_id, "delivery lease lost before its outcome was recorded");
        return Ok(());
    }
    if d.kind == "webhook" {
        endpoint_health(st, &tx, &d.target_id, matches!(outcome, Outcome::Ok(_)), now).await?;
    }
    tx.commit().await?;
    let result = match outcome {
        Outcome::Ok(_) => "succeeded",
        Outcome::Failed(..) => "failed",
        Outcome::Dropped(_) => "dropped",
    };
    // The target (webhook endpoint or client id) is bounded by what administrators created.
    st.metrics.inc("fedgate_deliveries_total", &[("kind", &d.kind), ("target", &d.target_id), ("result", result)]);
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
    tx: &crate::store::conn::Tx,
    endpoint_id: &str,
    ok: bool,
    now: i64,
) -> Result<(), crate::store::conn::DbErr> {
    let Some(ep) = crate::store::webhooks::get(tx, endpoint_id).await? else { return Ok(()) };
    let (since, disabled) = if ok {
        if ep.failing_since.is_none() {
            return Ok(());
        }
        (None, None)
    } else {
        let since = ep.failing_since.unwrap_or(now);
        if now - since >= st.webhooks.disable_after && ep.enabled {
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
            (Some(since), Some(format!("failing since {}", crate::util::rfc3339(since))))
        } else if ep.failing_since.is_some() {
            return Ok(());
        } else {
            (Some(since), None)
        }
    };
    crate::store::webhooks::set_health(tx, ep, since, disabled, now).await?;
    Ok(())
}

/// Re-queues a delivery (manual replay).
pub async fn replay(db: &Db, now: i64, id: &str) -> Result<bool, crate::store::conn::DbErr> {
    deliveries::replay(db, now, id).await
}
