//! The `events` table (the transactional outbox) and the fan-out of each event to the webhook
//! endpoints subscribed to it, in the caller's transaction.
use super::entities::{delivery, event};
use super::{deliveries, webhooks};
use crate::clock::Rng;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    Statement,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};

/// An event to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub tenant_id: Option<String>,
    pub event_type: String,
    pub data: Value,
}

/// Writes an event and its webhook deliveries with `db` (a transaction, for the outbox
/// guarantee). Returns the event id.
///
/// The event's INSERT also returns the enabled endpoints that may want it (the tenant's and the
/// global ones, as `[[id, event_types], …]` from a subquery in `RETURNING`): one statement where
/// an INSERT and a SELECT were, read in the same transaction, so an endpoint created or disabled
/// on another instance counts for the next event as before. Nothing is cached.
/// The subquery's rule is [`webhooks::enabled_for`]'s (which [`emit_many`] reads): enabled, and
/// the event's tenant's or global.
pub async fn emit(db: &impl ConnectionTrait, rng: &dyn Rng, now: i64, e: NewEvent) -> Result<String, DbErr> {
    let id = new_id(rng);
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) \
             VALUES ($1, pg_current_xact_id()::text::bigint, $2, $3, $4, $5) RETURNING seq, \
             ({}) AS endpoints",
            pg_endpoints("$6")
        ),
        _ => format!(
            "INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) VALUES (?, 0, ?, ?, ?, ?) \
             RETURNING seq, (SELECT json_group_array(json_array(w.id, w.event_types)) {}) AS endpoints",
            endpoints_of("?")
        ),
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                id.clone().into(),
                e.tenant_id.clone().into(),
                e.event_type.clone().into(),
                now.into(),
                e.data.to_string().into(),
                e.tenant_id.clone().into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("event insert returned nothing".into()))?;
    let seq: i64 = row.try_get("", "seq")?;
    let endpoints: Option<String> = row.try_get("", "endpoints")?;
    fan_out(db, rng, now, &e, &id, seq, endpoints.as_deref()).await?;
    Ok(id)
}

/// `FROM … WHERE …` of the webhook endpoints an event of the tenant `tenant` (its SQL) may go
/// to: enabled, the tenant's or global ([`webhooks::enabled_for`]'s rule). The fan-out reads
/// them; a write without a transaction runs only when there are none.
pub(super) fn endpoints_of(tenant: &str) -> String {
    format!("FROM webhook_endpoints w WHERE w.enabled AND (w.tenant_id IS NULL OR w.tenant_id = {tenant})")
}

/// PostgreSQL's list of the webhook endpoints an event of the tenant `tenant` (its SQL) may go
/// to, `[[id, event_types], …]` in id order (SQL NULL when there are none): the text
/// [`fan_out`] reads, [`remember`]s, and a write outside a transaction compares
/// ([`Expected::guard`]). One expression everywhere, so equal sets are equal texts.
fn pg_endpoints(tenant: &str) -> String {
    format!("SELECT json_agg(json_build_array(w.id, w.event_types) ORDER BY w.id)::text {}", endpoints_of(tenant))
}

/// The last list of webhook endpoints ([`pg_endpoints`]' text) an event of each tenant was
/// fanned out to on PostgreSQL, parsed: what a SCIM write outside any transaction expects
/// ([`Expected`]). Only a guess: the write's own statement compares it with the endpoints as
/// they are and writes nothing when they differ (an endpoint created, changed or disabled,
/// here or on another instance), and its caller then takes the transactional path, whose event
/// learns the new list. Bounded: emptied when it holds [`KNOWN_TENANTS`] tenants.
type Known = std::collections::HashMap<String, Arc<(Option<String>, Vec<(String, Vec<String>)>)>>;
const KNOWN_TENANTS: usize = 4096;

fn known() -> &'static Mutex<Known> {
    static K: OnceLock<Mutex<Known>> = OnceLock::new();
    K.get_or_init(|| Mutex::new(Known::new()))
}

