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
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let mut sso = None;
    for row in rows {
        let u = user::Model::from_query_result(&row, "")?;
        if row.try_get::<i32>("", "pick")? == 0 {
            return Ok(Some(Existing::Deleted(u)));
        }
        sso = Some(Existing::Sso(u));
    }
    Ok(sso)
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
    m.insert(db).await
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
