//! The `login_traces` table.
use super::entities::login_trace::{self, Model};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    login_trace::Entity::find_by_id(id.to_string()).one(db).await
}

/// Inserts a trace row as given (an existing trace is a unique violation).
pub async fn insert(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    login_trace::ActiveModel::from(row).reset_all().insert(db).await
}

/// Writes the changing columns of a trace: tenant, connection (when given), steps, status,
/// error, updated_at.
pub async fn update(db: &impl ConnectionTrait, old: Model, new: Model) -> Result<Model, DbErr> {
    let mut m: login_trace::ActiveModel = old.clone().into();
    if new.tenant_id != old.tenant_id {
        m.tenant_id = Set(new.tenant_id);
    }
    if new.connection_id != old.connection_id {
        m.connection_id = Set(new.connection_id);
    }
    m.steps = Set(new.steps);
    m.status = Set(new.status);
    m.error_code = Set(new.error_code);
    m.cause = Set(new.cause);
    m.fix = Set(new.fix);
    m.updated_at = Set(new.updated_at);
    if new.email.is_some() && new.email != old.email {
        m.email = Set(new.email);
    }
    m.update(db).await
}

/// What [`append_steps`] changes besides the steps.
#[derive(Debug, Clone, Default)]
pub struct StepsAppended<'a> {
    /// New status (unchanged when `None`).
    pub status: Option<&'a str>,
    /// `Some(None)` clears the error, `Some(Some((code, cause, fix)))` sets it, `None` keeps it.
    pub error: Option<Option<(&'a str, &'a str, &'a str)>>,
    pub tenant_id: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub updated_at: i64,
}

/// Appends steps to a trace in ONE statement (no read first): `items` is the JSON of the new
/// steps without the enclosing brackets (`{…},{…}`, `count` of them), spliced in before the
/// stored array's closing bracket. Atomic, so concurrent appends to one trace never lose each
/// other's steps. `false` (nothing written) when the trace does not exist, is empty, or would
/// hold more than `max_steps` steps: the caller then reads, trims and writes.
///
/// Steps are counted as the occurrences of `{"step":` (every serialized step starts with it, and
/// inside a JSON string the quotes would be escaped): an over-count only sends the caller to
/// its read-modify-write path.
pub async fn append_steps(
    db: &impl ConnectionTrait,
    id: &str,
    items: &str,
    count: usize,
    max_steps: usize,
    change: StepsAppended<'_>,
) -> Result<bool, DbErr> {
    run_append(db, append_steps_update(id, items, count, max_steps, change)).await
}

/// [`append_steps`]'s `UPDATE`, built to run on its own ([`run_append`]) or inside another
/// statement ([`super::logins::keep_answer`], [`super::logins::complete_with_session`]).
#[derive(Debug, Clone)]
pub struct Append(pub(super) sea_orm::UpdateMany<login_trace::Entity>);

/// Runs an [`Append`] on its own: `false` when it changed no row (see [`append_steps`]).
pub async fn run_append(db: &impl ConnectionTrait, append: Append) -> Result<bool, DbErr> {
    Ok(append.0.exec(db).await?.rows_affected == 1)
}

/// [`append_steps`]'s `UPDATE`.
pub fn append_steps_update(id: &str, items: &str, count: usize, max_steps: usize, change: StepsAppended<'_>) -> Append {
    use sea_orm::sea_query::{BinOper, Expr, ExprTrait, Func};
    const MARK: &str = "{\"step\":";
    let room = i32::try_from(max_steps.saturating_sub(count) * MARK.len()).unwrap_or(i32::MAX);
    let steps = || Expr::col(login_trace::Column::Steps);
    // substr(steps, 1, length(steps) - 1) || ',…]' — characters on both databases.
    let body = Func::cust("substr").arg(steps()).arg(1i32).arg(Expr::expr(Func::char_length(steps())).sub(1i32));
    let spliced = Expr::expr(body).binary(BinOper::Custom("||"), Expr::val(format!(",{items}]")));
    let stored_steps = Expr::expr(Func::char_length(steps()))
        .sub(Expr::expr(Func::char_length(Func::cust("replace").arg(steps()).arg(MARK).arg(""))));
    let mut q = login_trace::Entity::update_many()
        .col_expr(login_trace::Column::Steps, spliced)
        .col_expr(login_trace::Column::UpdatedAt, Expr::val(change.updated_at))
        .filter(login_trace::Column::Id.eq(id))
        .filter(login_trace::Column::Steps.ne("[]"))
        .filter(stored_steps.lte(room));
    if let Some(s) = change.status {
        q = q.col_expr(login_trace::Column::Status, Expr::val(s));
    }
    if let Some(e) = change.error {
        let (code, cause, fix) = match e {
            Some((a, b, c)) => (Some(a.to_string()), Some(b.to_string()), Some(c.to_string())),
            None => (None, None, None),
        };
        q = q
            .col_expr(login_trace::Column::ErrorCode, Expr::val(code))
            .col_expr(login_trace::Column::Cause, Expr::val(cause))
            .col_expr(login_trace::Column::Fix, Expr::val(fix));
    }
    if let Some(t) = change.tenant_id {
        q = q.col_expr(login_trace::Column::TenantId, Expr::val(t));
    }
    if let Some(c) = change.connection_id {
        q = q.col_expr(login_trace::Column::ConnectionId, Expr::val(c));
    }
    if let Some(e) = change.email {
        q = q.col_expr(login_trace::Column::Email, Expr::val(e));
    }
    Append(q)
}