/// Keeps `text` (an event of `tenant` went to these endpoints, parsed as `parsed`).
fn remember(tenant: &str, text: Option<&str>, parsed: &[(String, String)]) {
    let Ok(mut k) = known().lock() else { return };
    if k.get(tenant).is_some_and(|v| v.0.as_deref() == text) {
        return;
    }
    if k.len() >= KNOWN_TENANTS {
        k.clear();
    }
    let endpoints = parsed.iter().map(|(id, types)| (id.clone(), crate::util::from_json_list(types))).collect();
    k.insert(tenant.to_string(), Arc::new((text.map(str::to_string), endpoints)));
}

/// The webhook endpoints a write outside any transaction (PostgreSQL) expects its event's
/// tenant to have ([`remember`]ed; none when nothing is known), and the deliveries it then
/// writes in its own statement ([`pg_insert_parts`]): one per expected endpoint whose event
/// types match, its id drawn here. The statement checks the expectation ([`Expected::guard`]),
/// so deliveries are written for exactly the endpoints enabled when the event commits, as in a
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expected {
    text: Option<String>,
    /// (delivery id, endpoint id) of each delivery to write.
    deliveries: Vec<(String, String)>,
}

impl Expected {
    pub(super) fn of(rng: &dyn Rng, tenant: &str, event_type: &str) -> Expected {
        let known = known().lock().ok().and_then(|k| k.get(tenant).cloned());
        let Some(known) = known else { return Expected { text: None, deliveries: Vec::new() } };
        let deliveries = known
            .1
            .iter()
            .filter(|(_, types)| webhooks::type_matches(types, event_type))
            .map(|(endpoint, _)| (format!("dlv_{}", crate::ids::random128(rng)), endpoint.clone()))
            .collect();
        Expected { text: known.0.clone(), deliveries }
    }

    /// An expectation of `text` with these (delivery id, endpoint id) deliveries (unit tests).
    #[cfg(test)]
    pub(super) fn known(text: Option<&str>, deliveries: &[(&str, &str)]) -> Expected {
        Expected {
            text: text.map(str::to_string),
            deliveries: deliveries.iter().map(|(d, e)| (d.to_string(), e.to_string())).collect(),
        }
    }

    /// The condition that the endpoints an event of `tenant` (its SQL) goes to are the ones
    /// expected; `param` numbers the expectation. Expecting none (no endpoint known, the common
    /// case) is `NOT EXISTS`, which PostgreSQL answers at the first enabled row; otherwise the
    /// list is compared as [`pg_endpoints`] renders it.
    pub(super) fn guard(&self, tenant: &str, param: &mut dyn FnMut(sea_orm::Value) -> String) -> String {
        match &self.text {
            None => format!("NOT EXISTS (SELECT 1 {})", endpoints_of(tenant)),
            Some(text) => format!("({}) = {}", pg_endpoints(tenant), param(text.clone().into())),
        }
    }
}

/// A new event id.
pub(super) fn new_id(rng: &dyn Rng) -> String {
    format!("evt_{}", crate::ids::random128(rng))
}

/// The deliveries of event `id` (`seq`) to the endpoints its INSERT returned (`endpoints`, as
/// [`emit`]'s subquery gives them) whose event types match.
pub(super) async fn fan_out(
    db: &impl ConnectionTrait,
    rng: &dyn Rng,
    now: i64,
    e: &NewEvent,
    id: &str,
    seq: i64,
    endpoints: Option<&str>,
) -> Result<(), DbErr> {
    let parsed = parse_endpoints(endpoints)?;
    if let (DbBackend::Postgres, Some(tenant)) = (db.get_database_backend(), e.tenant_id.as_deref()) {
        remember(tenant, endpoints, &parsed);
    }
    if parsed.is_empty() {
        return Ok(());
    }
    let payload = payload(&e.event_type, &e.data, now);
    for (endpoint_id, event_types) in parsed {
        let types = crate::util::from_json_list(&event_types);
        if !webhooks::type_matches(&types, &e.event_type) {
            continue;
        }
        deliveries::insert(
            db,
            deliveries::NewDelivery {
                id: format!("dlv_{}", crate::ids::random128(rng)),
                kind: deliveries::WEBHOOK.into(),
                target_id: endpoint_id,
                event_id: Some(id.to_string()),
                event_seq: seq,
                ordering_key: e.tenant_id.as_deref().unwrap_or("-").to_string(),
                payload: payload.clone(),
                now,
            },
        )
        .await?;
    }
    Ok(())
}

