//! The `deliveries` queue (webhooks and back-channel logout tokens) and its `delivery_attempts`
//! log.
use super::entities::delivery::{self, Model};
use super::entities::{client, delivery_attempt, grant};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Set,
    Statement,
};

pub const WEBHOOK: &str = "webhook";

/// A delivery to queue (pending, due now).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub kind: String,
    pub target_id: String,
    pub event_id: Option<String>,
    pub event_seq: i64,
    pub ordering_key: String,
    pub payload: String,
    pub now: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewDelivery) -> Result<(), DbErr> {
    let row = delivery::ActiveModel {
        id: Set(n.id),
        kind: Set(n.kind),
        target_id: Set(n.target_id),
        event_id: Set(n.event_id),
        event_seq: Set(n.event_seq),
        ordering_key: Set(n.ordering_key),
        payload: Set(n.payload),
        status: Set(delivery::PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(n.now),
        lease_owner: Set(None),
        lease_until: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        last_latency_ms: Set(None),
        created_at: Set(n.now),
        finished_at: Set(None),
    };
    delivery::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Leases up to `limit` due deliveries for `owner` until `until` (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL). Per (target, ordering key) only the oldest pending delivery is due.
pub async fn lease(
    db: &impl ConnectionTrait,
    owner: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<Model>, DbErr> {
    let backend = db.get_database_backend();
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
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(|r| Model::from_query_result(r, "")).collect()
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: i64,
    /// The delivery's new status (`pending` to retry).
    pub status: &'static str,
    /// The HTTP status, if there was an answer.
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub next_attempt_at: i64,
}

/// Records an attempt: the delivery's new state (lease released) and a row in the attempt log,
/// **fenced by the lease**: the write lands only while the row still carries the lease `d` was
/// taken with (`lease_owner`, `lease_until`). `false`: the lease was lost (it ran out and another
/// worker took the delivery); nothing was written, so a late sender can neither overwrite the
/// new holder's outcome nor log an attempt twice.
pub async fn record_attempt(db: &impl ConnectionTrait, d: &Model, a: Attempt) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let (Some(owner), Some(until)) = (d.lease_owner.as_deref(), d.lease_until) else {
        return Ok(false);
    };
    let done = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(a.status))
        .col_expr(delivery::Column::Attempts, Expr::value(d.attempts + 1))
        .col_expr(delivery::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(delivery::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(delivery::Column::LastStatus, Expr::value(a.http_status))
        .col_expr(delivery::Column::LastError, Expr::value(a.error.clone()))
        .col_expr(delivery::Column::LastLatencyMs, Expr::value(Some(a.latency_ms)))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(a.next_attempt_at))
        .col_expr(delivery::Column::FinishedAt, Expr::value((a.status != delivery::PENDING).then_some(a.at)))
        .filter(delivery::Column::Id.eq(d.id.as_str()))
        .filter(delivery::Column::LeaseOwner.eq(owner))
        .filter(delivery::Column::LeaseUntil.eq(until))
        .exec(db)
        .await?
        .rows_affected;
    if done != 1 {
        return Ok(false);
    }
    let row = delivery_attempt::ActiveModel {
        seq: sea_orm::NotSet,
        delivery_id: Set(d.id.clone()),
        target_id: Set(d.target_id.clone()),
        at: Set(a.at),
        status: Set(a.http_status),
        latency_ms: Set(a.latency_ms),
        error: Set(a.error),
    };
    delivery_attempt::Entity::insert(row).exec_without_returning(db).await?;
    Ok(true)
}

/// Re-queues a delivery (manual replay). `false`: no such delivery.
pub async fn replay(db: &impl ConnectionTrait, now: i64, id: &str) -> Result<bool, DbErr> {
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

/// Drops a target's pending deliveries.
pub async fn delete_pending_for(db: &impl ConnectionTrait, target_id: &str) -> Result<u64, DbErr> {
    Ok(delivery::Entity::delete_many()
        .filter(delivery::Column::TargetId.eq(target_id))
        .filter(delivery::Column::Status.eq(delivery::PENDING))
        .exec(db)
        .await?
        .rows_affected)
}

/// A target's deliveries, newest first.
pub async fn page_for_target(
    db: &impl ConnectionTrait,
    target_id: &str,
    req: PageRequest<'_>,
) -> Result<Page<Model>, DbErr> {
    let q = delivery::Entity::find().filter(delivery::Column::TargetId.eq(target_id));
    page::fetch(db, q, delivery::Column::Id, Order::Desc, req, |d| d.id.clone()).await
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts_of(db: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<delivery_attempt::Model>, DbErr> {
    delivery_attempt::Entity::find()
        .filter(delivery_attempt::Column::DeliveryId.is_in(ids.to_vec()))
        .order_by_asc(delivery_attempt::Column::Seq)
        .all(db)
        .await
}

/// (client id, session id, user id) of every grant under these sessions whose client has a
/// back-channel logout URI, sorted and without repeats.
pub async fn backchannel_targets(
    db: &impl ConnectionTrait,
    session_ids: &[String],
) -> Result<Vec<(String, String, String)>, DbErr> {
    let grants = grant::Entity::find().filter(grant::Column::SessionId.is_in(session_ids.to_vec())).all(db).await?;
    let mut pairs: Vec<(String, String, String)> =
        grants.into_iter().map(|g| (g.client_id, g.session_id, g.user_id)).collect();
    pairs.sort();
    pairs.dedup();
    let mut out = Vec::new();
    for p in pairs {
        let Some(c) = client::Entity::find_by_id(p.0.clone()).one(db).await? else { continue };
        if c.backchannel_logout_uri.is_some() {
            out.push(p);
        }
    }
    Ok(out)
}
