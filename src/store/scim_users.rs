//! The queries of SCIM user provisioning: SCIM-managed users (`users.scim` set), the
//! soft-deleted ones a create restores, and the SSO-created ones a create adopts.
use super::entities::{auth_code, grant, identity, session, user};
use super::scim_sql::ListSql;
use fedgate_scim::resource::UserColumns;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    Set,
};
use serde_json::Value;

fn of_tenant(tenant_id: &str) -> Select<user::Entity> {
    user::Entity::find().filter(user::Column::TenantId.eq(tenant_id))
}

/// A live (not deleted) SCIM-managed user of the tenant.
pub async fn find_live(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<Option<user::Model>, DbErr> {
    of_tenant(tenant_id)
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Scim.is_not_null())
        .filter(user::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// The most recently soft-deleted SCIM user with this externalId (a create restores it).
pub async fn find_deleted_by_external_id(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    external_id: &str,
) -> Result<Option<user::Model>, DbErr> {
    of_tenant(tenant_id)
        .filter(user::Column::ExternalId.eq(external_id))
        .filter(user::Column::Scim.is_not_null())
        .filter(user::Column::DeletedAt.is_not_null())
        .order_by_desc(user::Column::DeletedAt)
        .one(db)
        .await
}

/// A user a SCIM create takes over instead of inserting one.
#[derive(Debug)]
pub enum Existing {
    /// A soft-deleted SCIM user with the create's externalId: restored.
    Deleted(user::Model),
    /// A user an SSO login created, matched by the tenant's link rule: adopted.
    Sso(user::Model),
}

/// [`find_deleted_by_external_id`] and [`find_sso_user_by_verified_email`] in ONE statement (a
/// SCIM create makes both lookups, and each statement is a round trip): the deleted user when
/// there is one (it wins, as when the two run in turn), else the SSO user.
pub async fn deleted_or_sso_by_email(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    external_id: &str,
    emails_lower: &[String],
) -> Result<Option<Existing>, DbErr> {
    use sea_orm::{FromQueryResult, Statement};
    let backend = db.get_database_backend();
    let (sql, values) = deleted_or_sso_query(backend, tenant_id, external_id, emails_lower);
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let mut picked = Vec::with_capacity(rows.len());
    for row in rows {
        picked.push((row.try_get::<i32>("", "pick")?, user::Model::from_query_result(&row, "")?));
    }
    Ok(existing_of(picked))
}

/// The user a create takes over among [`deleted_or_sso_query`]'s rows (`pick`, user): the
/// deleted one before the SSO one.
fn existing_of(picked: Vec<(i32, user::Model)>) -> Option<Existing> {
    let mut sso = None;
    for (pick, u) in picked {
        if pick == 0 {
            return Some(Existing::Deleted(u));
        }
        sso = Some(Existing::Sso(u));
    }
    sso
}

/// [`deleted_or_sso_by_email`]'s query and values: `pick` 0 for the deleted user, 1 for the SSO one.
fn deleted_or_sso_query(
    backend: sea_orm::DbBackend,
    tenant_id: &str,
    external_id: &str,
    emails_lower: &[String],
) -> (String, Vec<sea_orm::Value>) {
    let pg = backend == sea_orm::DbBackend::Postgres;
    let p = |i: usize| if pg { format!("${i}") } else { format!("?{i}") };
    let emails: Vec<String> = (0..emails_lower.len()).map(|i| p(i + 4)).collect();
    let sql = format!(
        "SELECT * FROM (SELECT 0 AS pick, u.* FROM users u WHERE u.tenant_id = {t} AND u.external_id = {x} \
         AND u.scim IS NOT NULL AND u.deleted_at IS NOT NULL ORDER BY u.deleted_at DESC LIMIT 1) d \
         UNION ALL \
         SELECT * FROM (SELECT 1 AS pick, u.* FROM users u WHERE u.tenant_id = {t} AND u.scim IS NULL \
         AND u.deleted_at IS NULL AND u.email_verified = {v} AND u.email_lower IN ({e}) LIMIT 1) s",
        t = p(1),
        x = p(2),
        v = p(3),
        e = emails.join(", "),
    );
    let mut values: Vec<sea_orm::Value> = vec![tenant_id.into(), external_id.into(), true.into()];
    values.extend(emails_lower.iter().map(|e| e.as_str().into()));
    (sql, values)
}

/// Live users of the tenant not (yet) managed by SCIM: created by an SSO login.
fn sso_users(tenant_id: &str) -> Select<user::Entity> {
    of_tenant(tenant_id).filter(user::Column::Scim.is_null()).filter(user::Column::DeletedAt.is_null())
}

/// The SSO-created user `id` of the tenant.
pub async fn find_sso_user(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<Option<user::Model>, DbErr> {
    sso_users(tenant_id).filter(user::Column::Id.eq(id)).one(db).await
}

/// An SSO-created user of the tenant whose verified email is one of `emails_lower`.
pub async fn find_sso_user_by_verified_email(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    emails_lower: Vec<String>,
) -> Result<Option<user::Model>, DbErr> {
    sso_users(tenant_id)
        .filter(user::Column::EmailLower.is_in(emails_lower))
        .filter(user::Column::EmailVerified.eq(true))
        .one(db)
        .await
}

/// The users linked to identities with this upstream subject, at one connection or at any of
/// the tenant's; sorted, without duplicates.
pub async fn users_with_subject(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    subject: &str,
    connection_id: Option<&str>,
) -> Result<Vec<String>, DbErr> {
    let mut q = identity::Entity::find()
        .filter(identity::Column::TenantId.eq(tenant_id))
        .filter(identity::Column::Subject.eq(subject));
    if let Some(c) = connection_id {
        q = q.filter(identity::Column::ConnectionId.eq(c));
    }
    let mut users: Vec<String> = q.all(db).await?.into_iter().map(|i| i.user_id).collect();
    users.sort();
    users.dedup();
    Ok(users)
}

/// Of `ids`, those that are live SCIM users of the tenant.
pub async fn live_ids(db: &impl ConnectionTrait, tenant_id: &str, ids: &[String]) -> Result<Vec<String>, DbErr> {
    of_tenant(tenant_id)
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(ids.to_vec()))
        .filter(user::Column::Scim.is_not_null())
        .filter(user::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await
}

fn set_columns(m: &mut user::ActiveModel, doc: &Value, c: &UserColumns) {
    m.user_name = Set(Some(c.user_name.clone()));
    m.user_name_lower = Set(Some(c.user_name.to_lowercase()));
    m.external_id = Set(c.external_id.clone());
    m.active = Set(c.active);
    m.email = Set(c.email.clone());
    m.email_lower = Set(c.email.as_ref().map(|e| e.to_lowercase()));
    // SCIM never verifies an address: a provisioning client may send any email. What an IdP
    // vouched for lives on the identity (`verified_email`), which SCIM never writes.
    m.email_verified = Set(false);
    m.name = Set(c.name.clone());
    m.given_name = Set(c.given_name.clone());
    m.family_name = Set(c.family_name.clone());
    m.scim = Set(Some(doc.to_string()));
}

/// Inserts a SCIM user (version 1).
pub async fn insert(
    db: &impl ConnectionTrait,
    id: String,
    tenant_id: &str,
    doc: &Value,
    cols: &UserColumns,
    now: i64,
) -> Result<user::Model, DbErr> {
    new_row(id, tenant_id, doc, cols, now).insert(db).await
}

/// The row [`insert`] writes.
fn new_row(id: String, tenant_id: &str, doc: &Value, cols: &UserColumns, now: i64) -> user::ActiveModel {
    let mut m = user::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant_id.to_string()),
        email_verified: Set(false),
        attributes: Set("{}".into()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
        ..Default::default()
    };
    set_columns(&mut m, doc, cols);
    m
}

/// The user [`insert`] would write (every column), for a caller that needs it before the write
/// ([`insert_unless_existing`]'s event).
pub fn new_user(id: String, tenant_id: &str, doc: &Value, cols: &UserColumns, now: i64) -> Result<user::Model, DbErr> {
    use sea_orm::TryIntoModel;
    new_row(id, tenant_id, doc, cols, now).try_into_model()
}

/// What [`insert_unless_existing`] did.
pub enum Inserted {
    /// The user was inserted and its event written (with its webhook deliveries).
    Inserted(user::Model),
    /// A user the create takes over exists ([`deleted_or_sso_by_email`]): nothing was written.
    Found(Existing),
    /// Asked to write [`Alone::Yes`], it could not (SQLite, or the tenant's webhook endpoints
    /// are not the ones expected): nothing was written, and the caller takes a transaction.
    NotAlone,
}

/// Whether a write runs as one statement outside any transaction (PostgreSQL): a single
/// statement is atomic by itself, so it writes its event's webhook deliveries too, one per
/// endpoint it expects ([`super::events::Expected`]: the endpoints the tenant's last event went
/// to), and runs only while the tenant's enabled endpoints are exactly those (the statement
/// checks). `No`: in the caller's transaction, deliveries read and written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alone {
    Yes,
    No,
}

/// A SCIM create's lookup ([`deleted_or_sso_by_email`]), then, when it finds nothing, the
/// insert of `row` ([`new_user`]) and its event, in the caller's transaction. On PostgreSQL
/// that is ONE statement (the lookup and the two `INSERT`s as CTEs; the webhook deliveries, when
/// an endpoint wants the event, follow); SQLite has no DML in a CTE, so there they are separate
/// statements. A userName already taken fails as [`insert`] does (a unique violation).
pub async fn insert_unless_existing(
    db: &impl ConnectionTrait,
    rng: &dyn crate::clock::Rng,
    row: &user::Model,
    emails_lower: &[String],
    event: super::events::NewEvent,
    now: i64,
    alone: Alone,
) -> Result<Inserted, DbErr> {
    let Some(external_id) = row.external_id.as_deref() else {
        return Err(DbErr::Custom("insert_unless_existing: a user without externalId".into()));
    };
    let pg = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    if alone == Alone::Yes && !pg {
        return Ok(Inserted::NotAlone);
    }
    if !pg {
        if let Some(found) = deleted_or_sso_by_email(db, &row.tenant_id, external_id, emails_lower).await? {
            return Ok(Inserted::Found(found));
        }
        let inserted = user::ActiveModel::from(row.clone()).insert(db).await?;
        super::events::emit(db, rng, now, event).await?;
        return Ok(Inserted::Inserted(inserted));
    }
    let event_id = super::events::new_id(rng);
    let expected = (alone == Alone::Yes).then(|| super::events::Expected::of(rng, &row.tenant_id, &event.event_type));
    let stmt =
        insert_unless_existing_statement(row, external_id, emails_lower, &event_id, &event, now, expected.as_ref())?;
    let rows = db.query_all_raw(stmt).await?;
    if rows.is_empty() && alone == Alone::Yes {
        // Nothing found and nothing inserted: an endpoint may want the event.
        return Ok(Inserted::NotAlone);
    }
    use sea_orm::FromQueryResult;
    let mut picked = Vec::with_capacity(rows.len());
    for r in rows {
        let u = user::Model::from_query_result(&r, "")?;
        match r.try_get::<i32>("", "pick")? {
            INSERTED => {
                if alone == Alone::No {
                    let seq: i64 = r.try_get("", "event_seq")?;
                    let endpoints: Option<String> = r.try_get("", "endpoints")?;
                    super::events::fan_out(db, rng, now, &event, &event_id, seq, endpoints.as_deref()).await?;
                }
                return Ok(Inserted::Inserted(u));
            }
            pick => picked.push((pick, u)),
        }
    }
    existing_of(picked)
        .map(Inserted::Found)
        .ok_or_else(|| DbErr::RecordNotFound("insert_unless_existing: no row".into()))
}

/// The `pick` of the inserted row in [`insert_unless_existing`]'s statement (the found ones are
/// [`deleted_or_sso_query`]'s 0 and 1).
const INSERTED: i32 = 2;

/// [`insert_unless_existing`]'s PostgreSQL statement: [`deleted_or_sso_by_email`]'s query as
/// `found`, the user's `INSERT … SELECT … WHERE NOT EXISTS (found)` and the event's (only if the
/// user was inserted); the found rows (`pick` 0 or 1) or the inserted one (`pick` 2, with the
/// event's `seq` and the endpoints it may go to). With `alone` ([`Alone::Yes`]), the insert runs
/// only while the tenant's endpoints are those expected, and the event's deliveries are written
/// with it.
fn insert_unless_existing_statement(
    row: &user::Model,
    external_id: &str,
    emails_lower: &[String],
    event_id: &str,
    event: &super::events::NewEvent,
    now: i64,
    alone: Option<&super::events::Expected>,
) -> Result<sea_orm::Statement, DbErr> {
    use sea_orm::sea_query::{Expr, Query};
    use sea_orm::Iterable;
    let backend = sea_orm::DbBackend::Postgres;
    // The lookup's first parameter is the tenant.
    let (found, mut values) = deleted_or_sso_query(backend, &row.tenant_id, external_id, emails_lower);
    // The guard names the tenant and the expected endpoints by markers, replaced once the
    // INSERT's own placeholders are renumbered (the tenant is the lookup's `$1`, the
    // expectation a value pushed after the INSERT's: neither must be renumbered with them).
    const TENANT: &str = "__fedgate_tenant__";
    const EXPECTED: &str = "__fedgate_expected__";
    let mut expectation = None;
    let condition = match alone {
        Some(alone) => {
            let guard = alone.guard(TENANT, &mut |v| {
                expectation = Some(v);
                EXPECTED.to_string()
            });
            format!("NOT EXISTS (SELECT 1 FROM found) AND {guard}")
        }
        None => "NOT EXISTS (SELECT 1 FROM found)".to_string(),
    };
    let am = user::ActiveModel::from(row.clone());
    let mut select = Query::select();
    let cols: Vec<user::Column> = user::Column::iter().collect();
    for c in &cols {
        let v = am.get(*c).into_value().unwrap_or(sea_orm::Value::String(None));
        select.expr(Expr::val(v));
    }
    select.and_where(Expr::cust(condition));
    let mut insert = Query::insert();
    insert.into_table(user::Entity).columns(cols);
    insert.select_from(select).map_err(|e| DbErr::Custom(format!("a new user's insert: {e}")))?;
    insert.returning_all();
    let built = backend.build(&insert);
    let mut insert_sql = super::shift_placeholders(&built.sql, values.len()).replace(TENANT, "$1");
    values.extend(built.values.map(|v| v.0).unwrap_or_default());
    let mut param = super::pg_bind(&mut values);
    if let Some(v) = expectation {
        insert_sql = insert_sql.replace(EXPECTED, &param(v));
    }
    let (event_cte, endpoints) =
        super::events::pg_insert_parts("e", "EXISTS (SELECT 1 FROM ins)", event_id, now, event, alone, &mut param);
    let sql = format!(
        "WITH found AS ({found}), ins AS ({insert_sql}), {event_cte} \
         SELECT found.*, NULL::bigint AS event_seq, NULL::text AS endpoints FROM found \
         UNION ALL SELECT {INSERTED} AS pick, ins.*, (SELECT seq FROM e) AS event_seq, {endpoints} AS endpoints FROM ins"
    );
    drop(param);
    Ok(sea_orm::Statement::from_sql_and_values(backend, sql, values))
}

/// Writes a SCIM document over an existing user (next version); `undelete` clears `deleted_at`
/// (a restored or adopted user).
pub async fn update(
    db: &impl ConnectionTrait,
    u: user::Model,
    doc: &Value,
    cols: &UserColumns,
    undelete: bool,
    now: i64,
) -> Result<user::Model, DbErr> {
    let version = u.version + 1;
    let mut m: user::ActiveModel = u.into();
    set_columns(&mut m, doc, cols);
    if undelete {
        m.deleted_at = Set(None);
    }
    m.version = Set(version);
    m.updated_at = Set(now);
    m.update(db).await
}

/// The user [`update`] would write (every column) over `u` with a SCIM document, for a caller
/// that needs it before the write ([`update_alone`]'s event).
pub fn updated_user(u: &user::Model, doc: &Value, cols: &UserColumns, now: i64) -> Result<user::Model, DbErr> {
    use sea_orm::TryIntoModel;
    updated_row(u, doc, cols, now).try_into_model()
}

/// [`update`]'s row, without `undelete`.
fn updated_row(u: &user::Model, doc: &Value, cols: &UserColumns, now: i64) -> user::ActiveModel {
    let mut m: user::ActiveModel = u.clone().into();
    set_columns(&mut m, doc, cols);
    m.version = Set(u.version + 1);
    m.updated_at = Set(now);
    m
}

/// A SCIM write of a user read before, as ONE statement outside any transaction (PostgreSQL,
/// [`Alone::Yes`]): [`update`]'s `UPDATE` of `u`'s columns with the document, only while the
/// user is still live at the version read (`u.version`) and no webhook endpoint could want the
/// event, and the event's `INSERT` only if the user was updated. `None`: nothing was written
/// (SQLite, the user changed or went meanwhile, or an endpoint is enabled): the caller takes the
/// transactional path, which reads the user again. A userName already taken fails as
/// [`update`] does (a unique violation).
pub async fn update_alone(
    db: &super::Db,
    rng: &dyn crate::clock::Rng,
    u: &user::Model,
    doc: &Value,
    cols: &UserColumns,
    event: super::events::NewEvent,
    now: i64,
) -> Result<Option<user::Model>, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(None);
    }
    let event_id = super::events::new_id(rng);
    let expected = super::events::Expected::of(rng, &u.tenant_id, &event.event_type);
    let stmt = update_alone_statement(u, doc, cols, &event_id, &event, &expected, now);
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    use sea_orm::FromQueryResult;
    Ok(Some(user::Model::from_query_result(&row, "")?))
}