/// The body a webhook delivery of an event posts.
fn payload(event_type: &str, data: &Value, now: i64) -> String {
    json!({
        "type": event_type,
        "timestamp": crate::util::rfc3339(now),
        "data": data,
    })
    .to_string()
}

/// [`emit`]'s INSERT as two parts of a PostgreSQL statement of the caller's, for an event that
/// is written only if `when` (an SQL condition) holds: the CTE that inserts it (`RETURNING
/// seq`, named `cte`) and the expression of the endpoints it goes to (NULL when it was not
/// written), for the caller to [`fan_out`] to. With `alone` (a statement outside any
/// transaction, its WHERE holding [`Expected::guard`]), the CTEs insert the expected
/// deliveries as well, and there is nothing to fan out to. `param` numbers each value the
/// caller's statement takes.
pub(super) fn pg_insert_parts(
    cte: &str,
    when: &str,
    id: &str,
    now: i64,
    e: &NewEvent,
    alone: Option<&Expected>,
    param: &mut dyn FnMut(sea_orm::Value) -> String,
) -> (String, String) {
    let (id, tenant, kind, at, data) = (
        param(id.into()),
        param(e.tenant_id.clone().into()),
        param(e.event_type.clone().into()),
        param(now.into()),
        param(e.data.to_string().into()),
    );
    let insert = format!(
        "{cte} AS (INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) \
         SELECT {id}, pg_current_xact_id()::text::bigint, {tenant}, {kind}, {at}, {data} WHERE {when} RETURNING seq)"
    );
    let Some(alone) = alone else {
        let endpoints = format!("({} AND EXISTS (SELECT 1 FROM {cte}))", pg_endpoints(&tenant));
        return (insert, endpoints);
    };
    if alone.deliveries.is_empty() {
        return (insert, "NULL::text".into());
    }
    let rows: Vec<String> = alone
        .deliveries
        .iter()
        .map(|(dlv, endpoint)| format!("({}, {})", param(dlv.clone().into()), param(endpoint.clone().into())))
        .collect();
    let (kind, pending, body) = (
        param(deliveries::WEBHOOK.into()),
        param(delivery::PENDING.into()),
        param(payload(&e.event_type, &e.data, now).into()),
    );
    let insert = format!(
        "{insert}, {cte}_d AS (INSERT INTO deliveries (id, kind, target_id, event_id, event_seq, ordering_key, \
         payload, status, attempts, next_attempt_at, created_at) \
         SELECT v.id, {kind}, v.target, {id}, (SELECT seq FROM {cte}), coalesce({tenant}, '-'), {body}, {pending}, \
         0, {at}, {at} FROM (VALUES {}) AS v (id, target) WHERE EXISTS (SELECT 1 FROM {cte}))",
        rows.join(", ")
    );
    (insert, "NULL::text".into())
}

/// The `[[id, event_types], …]` list [`emit`]'s INSERT returns (SQL NULL: PostgreSQL's
/// `json_agg` of no rows), as (endpoint id, its `event_types` JSON text) pairs.
fn parse_endpoints(json: Option<&str>) -> Result<Vec<(String, String)>, DbErr> {
    let Some(json) = json else { return Ok(Vec::new()) };
    serde_json::from_str::<Vec<(String, String)>>(json)
        .map_err(|err| DbErr::Custom(format!("webhook endpoints of an event: {err}")))
}

