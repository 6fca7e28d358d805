//! Login traces: every login attempt's steps with timings and, on failure, a stable error code,
//! a plain-language cause and the fix. Raw tokens are never recorded; claim names and
//! non-secret values may be.
pub mod sampled;

use crate::store::entities::{login, login_trace};
use crate::store::{self, conn::Conn};
use crate::util::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const PENDING: &str = "pending";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";
/// The login expired unfinished (on the email page, at the IdP, ...): set by clean-up.
pub const ABANDONED: &str = "abandoned";
/// Every status a trace may have.
pub const STATUSES: [&str; 4] = [PENDING, COMPLETED, FAILED, ABANDONED];

/// The cause and fix written on a trace whose login expired unfinished.
pub const ABANDONED_CAUSE: &str = "The sign-in was never finished: the person left (or waited too long) before fedgate received an answer, and the sign-in expired. The last step shows where they stopped.";
pub const ABANDONED_FIX: &str = "If the last step is the email page, the person did not enter (or mistyped) their work email, or its domain belongs to no tenant: check the tenant's domains. If it is a connection, the identity provider never sent the person back: ask whether they saw an error there (often: not assigned to the app).";

/// The trace's email: an address-looking value, lowercased and bounded.
pub fn email_of(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|e| e.contains('@') && e.len() <= 320).map(str::to_ascii_lowercase)
}

/// Most steps a trace keeps.
pub const MAX_STEPS: usize = 100;

/// One step of a login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    /// Unix milliseconds when the step finished.
    pub at_ms: i64,
    pub duration_ms: i64,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// How the login stands after the steps being recorded.
#[derive(Debug, Clone)]
pub enum Outcome {
    Pending,
    Completed,
    Failed { code: String, cause: String, fix: String },
}

fn sort_key(ms: i64, id: &str) -> String {
    format!("{:015}{id}", ms.max(0))
}

/// Appends steps (creating the trace if needed) and sets the outcome.
///
/// A `Pending` outcome is what routing writes, normally on a trace that does not exist yet: the
/// insert is tried first. Every other write (and [`record_existing`]) appends in one statement
/// ([`store::traces::append_steps`]) and reads the trace only when that finds nothing to
/// append to (or the trace holds too many steps).
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &impl Conn,
    login: &login::Model,
    tenant_id: Option<&str>,
    connection_id: Option<&str>,
    steps: Vec<Step>,
    outcome: Outcome,
    now_ms: i64,
) -> Result<(), crate::store::conn::DbErr> {
    let insert_first = matches!(outcome, Outcome::Pending);
    write(db, login, tenant_id, connection_id, steps, outcome, now_ms, insert_first).await
}

/// [`record`] for a login whose trace exists already (it was routed to a connection): the
/// steps are appended in one statement; the trace is created only if it went missing.
pub async fn record_existing(
    db: &impl Conn,
    login: &login::Model,
    connection_id: Option<&str>,
    steps: Vec<Step>,
    outcome: Outcome,
    now_ms: i64,
) -> Result<(), crate::store::conn::DbErr> {
    let tenant = login.tenant_id.as_ref().map(|t| t.to_string());
    write(db, login, tenant.as_deref(), connection_id, steps, outcome, now_ms, false).await
}

/// The one-statement append [`record`] and [`record_existing`] start with (`None` without
/// steps), for a caller that runs it inside a statement of its own: the SAML ACS with its
/// replay cache and connector state ([`store::logins::keep_answer`]), a finished login with its
/// session and code ([`store::logins::complete_with_session`]). If it changes no row (no trace,
/// or too many steps), the caller records the steps with [`record`] / [`record_existing`],
/// which read, trim and write.
pub fn append_of(
    login: &login::Model,
    tenant_id: Option<&str>,
    connection_id: Option<&str>,
    steps: &[Step],
    outcome: &Outcome,
    now_ms: i64,
) -> Option<store::traces::Append> {
    if steps.is_empty() {
        return None;
    }
    let (status, error) = match outcome {
        Outcome::Pending => (PENDING, None),
        Outcome::Completed => (COMPLETED, None),
        Outcome::Failed { code, cause, fix } => (FAILED, Some((code.as_str(), cause.as_str(), fix.as_str()))),
    };
    let email = email_of(login.login_hint.as_deref());
    let change = store::traces::StepsAppended {
        status: Some(status),
        error: Some(error),
        tenant_id,
        connection_id,
        email: email.as_deref(),
        updated_at: now_ms / 1000,
    };
    Some(store::traces::append_steps_update(login.id.as_str(), &step_items(steps), steps.len(), MAX_STEPS, change))
}

