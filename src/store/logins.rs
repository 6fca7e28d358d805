//! Every query on the `logins` table. Writes that change a login's state are conditional on it
//! being pending (and, where two answers may race, on the state they read), so a login finishes
//! or fails exactly once, on any instance.
use super::entities::login::{self, LoginStatus, Model};
use super::entities::{connection, tenant};
use crate::ids::{ConnectionId, LoginId, TenantId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// A login as the authorization endpoint starts it.
#[derive(Debug, Clone)]
pub struct NewLogin {
    pub id: LoginId,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// Set for logins that begin at a connection (IdP-initiated SAML).
    pub connection_id: Option<ConnectionId>,
    pub binding_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewLogin) -> Result<Model, DbErr> {
    insert_model(db, &n.into_model()).await
}

impl NewLogin {
    /// The row this login will be, pending and not yet written ([`insert_model`] writes it).
    pub fn into_model(self) -> Model {
        Model {
            id: self.id,
            client_id: self.client_id,
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            state: self.state,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            prompt: self.prompt,
            max_age: self.max_age,
            acr_values: self.acr_values,
            login_hint: self.login_hint,
            tenant_id: self.tenant_id,
            connection_id: self.connection_id,
            connector_state: None,
            binding_hash: self.binding_hash,
            status: LoginStatus::Pending,
            error_code: None,
            created_at: self.created_at,
            expires_at: self.expires_at,
            completed_at: None,
        }
    }
}

/// Writes a login the authorization endpoint routed before writing it: one INSERT where an
/// INSERT and the routing UPDATE ([`route`]) were.
pub async fn insert_model(db: &impl ConnectionTrait, m: &Model) -> Result<Model, DbErr> {
    use sea_orm::IntoActiveModel;
    // Every column Set (a model converts to Unchanged values).
    m.clone().into_active_model().reset_all().insert(db).await
}

/// Inserts a routed login with its trace; a trace that exists already is left as it is
/// (`ON CONFLICT DO NOTHING`). On PostgreSQL ONE statement: the login's `INSERT` a
/// data-modifying CTE before the trace's (one round trip less on every login sent straight to a
/// connection); SQLite has no DML in a CTE, so there it is the two.
pub async fn insert_with_trace(
    db: &impl ConnectionTrait,
    m: &Model,
    trace: super::entities::login_trace::Model,
) -> Result<(), DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        insert_model(db, m).await?;
        trace_insert(trace).exec_without_returning(db).await?;
        return Ok(());
    }
    db.execute_raw(insert_with_trace_statement(m, trace)).await?;
    Ok(())
}

/// The trace's `INSERT` of [`insert_with_trace`].
fn trace_insert(
    trace: super::entities::login_trace::Model,
) -> sea_orm::Insert<super::entities::login_trace::ActiveModel> {
    use super::entities::login_trace;
    use sea_orm::sea_query::OnConflict;
    login_trace::Entity::insert(login_trace::ActiveModel::from(trace).reset_all())
        .on_conflict(OnConflict::column(login_trace::Column::Id).do_nothing().to_owned())
}

/// [`insert_with_trace`]'s PostgreSQL statement.
fn insert_with_trace_statement(m: &Model, trace: super::entities::login_trace::Model) -> sea_orm::Statement {
    use sea_orm::{IntoActiveModel, QueryTrait};
    let backend = sea_orm::DbBackend::Postgres;
    let login = login::Entity::insert(m.clone().into_active_model().reset_all()).build(backend);
    let trace = trace_insert(trace).build(backend);
    let mut values = login.values.map(|v| v.0).unwrap_or_default();
    let trace_sql = super::shift_placeholders(&trace.sql, values.len());
    values.extend(trace.values.map(|v| v.0).unwrap_or_default());
    sea_orm::Statement::from_sql_and_values(backend, format!("WITH l AS ({}) {trace_sql}", login.sql), values)
}

/// A login by id (the SAML ACS reads the login its response names): inline on SQLite.
pub async fn get(db: &impl super::inline::ReadConn, id: &LoginId) -> Result<Option<Model>, DbErr> {
    super::inline::one(db, login::Entity::find_by_id(id.clone())).await
}

fn pending(id: &LoginId) -> sea_orm::UpdateMany<login::Entity> {
    login::Entity::update_many()
        .filter(login::Column::Id.eq(id.clone()))
        .filter(login::Column::Status.eq(LoginStatus::Pending))
}