/// Writes events of one type and tenant (one per `data`, in order) and their webhook
/// deliveries with `db`, in multi-row statements: a membership change of 1,000 users is two
/// INSERTs and one webhook lookup, not 2,000 statements. Same rows as [`emit`] per event.
pub async fn emit_many(
    db: &impl ConnectionTrait,
    rng: &dyn Rng,
    now: i64,
    tenant_id: Option<&str>,
    event_type: &str,
    data: Vec<Value>,
) -> Result<(), DbErr> {
    if data.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    // (id, seq, data) of each event written.
    let mut written: Vec<(String, i64, Value)> = Vec::with_capacity(data.len());
    let mut data = data.into_iter().peekable();
    while data.peek().is_some() {
        // 5 values a row: 2,000 a statement, under SQLite's and PostgreSQL's limits.
        let chunk: Vec<(String, Value)> =
            data.by_ref().take(400).map(|d| (format!("evt_{}", crate::ids::random128(rng)), d)).collect();
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5);
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, (id, d)) in chunk.iter().enumerate() {
            let row = if pg {
                let b = i * 5;
                format!(
                    "(${}, pg_current_xact_id()::text::bigint, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            } else {
                "(?, 0, ?, ?, ?, ?)".to_string()
            };
            rows.push(row);
            values.extend([
                id.clone().into(),
                tenant_id.map(str::to_string).into(),
                event_type.to_string().into(),
                now.into(),
                d.to_string().into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) VALUES {} RETURNING id, seq",
            rows.join(", ")
        );
        let got = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        let mut seqs = std::collections::HashMap::with_capacity(got.len());
        for r in got {
            let id: String = r.try_get("", "id")?;
            let seq: i64 = r.try_get("", "seq")?;
            seqs.insert(id, seq);
        }
        for (id, d) in chunk {
            let seq = *seqs.get(&id).ok_or_else(|| DbErr::Custom("event insert returned no sequence".into()))?;
            written.push((id, seq, d));
        }
    }
    let endpoints = webhooks::enabled_for(db, tenant_id).await?;
    for ep in endpoints {
        let types = crate::util::from_json_list(&ep.event_types);
        if !webhooks::type_matches(&types, event_type) {
            continue;
        }
        for (id, seq, d) in &written {
            let payload = payload(event_type, d, now);
            deliveries::insert(
                db,
                deliveries::NewDelivery {
                    id: format!("dlv_{}", crate::ids::random128(rng)),
                    kind: deliveries::WEBHOOK.into(),
                    target_id: ep.id.clone(),
                    event_id: Some(id.clone()),
                    event_seq: *seq,
                    ordering_key: tenant_id.unwrap_or("-").to_string(),
                    payload,
                    now,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Events after `after` (transaction id, sequence), in commit order, only from finished
/// transactions; optionally of some types and of one tenant.
///
/// Each page is an index seek at any size (see [`page_queries`]): the statements run in order
/// until `limit` rows are found.
pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<(i64, i64)>,
    types: &[String],
    tenant: Option<&str>,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut rows = Vec::new();
    for q in page_queries(db.get_database_backend(), after, types, tenant, limit) {
        let left = limit.saturating_sub(rows.len() as u64);
        if left == 0 {
            break;
        }
        rows.extend(q.limit(left).all(db).await?);
    }
    Ok(rows)
}

/// The statements of one events page, in the order [`list`] runs them, each an index seek on
/// `idx_events_order` (`tx_id, seq`) or, with a tenant, `idx_events_tenant_order`
/// (`tenant_id, tx_id, seq`); the plan tests run EXPLAIN on them.
///
/// PostgreSQL: one statement with the row-value keyset `(tx_id, seq) > ($1, $2)`, which its
/// B-tree seeks. SQLite does not seek on a row value nor on `tx_id > ? OR (tx_id = ? AND seq > ?)`
/// (it seeks on `tx_id` and filters every later row of the same `tx_id`, and SQLite writes 0
/// there for every event), so the keyset is split in two seeks: the rest of the cursor's
/// `tx_id` (`tx_id = ? AND seq > ?`), then the later ones (`tx_id > ?`).
pub fn page_queries(
    backend: DbBackend,
    after: Option<(i64, i64)>,
    types: &[String],
    tenant: Option<&str>,
    limit: u64,
) -> Vec<Select<event::Entity>> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let base = || {
        let mut q = event::Entity::find();
        if backend == DbBackend::Postgres {
            q = q.filter(Expr::cust("tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
        }
        if !types.is_empty() {
            q = q.filter(event::Column::EventType.is_in(types.to_vec()));
        }
        if let Some(t) = tenant {
            q = q.filter(event::Column::TenantId.eq(t));
        }
        q.order_by_asc(event::Column::TxId).order_by_asc(event::Column::Seq).limit(limit)
    };
    match after {
        None => vec![base()],
        Some((tx_id, seq)) if backend == DbBackend::Postgres => vec![base().filter(
            Expr::tuple([Expr::col(event::Column::TxId), Expr::col(event::Column::Seq)])
                .gt(Expr::tuple([Expr::val(tx_id), Expr::val(seq)])),
        )],
        Some((tx_id, seq)) => vec![
            base().filter(event::Column::TxId.eq(tx_id)).filter(event::Column::Seq.gt(seq)),
            base().filter(event::Column::TxId.gt(tx_id)),
        ],
    }
}

/// Removes events older than `before` (in bounded batches).
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    super::cleanup::delete_batched::<event::Entity, _>(db, event::Column::Seq, event::Column::OccurredAt.lt(before))
        .await
}

#[cfg(test)]
mod tests {
    use super::{parse_endpoints, remember, Expected};

    #[test]
    fn a_write_alone_expects_its_endpoints() {
        let mut values = Vec::new();
        let mut param = crate::store::pg_bind(&mut values);
        let none = Expected::known(None, &[]);
        assert_eq!(
            none.guard("$9", &mut param),
            "NOT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.enabled AND (w.tenant_id IS NULL OR w.tenant_id = $9))"
        );
        let one = Expected::known(Some(r#"[["whe_1", "[]"]]"#), &[("dlv_1", "whe_1")]);
        assert_eq!(
            one.guard("$9", &mut param),
            "(SELECT json_agg(json_build_array(w.id, w.event_types) ORDER BY w.id)::text FROM webhook_endpoints w \
             WHERE w.enabled AND (w.tenant_id IS NULL OR w.tenant_id = $9)) = $1"
        );
        drop(param);
        assert_eq!(values, [sea_orm::Value::from(r#"[["whe_1", "[]"]]"#)]);
    }

    #[test]
    fn the_endpoints_known_decide_the_deliveries() {
        let rng = crate::clock::SystemRng;
        remember(
            "org_known",
            Some("x"),
            &[("whe_a".into(), r#"["user.*"]"#.into()), ("whe_b".into(), r#"["group.created"]"#.into())],
        );
        let e = Expected::of(&rng, "org_known", "user.updated");
        assert_eq!(e.text.as_deref(), Some("x"));
        assert_eq!(e.deliveries.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["whe_a"]);
        assert!(e.deliveries[0].0.starts_with("dlv_"));
        assert_eq!(Expected::of(&rng, "org_unknown", "user.updated"), Expected::known(None, &[]));
        remember("org_known", None, &[]);
        assert_eq!(Expected::of(&rng, "org_known", "user.updated"), Expected::known(None, &[]));
    }

    #[test]
    fn endpoints_returned_with_the_event() {
        assert!(parse_endpoints(None).unwrap().is_empty());
        assert!(parse_endpoints(Some("[]")).unwrap().is_empty());
        assert_eq!(
            parse_endpoints(Some(r#"[["whe_1","[\"user.*\"]"],["whe_2","[]"]]"#)).unwrap(),
            vec![("whe_1".to_string(), r#"["user.*"]"#.to_string()), ("whe_2".to_string(), "[]".to_string())]
        );
        assert!(parse_endpoints(Some(r#"[["whe_1"]]"#)).is_err());
    }
}