/// [`append_of`] as [`record_existing`] with a `Pending` outcome makes it (the login's own
/// tenant).
pub fn pending_append(
    login: &login::Model,
    connection_id: Option<&str>,
    steps: &[Step],
    now_ms: i64,
) -> Option<store::traces::Append> {
    let tenant = login.tenant_id.as_ref().map(|t| t.to_string());
    append_of(login, tenant.as_deref(), connection_id, steps, &Outcome::Pending, now_ms)
}

/// The steps as JSON array elements without the brackets (`{…},{…}`).
fn step_items(steps: &[Step]) -> String {
    let json = serde_json::to_string(steps).unwrap_or_else(|_| "[]".into());
    json.strip_prefix('[').and_then(|j| j.strip_suffix(']')).unwrap_or_default().to_string()
}

#[allow(clippy::too_many_arguments)]
async fn write(
    db: &impl Conn,
    login: &login::Model,
    tenant_id: Option<&str>,
    connection_id: Option<&str>,
    steps: Vec<Step>,
    outcome: Outcome,
    now_ms: i64,
    insert_first: bool,
) -> Result<(), crate::store::conn::DbErr> {
    let now = now_ms / 1000;
    if insert_first {
        // Routing (the only `Pending` writer) normally creates the trace: try the insert first
        // and save a read.
        let row = routed_row(login, tenant_id, connection_id, &steps, now_ms);
        match store::traces::insert(db, row).await {
            Ok(_) => return Ok(()),
            Err(e) if crate::store::is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(append) = append_of(login, tenant_id, connection_id, &steps, &outcome, now_ms) {
        if store::traces::run_append(db, append).await? {
            return Ok(());
        }
    }
    let (status, code, cause, fix) = match outcome {
        Outcome::Pending => (PENDING, None, None, None),
        Outcome::Completed => (COMPLETED, None, None, None),
        Outcome::Failed { code, cause, fix } => (FAILED, Some(code), Some(cause), Some(fix)),
    };
    let email = email_of(login.login_hint.as_deref());
    let existing = store::traces::get(db, login.id.as_str()).await?;
    let (mut all, row) = match existing {
        Some(r) => (serde_json::from_str::<Vec<Step>>(&r.steps).unwrap_or_default(), Some(r)),
        None => (vec![first_step(login)], None),
    };
    all.extend(steps);
    // A trace stays bounded however many answers arrive for one login: the first step and the
    // latest ones are kept.
    if all.len() > MAX_STEPS {
        all.drain(1..all.len() - (MAX_STEPS - 1));
    }
    let steps_json = serde_json::to_string(&all).unwrap_or_else(|_| "[]".into());
    match row {
        Some(r) => {
            let mut new = r.clone();
            if let Some(t) = tenant_id {
                new.tenant_id = Some(t.to_string());
            }
            if let Some(c) = connection_id {
                new.connection_id = Some(c.to_string());
            }
            new.steps = steps_json;
            new.status = status.into();
            new.error_code = code;
            new.cause = cause;
            new.fix = fix;
            new.updated_at = now;
            if let Some(e) = email {
                new.email = Some(e);
            }
            store::traces::update(db, r, new).await?;
        }
        None => {
            let mut row = new_row(login, tenant_id, connection_id, &all, status, now_ms);
            row.error_code = code;
            row.cause = cause;
            row.fix = fix;
            store::traces::insert(db, row).await?;
        }
    }
    Ok(())
}

/// The trace routing creates: the login's first step, then `steps`, pending.
pub fn routed_row(
    login: &login::Model,
    tenant_id: Option<&str>,
    connection_id: Option<&str>,
    steps: &[Step],
    now_ms: i64,
) -> login_trace::Model {
    let mut first = vec![first_step(login)];
    first.extend(steps.iter().cloned());
    new_row(login, tenant_id, connection_id, &first, PENDING, now_ms)
}

fn first_step(login: &login::Model) -> Step {
    Step {
        step: "authorize_received".into(),
        at_ms: login.created_at * 1000,
        duration_ms: 0,
        detail: json!({ "client_id": login.client_id, "login_hint_domain": login.login_hint.as_deref().and_then(crate::claims::email_domain) }),
    }
}

fn new_row(
    login: &login::Model,
    tenant_id: Option<&str>,
    connection_id: Option<&str>,
    steps: &[Step],
    status: &str,
    now_ms: i64,
) -> login_trace::Model {
    login_trace::Model {
        id: login.id.to_string(),
        sort_key: sort_key(now_ms, login.id.as_str()),
        tenant_id: tenant_id.map(str::to_string).or_else(|| login.tenant_id.as_ref().map(|t| t.to_string())),
        connection_id: connection_id
            .map(str::to_string)
            .or_else(|| login.connection_id.as_ref().map(|c| c.to_string())),
        client_id: login.client_id.clone(),
        status: status.into(),
        error_code: None,
        cause: None,
        fix: None,
        steps: serde_json::to_string(steps).unwrap_or_else(|_| "[]".into()),
        created_at: login.created_at,
        updated_at: now_ms / 1000,
        email: email_of(login.login_hint.as_deref()),
    }
}

/// [`record`] on the main pool, logging (not failing) on database errors: a trace must never
/// break a login.
pub async fn record_best_effort(
    db: &crate::store::Db,
    now_ms: i64,
    login: &login::Model,
    connection_id: Option<&str>,
    steps: Vec<Step>,
    outcome: Outcome,
) {
    let tenant = login.tenant_id.as_ref().map(|t| t.to_string());
    if let Err(e) = record(db, login, tenant.as_deref(), connection_id, steps, outcome, now_ms).await {
        crate::util::log_internal("recording the login trace", &e);
    }
}

/// [`record_existing`] on the main pool, logging (not failing) on database errors.
pub async fn record_existing_best_effort(
    db: &crate::store::Db,
    now_ms: i64,
    login: &login::Model,
    connection_id: Option<&str>,
    steps: Vec<Step>,
    outcome: Outcome,
) {
    if let Err(e) = record_existing(db, login, connection_id, steps, outcome, now_ms).await {
        crate::util::log_internal("recording the login trace", &e);
    }
}

/// Marks the pending traces of logins that expired unfinished as `abandoned`.
pub async fn abandon_expired(db: &impl Conn, now: i64) -> Result<u64, crate::store::conn::DbErr> {
    store::traces::abandon_expired(db, now, ABANDONED_CAUSE, ABANDONED_FIX).await
}

/// An authorization request refused before any connection was chosen, by a known client (see
/// `issuer::authorize`): a trace of its own, `failed` at once. The caller bounds how many
/// (`sampled::Budget`), so an anonymous flood writes nothing unbounded.
pub struct Refusal<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub email: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub detail: Value,
    pub code: crate::error_code::ErrorCode,
    pub cause: String,
    pub fix: String,
}

/// Writes a [`Refusal`]'s trace.
pub async fn record_refusal(db: &impl Conn, r: Refusal<'_>, now_ms: i64) -> Result<(), crate::store::conn::DbErr> {
    let steps = vec![Step { step: "authorize_refused".into(), at_ms: now_ms, duration_ms: 0, detail: r.detail }];
    let row = login_trace::Model {
        id: r.id.to_string(),
        sort_key: sort_key(now_ms, r.id),
        tenant_id: r.tenant_id.map(str::to_string),
        connection_id: None,
        client_id: r.client_id.to_string(),
        status: FAILED.into(),
        error_code: Some(r.code.as_str().to_string()),
        cause: Some(r.cause),
        fix: Some(r.fix),
        steps: serde_json::to_string(&steps).unwrap_or_else(|_| "[]".into()),
        created_at: now_ms / 1000,
        updated_at: now_ms / 1000,
        email: email_of(r.email),
    };
    store::traces::insert(db, row).await.map(|_| ())
}

/// Removes traces older than `retention` seconds (in bounded batches).
pub async fn expire(db: &impl Conn, now: i64, retention: i64) -> Result<u64, crate::store::conn::DbErr> {
    store::traces::expire(db, now - retention).await
}

/// The admin API's view of a trace.
pub fn view(r: &login_trace::Model) -> Value {
    let steps: Vec<Step> = serde_json::from_str(&r.steps).unwrap_or_default();
    let start = steps.first().map(|s| s.at_ms).unwrap_or(r.created_at * 1000);
    let end = steps.last().map(|s| s.at_ms).unwrap_or(start);
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({
                "step": s.step,
                "at": rfc3339(s.at_ms / 1000),
                "elapsed_ms": s.at_ms - start,
                "duration_ms": s.duration_ms,
                "detail": s.detail,
            })
        })
        .collect();
    let error = r.error_code.as_ref().map(|c| json!({ "code": c, "cause": r.cause, "fix": r.fix }));
    json!({
        "id": r.id,
        "tenant_id": r.tenant_id,
        "connection_id": r.connection_id,
        "client_id": r.client_id,
        "email": r.email,
        "status": r.status,
        "error": error,
        "started_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
        "duration_ms": end - start,
        "steps": steps,
    })
}