/// Records what home-realm discovery found: the email the person typed on the work-email page
/// and the tenant of its domain (either may be `None`: left as it is). One statement.
pub async fn set_discovered(
    db: &impl ConnectionTrait,
    id: &LoginId,
    login_hint: Option<&str>,
    tenant: Option<&TenantId>,
) -> Result<bool, DbErr> {
    let mut q = pending(id);
    if let Some(h) = login_hint {
        q = q.col_expr(login::Column::LoginHint, h.into());
    }
    if let Some(t) = tenant {
        q = q.col_expr(login::Column::TenantId, Expr::value(t.clone()));
    }
    if login_hint.is_none() && tenant.is_none() {
        return Ok(true);
    }
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// Sends the login to a connection: its tenant, the connection, the connector's state, the
/// full login lifetime from now on, and the email the person typed on the work-email page
/// (`login_hint`, when discovery found one not yet written).
pub async fn route(
    db: &impl ConnectionTrait,
    id: &LoginId,
    tenant: &TenantId,
    connection: &ConnectionId,
    connector_state: &str,
    expires_at: i64,
    login_hint: Option<&str>,
) -> Result<bool, DbErr> {
    let mut q = pending(id);
    if let Some(h) = login_hint {
        q = q.col_expr(login::Column::LoginHint, h.into());
    }
    Ok(q.col_expr(login::Column::TenantId, Expr::value(tenant.clone()))
        .col_expr(login::Column::ConnectionId, Expr::value(connection.clone()))
        .col_expr(login::Column::ConnectorState, connector_state.into())
        .col_expr(login::Column::ExpiresAt, expires_at.into())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Replaces the connector state, only if it is still `expected` (two answers to one login
/// cannot overwrite each other).
pub async fn swap_connector_state(
    db: &impl ConnectionTrait,
    id: &LoginId,
    expected: Option<&str>,
    new: &str,
) -> Result<bool, DbErr> {
    Ok(swap(id, expected, new).exec(db).await?.rows_affected == 1)
}

/// [`swap_connector_state`]'s `UPDATE`.
fn swap(id: &LoginId, expected: Option<&str>, new: &str) -> sea_orm::UpdateMany<login::Entity> {
    let q = pending(id).col_expr(login::Column::ConnectorState, new.into());
    match expected {
        Some(old) => q.filter(login::Column::ConnectorState.eq(old)),
        None => q.filter(login::Column::ConnectorState.is_null()),
    }
}

/// What [`keep_answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKept {
    /// The answer's use-once key was fresh (it is now used) and the login holds the answer.
    /// `traced`: the trace's append changed its row (`false`: no trace, or too many steps; the
    /// caller then reads, trims and writes).
    Kept { traced: bool },
    /// The use-once key was used before (a replayed response): nothing was written.
    Replayed,
    /// The key was fresh (it is now used), but the login changed since it was read (a
    /// concurrent answer to it, or it ended): the login was not written.
    Raced,
}

/// Keeps an answer the SAML ACS accepted: consumes its use-once key `once` (`(key, until)`) in
/// the replay cache of `connection_id` ([`super::replay::consume`]), then, only if the key was
/// fresh, swaps the login's connector state from `expected` to `new`
/// ([`swap_connector_state`]), and then, only if the login took the answer, runs `trace` (the
/// trace's append, [`super::traces::append_steps_update`]). On PostgreSQL this is ONE
/// statement: the replay cache's `INSERT … ON CONFLICT DO NOTHING` and the login's `UPDATE` are
/// data-modifying CTEs the next part depends on (two round trips less on every ACS post).
/// SQLite has no DML in a CTE: there they are separate statements, with the same conditions.
#[allow(clippy::too_many_arguments)]
pub async fn keep_answer(
    db: &impl ConnectionTrait,
    connection_id: &str,
    once: Option<(&str, i64)>,
    now: i64,
    id: &LoginId,
    expected: Option<&str>,
    new: &str,
    trace: Option<super::traces::Append>,
) -> Result<AnswerKept, DbErr> {
    let pg = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let (Some((key, until)), true) = (once, pg) else {
        if let Some((key, until)) = once {
            if !super::replay::consume(db, connection_id, key, until, now).await? {
                return Ok(AnswerKept::Replayed);
            }
        }
        if !swap_connector_state(db, id, expected, new).await? {
            return Ok(AnswerKept::Raced);
        }
        return Ok(AnswerKept::Kept { traced: run_trace(db, trace).await? });
    };
    let stmt = keep_answer_statement(connection_id, key, until, now, id, expected, new, trace);
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Err(DbErr::RecordNotFound("keep_answer: no row".into()));
    };
    let (fresh, swapped, traced): (bool, bool, bool) =
        (row.try_get("", "fresh")?, row.try_get("", "kept")?, row.try_get("", "traced")?);
    Ok(match (fresh, swapped) {
        (false, _) => AnswerKept::Replayed,
        (true, false) => AnswerKept::Raced,
        (true, true) => AnswerKept::Kept { traced },
    })
}

/// Runs a trace's append on its own (SQLite's path of [`keep_answer`] and
/// [`complete_with_session`]): whether it changed its row.
async fn run_trace(db: &impl ConnectionTrait, trace: Option<super::traces::Append>) -> Result<bool, DbErr> {
    match trace {
        Some(t) => super::traces::run_append(db, t).await,
        None => Ok(false),
    }
}

/// [`keep_answer`]'s PostgreSQL statement: the replay cache's `INSERT` (its conflict on the key
/// does nothing), the login's `UPDATE` only when that `INSERT` wrote a row, the trace's `UPDATE`
/// only when the login's did, and which of them wrote.
#[allow(clippy::too_many_arguments)]
fn keep_answer_statement(
    connection_id: &str,
    key: &str,
    until: i64,
    now: i64,
    id: &LoginId,
    expected: Option<&str>,
    new: &str,
    trace: Option<super::traces::Append>,
) -> sea_orm::Statement {
    use super::entities::saml_assertion;
    use sea_orm::sea_query::OnConflict;
    use sea_orm::QueryTrait;
    let backend = sea_orm::DbBackend::Postgres;
    let mut values = Vec::new();
    let mut add = |built: sea_orm::Statement| {
        let sql = super::shift_placeholders(&built.sql, values.len());
        values.extend(built.values.map(|v| v.0).unwrap_or_default());
        sql
    };
    let insert = add(saml_assertion::Entity::insert(super::replay::entry(connection_id, key, until, now))
        .on_conflict(
            OnConflict::columns([saml_assertion::Column::ConnectionId, saml_assertion::Column::AssertionId])
                .do_nothing()
                .to_owned(),
        )
        .build(backend));
    let update = add(swap(id, expected, new).filter(Expr::cust("EXISTS (SELECT 1 FROM r)")).build(backend));
    let (trace_cte, traced) = match trace {
        Some(t) => {
            let t = add(t.0.filter(Expr::cust("EXISTS (SELECT 1 FROM s)")).build(backend));
            (format!(", t AS ({t} RETURNING 1)"), "EXISTS (SELECT 1 FROM t)")
        }
        None => (String::new(), "false"),
    };
    let sql = format!(
        "WITH r AS ({insert} RETURNING 1), s AS ({update} RETURNING 1){trace_cte} \
         SELECT EXISTS (SELECT 1 FROM r) AS fresh, EXISTS (SELECT 1 FROM s) AS kept, {traced} AS traced"
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Ends a pending login with an error code (its connector state is dropped).
pub async fn fail(db: &impl ConnectionTrait, id: &LoginId, code: &str, now: i64) -> Result<bool, DbErr> {
    Ok(pending(id)
        .col_expr(login::Column::Status, Expr::value(LoginStatus::Failed))
        .col_expr(login::Column::ErrorCode, code.into())
        .col_expr(login::Column::CompletedAt, now.into())
        .col_expr(login::Column::ConnectorState, Expr::value(Option::<String>::None))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// What [`complete_with_session`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The login is finished, with its session and code. `false`: another request finished or
    /// failed it first (the caller drops the transaction, so the session and code are not kept
    /// either).
    pub done: bool,
    /// The trace's append changed its row (`false`: no trace, or too many steps; the caller then
    /// reads, trims and writes).
    pub traced: bool,
    /// The id of the event written with the completion (`None` when none was asked or the
    /// login was not finished).
    pub event: Option<String>,
}

/// What finishing a login writes besides the login's own row ([`complete_with_session`]).
#[derive(Debug)]
pub struct Completing {
    /// The session the person is signed in with.
    pub session: super::sessions::NewSession,
    /// The authorization code, when the login ends in one.
    pub code: Option<super::codes::NewCode>,
    /// The trace's append ([`super::traces::append_steps_update`]).
    pub trace: Option<super::traces::Append>,
    /// The event the finished login emits (`login.succeeded`), with its webhook deliveries.
    pub event: Option<super::events::NewEvent>,
}

/// Opens the session a finished login signs the person in with, issues its code (when the login
/// ends in one), finishes the login ([`complete`]) and, when it finished, runs the trace's
/// append and writes the event (its webhook deliveries too, [`super::events::emit`]), in the
/// caller's transaction. On PostgreSQL the session, the code, the completion, the trace and the
/// event are ONE statement (data-modifying CTEs: four round trips less on every login; the
/// deliveries, when an endpoint wants the event, follow); SQLite has no DML in a CTE, so there
/// they are separate statements, with the same conditions.
pub async fn complete_with_session(
    db: &impl ConnectionTrait,
    rng: &dyn crate::clock::Rng,
    id: &LoginId,
    now: i64,
    c: Completing,
) -> Result<Completion, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        super::sessions::insert(db, c.session).await?;
        if let Some(code) = c.code {
            super::codes::insert(db, code).await?;
        }
        if !complete(db, id, now).await? {
            return Ok(Completion { done: false, traced: false, event: None });
        }
        let traced = run_trace(db, c.trace).await?;
        let event = match c.event {
            Some(e) => Some(super::events::emit(db, rng, now, e).await?),
            None => None,
        };
        return Ok(Completion { done: true, traced, event });
    }
    let event = c.event.map(|e| (super::events::new_id(rng), e));
    let stmt = complete_with_session_statement(id, now, c.session, c.code, c.trace, event.as_ref());
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Err(DbErr::RecordNotFound("complete_with_session: no row".into()));
    };
    let done: bool = row.try_get("", "done")?;
    let traced: bool = row.try_get("", "traced")?;
    let event = match event {
        Some((event_id, e)) if done => {
            let seq: i64 = row.try_get("", "event_seq")?;
            let endpoints: Option<String> = row.try_get("", "endpoints")?;
            super::events::fan_out(db, rng, now, &e, &event_id, seq, endpoints.as_deref()).await?;
            Some(event_id)
        }
        _ => None,
    };
    Ok(Completion { done, traced, event })
}

/// [`complete_with_session`]'s PostgreSQL statement: sea-orm's own `INSERT`s of the session and
/// the code, [`complete`]'s `UPDATE`, the trace's and the event's `INSERT`, their placeholders
/// renumbered in turn.
fn complete_with_session_statement(
    id: &LoginId,
    now: i64,
    session: super::sessions::NewSession,
    code: Option<super::codes::NewCode>,
    trace: Option<super::traces::Append>,
    event: Option<&(String, super::events::NewEvent)>,
) -> sea_orm::Statement {
    use super::entities::{auth_code, session};
    use sea_orm::QueryTrait;
    let backend = sea_orm::DbBackend::Postgres;
    let mut values = Vec::new();
    let mut parts = Vec::new();
    let mut add = |built: sea_orm::Statement| {
        let sql = super::shift_placeholders(&built.sql, values.len());
        values.extend(built.values.map(|v| v.0).unwrap_or_default());
        sql
    };
    parts.push(format!("s AS ({})", add(session::Entity::insert(super::sessions::active(session)).build(backend))));
    if let Some(code) = code {
        parts.push(format!("c AS ({})", add(auth_code::Entity::insert(super::codes::active(code)).build(backend))));
    }
    let id_col = sea_orm::IdenStatic::as_str(&login::Column::Id);
    parts.push(format!("l AS ({} RETURNING \"{id_col}\")", add(completion(id, now).build(backend))));
    let traced = match trace {
        Some(t) => {
            let t = add(t.0.filter(Expr::cust("EXISTS (SELECT 1 FROM l)")).build(backend));
            parts.push(format!("t AS ({t} RETURNING 1)"));
            "EXISTS (SELECT 1 FROM t)"
        }
        None => "false",
    };
    let event = event.map(|(event_id, e)| {
        let mut param = super::pg_bind(&mut values);
        let (insert, endpoints) =
            super::events::pg_insert_parts("e", "EXISTS (SELECT 1 FROM l)", event_id, now, e, None, &mut param);
        parts.push(insert);
        format!(", (SELECT seq FROM e) AS event_seq, {endpoints} AS endpoints")
    });
    let sql = format!(
        "WITH {} SELECT EXISTS (SELECT 1 FROM l) AS done, {traced} AS traced{}",
        parts.join(", "),
        event.unwrap_or_default()
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Finishes a pending login (in the caller's transaction). `false`: another request finished or
/// failed it first.
pub async fn complete(db: &impl ConnectionTrait, id: &LoginId, now: i64) -> Result<bool, DbErr> {
    Ok(completion(id, now).exec(db).await?.rows_affected == 1)
}

/// [`complete`]'s `UPDATE`.
fn completion(id: &LoginId, now: i64) -> sea_orm::UpdateMany<login::Entity> {
    pending(id)
        .col_expr(login::Column::Status, Expr::value(LoginStatus::Completed))
        .col_expr(login::Column::CompletedAt, now.into())
        .col_expr(login::Column::ConnectorState, Expr::value(Option::<String>::None))
}

/// A pending login read with what finishing it needs ([`get_routed`]).
#[derive(Debug, Clone)]
pub struct Routed {
    pub login: Model,
    /// The connection the login was routed to, when it still exists.
    pub connection: Option<connection::Model>,
    /// That connection's tenant with its domains, when it still exists.
    pub tenant: Option<RoutedTenant>,
}

/// A tenant with its email domains (`tenant_domains`, sorted).
#[derive(Debug, Clone)]
pub struct RoutedTenant {
    pub tenant: tenant::Model,
    pub domains: Vec<String>,
}

/// A login with the connection it was routed to, that connection's tenant and the tenant's
/// domains (when they still exist), in ONE query: finishing a login (the OIDC callback, the SAML
/// resume step) needs all four, and every statement is a round trip (two thread hops on
/// SQLite). Nothing is cached: a connection disabled or a domain removed a moment ago is read
/// so here.
pub async fn get_routed(db: &impl super::inline::ReadConn, id: &LoginId) -> Result<Option<Routed>, DbErr> {
    use super::prefixed_cols as cols;
    use sea_orm::FromQueryResult;
    let backend = db.get_database_backend();
    let (p1, domains) = match backend {
        sea_orm::DbBackend::Postgres => {
            ("$1", "(SELECT COALESCE(json_agg(d.domain), '[]')::text FROM tenant_domains d WHERE d.tenant_id = t.id)")
        }
        _ => ("?", "(SELECT json_group_array(d.domain) FROM tenant_domains d WHERE d.tenant_id = t.id)"),
    };
    let sql = format!(
        "SELECT {}, {}, {}, {domains} AS routed_domains FROM logins l \
         LEFT JOIN connections c ON c.id = l.connection_id \
         LEFT JOIN tenants t ON t.id = c.tenant_id WHERE l.id = {p1}",
        cols::<login::Column>("l"),
        cols::<connection::Column>("c"),
        cols::<tenant::Column>("t"),
    );
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [id.as_str().into()]);
    // Every OIDC callback and SAML resume step reads it: inline on SQLite.
    if let Some(r) = db.inline() {
        return super::inline::routed(&r, &stmt);
    }
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    Ok(Some(routed_of(
        Model::from_query_result(&row, "l_")?,
        connection::Model::from_query_result_optional(&row, "c_")?,
        tenant::Model::from_query_result_optional(&row, "t_")?,
        row.try_get("", "routed_domains")?,
    )?))
}

/// [`get_routed`]'s row, decoded (by sea-orm on the pool, by [`super::inline`] inline).
pub(super) fn routed_of(
    login: Model,
    connection: Option<connection::Model>,
    tenant: Option<tenant::Model>,
    domains: Option<String>,
) -> Result<Routed, DbErr> {
    let tenant = match tenant {
        Some(tenant) => Some(RoutedTenant { tenant, domains: domain_list(domains.as_deref())? }),
        None => None,
    };
    Ok(Routed { login, connection, tenant })
}

/// The JSON array of domains the database built, sorted by bytes (so both databases give the
/// same order, whatever their collation).
fn domain_list(text: Option<&str>) -> Result<Vec<String>, DbErr> {
    let mut domains: Vec<String> = match text {
        Some(t) => serde_json::from_str(t).map_err(|e| DbErr::Custom(format!("tenant domains: {e}")))?,
        None => Vec::new(),
    };
    domains.sort_unstable();
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::placeholders_match;
    use crate::store::{codes::NewCode, sessions::NewSession};

    fn session() -> NewSession {
        NewSession {
            id: "ses_1".into(),
            cookie_hash: "h".into(),
            user_id: "usr_1".into(),
            tenant_id: "org_1".into(),
            connection_id: "conn_1".into(),
            auth_time: 1,
            amr: vec!["pwd".into()],
            acr: "urn:fedgate:acr:basic".into(),
            created_at: 2,
            expires_at: 3,
        }
    }

    fn code() -> NewCode {
        NewCode {
            code_hash: "ch".into(),
            login_id: "lgn_1".into(),
            client_id: "cli_1".into(),
            redirect_uri: "https://app.test/cb".into(),
            user_id: "usr_1".into(),
            session_id: "ses_1".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: None,
            auth_time: 1,
            created_at: 2,
            expires_at: 3,
        }
    }

    #[test]
    fn login_and_trace_in_one_postgres_statement() {
        use crate::store::entities::login_trace;
        let login = Model {
            id: LoginId::from_db("lgn_1".into()),
            client_id: "cli_1".into(),
            redirect_uri: "https://app.test/cb".into(),
            scope: "openid".into(),
            state: Some("st".into()),
            nonce: None,
            code_challenge: None,
            prompt: None,
            max_age: None,
            acr_values: None,
            login_hint: None,
            tenant_id: None,
            connection_id: None,
            connector_state: None,
            binding_hash: "b".into(),
            status: LoginStatus::Pending,
            error_code: None,
            created_at: 1,
            expires_at: 2,
            completed_at: None,
        };
        let trace = login_trace::Model {
            id: "lgn_1".into(),
            sort_key: "k".into(),
            tenant_id: None,
            connection_id: None,
            client_id: "cli_1".into(),
            status: "pending".into(),
            error_code: None,
            cause: None,
            fix: None,
            steps: "[]".into(),
            created_at: 1,
            updated_at: 1,
            email: None,
        };
        let st = insert_with_trace_statement(&login, trace);
        assert!(st.sql.starts_with("WITH l AS (INSERT INTO \"logins\" "), "{}", st.sql);
        assert!(st.sql.contains(") INSERT INTO \"login_traces\" "), "{}", st.sql);
        assert!(st.sql.ends_with(" ON CONFLICT (\"id\") DO NOTHING"), "{}", st.sql);
        placeholders_match(&st);
        let values = st.values.unwrap().0;
        assert_eq!(values[0], "lgn_1".into());
        assert_eq!(values[values.len() - 1], Option::<String>::None.into(), "the trace's email is last");
    }

    #[test]
    fn answer_kept_in_one_postgres_statement() {
        let id = LoginId::from_db("lgn_1".into());
        let st = keep_answer_statement("conn_1", "_a1", 99, 9, &id, Some("old"), "new", None);
        assert!(st.sql.starts_with("WITH r AS (INSERT INTO \"saml_assertions\" "), "{}", st.sql);
        assert!(
            st.sql.contains(" ON CONFLICT (\"connection_id\", \"assertion_id\") DO NOTHING RETURNING 1), "),
            "{}",
            st.sql
        );
        assert!(st.sql.contains("s AS (UPDATE \"logins\" SET "), "{}", st.sql);
        assert!(st.sql.contains(" AND (EXISTS (SELECT 1 FROM r)) RETURNING 1) SELECT "), "{}", st.sql);
        placeholders_match(&st);
        let values = st.values.unwrap().0;
        assert_eq!(values[0], "conn_1".into());
        assert_eq!(values[4], "new".into());
        assert!(values.contains(&"old".into()) && values.contains(&"lgn_1".into()));
        // A login whose connector state was empty: the swap expects NULL.
        let st = keep_answer_statement("conn_1", "_a1", 99, 9, &id, None, "new", None);
        assert!(st.sql.contains("\"connector_state\" IS NULL"), "{}", st.sql);
        assert!(st.sql.ends_with(", false AS traced"), "{}", st.sql);
        placeholders_match(&st);
        // With the trace's append, which runs only when the login took the answer.
        let change =
            crate::store::traces::StepsAppended { status: Some("pending"), updated_at: 9, ..Default::default() };
        let trace = crate::store::traces::append_steps_update("lgn_1", "{\"step\":\"x\"}", 1, 100, change);
        let st = keep_answer_statement("conn_1", "_a1", 99, 9, &id, Some("old"), "new", Some(trace));
        assert!(st.sql.contains("), t AS (UPDATE \"login_traces\" SET "), "{}", st.sql);
        assert!(st.sql.contains(" AND (EXISTS (SELECT 1 FROM s)) RETURNING 1) SELECT "), "{}", st.sql);
        assert!(st.sql.ends_with(", EXISTS (SELECT 1 FROM t) AS traced"), "{}", st.sql);
        placeholders_match(&st);
        assert!(st.values.unwrap().0.contains(&"lgn_1".into()), "the trace's id is in its WHERE");
    }

    #[test]
    fn session_code_and_completion_in_one_postgres_statement() {
        let id = LoginId::from_db("lgn_1".into());
        let st = complete_with_session_statement(&id, 9, session(), Some(code()), None, None);
        assert!(st.sql.starts_with("WITH s AS (INSERT INTO \"sessions\" "), "{}", st.sql);
        assert!(st.sql.contains("), c AS (INSERT INTO \"auth_codes\" "), "{}", st.sql);
        assert!(st.sql.contains("), l AS (UPDATE \"logins\" SET "), "{}", st.sql);
        assert!(
            st.sql.ends_with(" RETURNING \"id\") SELECT EXISTS (SELECT 1 FROM l) AS done, false AS traced"),
            "{}",
            st.sql
        );
        placeholders_match(&st);
        // The login's id and its pending status are the last values (the UPDATE's WHERE).
        let values = st.values.unwrap().0;
        assert_eq!(values[values.len() - 2], "lgn_1".into());
        let st = complete_with_session_statement(&id, 9, session(), None, None, None);
        assert!(!st.sql.contains("auth_codes"), "{}", st.sql);
        placeholders_match(&st);
        // With the trace's append, which runs only when the login finished.
        let change =
            crate::store::traces::StepsAppended { status: Some("completed"), updated_at: 9, ..Default::default() };
        let trace = crate::store::traces::append_steps_update("lgn_1", "{\"step\":\"x\"}", 1, 100, change);
        let st = complete_with_session_statement(&id, 9, session(), Some(code()), Some(trace), None);
        assert!(st.sql.contains("), t AS (UPDATE \"login_traces\" SET "), "{}", st.sql);
        assert!(st.sql.contains(" AND (EXISTS (SELECT 1 FROM l)) RETURNING 1) SELECT "), "{}", st.sql);
        assert!(st.sql.ends_with(", EXISTS (SELECT 1 FROM t) AS traced"), "{}", st.sql);
        placeholders_match(&st);
        // With the event, written only when the login finished, and the endpoints that want it.
        let change =
            crate::store::traces::StepsAppended { status: Some("completed"), updated_at: 9, ..Default::default() };
        let trace = crate::store::traces::append_steps_update("lgn_1", "{\"step\":\"x\"}", 1, 100, change);
        let event = crate::store::events::NewEvent {
            tenant_id: Some("org_1".into()),
            event_type: "login.succeeded".into(),
            data: serde_json::json!({"login_id": "lgn_1"}),
        };
        let st = complete_with_session_statement(
            &id,
            9,
            session(),
            Some(code()),
            Some(trace),
            Some(&("evt_1".into(), event)),
        );
        assert!(
            st.sql
                .contains("), e AS (INSERT INTO events (id, tx_id, tenant_id, event_type, occurred_at, data) SELECT "),
            "{}",
            st.sql
        );
        assert!(st.sql.contains(" WHERE EXISTS (SELECT 1 FROM l) RETURNING seq) SELECT "), "{}", st.sql);
        assert!(st.sql.contains(", (SELECT seq FROM e) AS event_seq, (SELECT json_agg("), "{}", st.sql);
        assert!(st.sql.ends_with(" AND EXISTS (SELECT 1 FROM e)) AS endpoints"), "{}", st.sql);
        placeholders_match(&st);
        let values = st.values.unwrap().0;
        let n = values.len();
        assert_eq!(
            values[n - 5..].to_vec(),
            vec![
                "evt_1".into(),
                Some("org_1".to_string()).into(),
                "login.succeeded".into(),
                9i64.into(),
                "{\"login_id\":\"lgn_1\"}".into()
            ]
        );
    }
}