/// [`update_alone`]'s statement (PostgreSQL).
fn update_alone_statement(
    u: &user::Model,
    doc: &Value,
    cols: &UserColumns,
    event_id: &str,
    event: &super::events::NewEvent,
    expected: &super::events::Expected,
    now: i64,
) -> sea_orm::Statement {
    use sea_orm::QueryTrait;
    let backend = sea_orm::DbBackend::Postgres;
    let m = updated_row(u, doc, cols, now);
    let mut update = user::Entity::update_many()
        .set(m)
        .filter(user::Column::Id.eq(u.id.as_str()))
        .filter(user::Column::TenantId.eq(u.tenant_id.as_str()))
        .filter(user::Column::Version.eq(u.version))
        .filter(user::Column::DeletedAt.is_null())
        .into_query();
    update.returning_all();
    let built = backend.build(&update);
    let mut values = built.values.map(|v| v.0).unwrap_or_default();
    let mut param = super::pg_bind(&mut values);
    let tenant = param(u.tenant_id.as_str().into());
    let guard = expected.guard(&tenant, &mut param);
    // The UPDATE's WHERE gains the guard (sea-query renders `WHERE … RETURNING …`).
    let sql = built.sql.replacen(" RETURNING ", &format!(" AND {guard} RETURNING "), 1);
    let (event_cte, _) = super::events::pg_insert_parts(
        "e",
        "EXISTS (SELECT 1 FROM up)",
        event_id,
        now,
        event,
        Some(expected),
        &mut param,
    );
    let sql = format!("WITH up AS ({sql}), {event_cte} SELECT up.* FROM up");
    drop(param);
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Marks a user deleted (inactive, its userName free again); a create with its externalId
/// restores it.
pub async fn soft_delete(db: &impl ConnectionTrait, u: user::Model, now: i64) -> Result<(), DbErr> {
    let version = u.version + 1;
    let mut m: user::ActiveModel = u.into();
    m.deleted_at = Set(Some(now));
    m.active = Set(false);
    m.user_name_lower = Set(None);
    m.version = Set(version);
    m.updated_at = Set(now);
    m.update(db).await?;
    Ok(())
}

/// Deletes a user and everything that names it: codes, grants, sessions, identities.
pub async fn hard_delete(db: &impl ConnectionTrait, user_id: &str) -> Result<(), DbErr> {
    auth_code::Entity::delete_many().filter(auth_code::Column::UserId.eq(user_id)).exec(db).await?;
    grant::Entity::delete_many().filter(grant::Column::UserId.eq(user_id)).exec(db).await?;
    session::Entity::delete_many().filter(session::Column::UserId.eq(user_id)).exec(db).await?;
    identity::Entity::delete_many().filter(identity::Column::UserId.eq(user_id)).exec(db).await?;
    user::Entity::delete_by_id(user_id.to_string()).exec(db).await?;
    Ok(())
}

/// A page of a list or search, and the number of matches: the users alone, or each with its
/// groups ([`super::scim_user_view::UserWithGroups`], read in the same statement).
/// The number of users a list query matches.
pub async fn count(db: &impl super::inline::ReadConn, q: &ListSql) -> Result<i64, DbErr> {
    super::scim_list::count(db, q).await
}

pub async fn list<R: super::scim_list::ListRow>(
    db: &impl super::inline::ReadConn,
    q: ListSql,
    tenant_id: &str,
    start: i64,
    count: i64,
    now: i64,
) -> Result<(i64, Vec<R>), DbErr> {
    super::scim_list::run::<R>(db, q, tenant_id, start, count, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> user::Model {
        user::Model {
            id: "usr_1".into(),
            tenant_id: "org_1".into(),
            user_name: Some("a@x.test".into()),
            email: Some("a@x.test".into()),
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            active: true,
            external_id: Some("ext".into()),
            attributes: "{}".into(),
            created_at: 1,
            updated_at: 1,
            deleted_at: None,
            user_name_lower: Some("a@x.test".into()),
            email_lower: Some("a@x.test".into()),
            scim: Some("{}".into()),
            version: 1,
        }
    }

    fn event() -> super::super::events::NewEvent {
        super::super::events::NewEvent {
            tenant_id: Some("org_1".into()),
            event_type: "user.created".into(),
            data: serde_json::json!({}),
        }
    }

    fn expected() -> super::super::events::Expected {
        super::super::events::Expected::known(Some(r#"[["whe_1", "[]"]]"#), &[("dlv_1", "whe_1")])
    }

    #[test]
    fn a_lone_create_is_guarded_by_the_tenants_endpoints() {
        let emails = ["a@x.test".to_string()];
        let alone = expected();
        let st = insert_unless_existing_statement(&row(), "ext", &emails, "evt_1", &event(), 9, Some(&alone)).unwrap();
        let values = st.values.as_ref().map(|v| v.0.clone()).unwrap_or_default();
        assert_eq!(values[0], "org_1".into(), "the lookup's first parameter is the tenant");
        let k = values.iter().position(|v| *v == r#"[["whe_1", "[]"]]"#.into()).expect("the expectation is bound") + 1;
        assert!(
            st.sql.contains(&format!(
                "WHERE NOT EXISTS (SELECT 1 FROM found) AND (SELECT json_agg(json_build_array(w.id, w.event_types) \
                 ORDER BY w.id)::text FROM webhook_endpoints w WHERE w.enabled AND (w.tenant_id IS NULL OR \
                 w.tenant_id = $1)) = ${k}"
            )),
            "{}",
            st.sql
        );
        assert!(st.sql.contains(", e_d AS (INSERT INTO deliveries "), "{}", st.sql);
        assert!(values.contains(&"dlv_1".into()) && values.contains(&"whe_1".into()), "{values:?}");
        assert!(!st.sql.contains("__fedgate_"), "{}", st.sql);
        crate::store::placeholders_match(&st);
        let st = insert_unless_existing_statement(&row(), "ext", &emails, "evt_1", &event(), 9, None).unwrap();
        assert!(!st.sql.contains("FROM found) AND"), "no guard in a transaction: {}", st.sql);
        assert!(!st.sql.contains("INSERT INTO deliveries"), "{}", st.sql);
    }

    #[test]
    fn a_lone_update_is_guarded_by_version_and_endpoints() {
        let u = row();
        let doc = serde_json::json!({"userName": "b@x.test"});
        let cols = UserColumns {
            user_name: "b@x.test".into(),
            external_id: Some("ext".into()),
            active: true,
            email: None,
            name: None,
            given_name: None,
            family_name: None,
        };
        let st = update_alone_statement(&u, &doc, &cols, "evt_1", &event(), &expected(), 9);
        assert!(st.sql.starts_with("WITH up AS (UPDATE \"users\" SET "), "{}", st.sql);
        assert!(st.sql.contains("\"version\" = $"), "{}", st.sql);
        assert!(
            st.sql.contains("\"deleted_at\" IS NULL AND (SELECT json_agg(json_build_array(w.id, w.event_types) "),
            "{}",
            st.sql
        );
        assert!(st.sql.contains(" RETURNING *), e AS (INSERT INTO events "), "{}", st.sql);
        assert!(st.sql.contains(" WHERE EXISTS (SELECT 1 FROM up) RETURNING seq), e_d AS (INSERT INTO deliveries "));
        assert!(st.sql.ends_with(" WHERE EXISTS (SELECT 1 FROM e)) SELECT up.* FROM up"), "{}", st.sql);
        crate::store::placeholders_match(&st);
        let none = super::super::events::Expected::known(None, &[]);
        let st = update_alone_statement(&u, &doc, &cols, "evt_1", &event(), &none, 9);
        assert!(st.sql.ends_with(" WHERE EXISTS (SELECT 1 FROM up) RETURNING seq) SELECT up.* FROM up"), "{}", st.sql);
        let values = st.values.as_ref().map(|v| v.0.clone()).unwrap_or_default();
        assert!(values.contains(&2i64.into()), "the next version: {values:?}");
        assert!(values.contains(&1i64.into()), "the version read: {values:?}");
    }
}