/// A failure to write on a trace: code, cause, fix.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: crate::error_code::ErrorCode,
    pub cause: String,
    pub fix: String,
}

/// Appends steps to an existing trace (token issuance after its login completed: claim rules,
/// token hook, size budget). A `failure` marks the trace failed with its code, cause and fix.
/// Returns false when the trace is gone (expired).
pub async fn append(
    db: &impl Conn,
    id: &str,
    steps: Vec<Step>,
    failure: Option<Failure>,
    now_ms: i64,
) -> Result<bool, crate::store::conn::DbErr> {
    if !steps.is_empty() {
        let error = failure.as_ref().map(|f| Some((f.code.as_str(), f.cause.as_str(), f.fix.as_str())));
        let change = store::traces::StepsAppended {
            status: failure.as_ref().map(|_| FAILED),
            error,
            updated_at: now_ms / 1000,
            ..Default::default()
        };
        if store::traces::append_steps(db, id, &step_items(&steps), steps.len(), MAX_STEPS, change).await? {
            return Ok(true);
        }
    }
    let Some(row) = store::traces::get(db, id).await? else { return Ok(false) };
    let mut all: Vec<Step> = serde_json::from_str(&row.steps).unwrap_or_default();
    all.extend(steps);
    if all.len() > MAX_STEPS {
        all.drain(1..all.len() - (MAX_STEPS - 1));
    }
    let mut new = row.clone();
    new.steps = serde_json::to_string(&all).unwrap_or_else(|_| "[]".into());
    if let Some(f) = failure {
        new.status = FAILED.into();
        new.error_code = Some(f.code.as_str().to_string());
        new.cause = Some(f.cause);
        new.fix = Some(f.fix);
    }
    new.updated_at = now_ms / 1000;
    store::traces::update(db, row, new).await?;
    Ok(true)
}