/// A tenant's traces, newest first, optionally of one status.
pub async fn page_of_tenant(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    status: Option<&str>,
    req: PageRequest<'_>,
) -> Result<Page<Model>, DbErr> {
    let mut q = login_trace::Entity::find().filter(login_trace::Column::TenantId.eq(tenant_id));
    if let Some(s) = status {
        q = q.filter(login_trace::Column::Status.eq(s));
    }
    page::fetch(db, q, login_trace::Column::SortKey, Order::Desc, req, |r| r.sort_key.clone()).await
}

/// What the console's trace search filters on (every filter optional).
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    pub tenant_id: Option<String>,
    /// Lowercased email, matched exactly.
    pub email: Option<String>,
    pub connection_id: Option<String>,
    pub status: Option<String>,
    /// Started at or after (Unix seconds).
    pub from: Option<i64>,
    /// Started before (Unix seconds).
    pub until: Option<i64>,
}

/// Traces matching `f`, newest first (keyset pagination on the sort key).
pub async fn search(db: &impl ConnectionTrait, f: &TraceFilter, req: PageRequest<'_>) -> Result<Page<Model>, DbErr> {
    let mut q = login_trace::Entity::find();
    if let Some(t) = &f.tenant_id {
        q = q.filter(login_trace::Column::TenantId.eq(t.as_str()));
    }
    if let Some(e) = &f.email {
        q = q.filter(login_trace::Column::Email.eq(e.as_str()));
    }
    if let Some(c) = &f.connection_id {
        q = q.filter(login_trace::Column::ConnectionId.eq(c.as_str()));
    }
    if let Some(s) = &f.status {
        q = q.filter(login_trace::Column::Status.eq(s.as_str()));
    }
    if let Some(t) = f.from {
        q = q.filter(login_trace::Column::CreatedAt.gte(t));
    }
    if let Some(t) = f.until {
        q = q.filter(login_trace::Column::CreatedAt.lt(t));
    }
    page::fetch(db, q, login_trace::Column::SortKey, Order::Desc, req, |r| r.sort_key.clone()).await
}

/// The latest trace of a connection with `status` (the console's connection health).
pub async fn latest_of_connection(
    db: &impl ConnectionTrait,
    connection_id: &str,
    status: &str,
) -> Result<Option<Model>, DbErr> {
    use sea_orm::QueryOrder;
    login_trace::Entity::find()
        .filter(login_trace::Column::ConnectionId.eq(connection_id))
        .filter(login_trace::Column::Status.eq(status))
        .order_by_desc(login_trace::Column::SortKey)
        .one(db)
        .await
}

/// Marks the still-pending traces of logins that expired unfinished as `abandoned` (with a
/// cause), in bounded batches. Runs before clean-up removes the logins.
pub async fn abandon_expired(db: &impl ConnectionTrait, now: i64, cause: &str, fix: &str) -> Result<u64, DbErr> {
    use super::entities::login;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let mut n = 0;
    for _ in 0..super::cleanup::MAX_BATCHES {
        let expired = Query::select()
            .column(login::Column::Id)
            .from(login::Entity)
            .and_where(Expr::col(login::Column::Status).eq("pending"))
            .and_where(Expr::col(login::Column::ExpiresAt).lt(now))
            .to_owned();
        let batch = Query::select()
            .column(login_trace::Column::Id)
            .from(login_trace::Entity)
            .and_where(Expr::col(login_trace::Column::Status).eq("pending"))
            .and_where(Expr::col(login_trace::Column::Id).in_subquery(expired))
            .limit(super::cleanup::BATCH)
            .to_owned();
        let done = login_trace::Entity::update_many()
            .col_expr(login_trace::Column::Status, Expr::value("abandoned"))
            .col_expr(login_trace::Column::Cause, Expr::value(cause))
            .col_expr(login_trace::Column::Fix, Expr::value(fix))
            .col_expr(login_trace::Column::UpdatedAt, Expr::value(now))
            .filter(login_trace::Column::Id.in_subquery(batch))
            .exec(db)
            .await?
            .rows_affected;
        n += done;
        if done < super::cleanup::BATCH {
            break;
        }
    }
    Ok(n)
}

/// Removes traces created before `before` (in bounded batches, smaller on SQLite: a trace is
/// a wide row, see [`super::cleanup::wide_batch`]).
pub async fn expire(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    super::cleanup::delete_batched_sized::<login_trace::Entity, _>(
        db,
        login_trace::Column::Id,
        login_trace::Column::CreatedAt.lt(before),
        super::cleanup::wide_batch(db),
    )
    .await
}