/// A trace of its own for a token issuance that called the token hook without a login to append
/// to: a refresh, or a code answered from an existing fedgate session. Its first step says which
/// (`token_requested` with the grant type); `completed`, or `failed` with the hook's cause and fix.
#[allow(clippy::too_many_arguments)]
pub async fn record_issuance(
    db: &impl Conn,
    id: &str,
    client_id: &str,
    tenant_id: &str,
    grant_type: &str,
    steps: Vec<Step>,
    failure: Option<Failure>,
    now_ms: i64,
) -> Result<(), crate::store::conn::DbErr> {
    let mut all = vec![Step {
        step: "token_requested".into(),
        at_ms: now_ms,
        duration_ms: 0,
        detail: json!({ "grant_type": grant_type, "client_id": client_id }),
    }];
    all.extend(steps);
    let steps = all;
    let (status, code, cause, fix) = match failure {
        Some(f) => (FAILED, Some(f.code.as_str().to_string()), Some(f.cause), Some(f.fix)),
        None => (COMPLETED, None, None, None),
    };
    let row = login_trace::Model {
        id: id.to_string(),
        sort_key: sort_key(now_ms, id),
        tenant_id: Some(tenant_id.to_string()),
        connection_id: None,
        client_id: client_id.to_string(),
        status: status.into(),
        error_code: code,
        cause,
        fix,
        steps: serde_json::to_string(&steps).unwrap_or_else(|_| "[]".into()),
        created_at: now_ms / 1000,
        updated_at: now_ms / 1000,
        email: None,
    };
    store::traces::insert(db, row).await.map(|_| ())
}
