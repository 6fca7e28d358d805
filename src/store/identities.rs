//! Queries on `identities`: the links from an upstream identity (connection, subject) to a
//! user. A (connection, subject) pair links to at most one user (a unique index).
use super::entities::identity::{self, Model};
use super::entities::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// The identity with this upstream subject at this connection, with its user (when it still
/// exists), in ONE query: a returning person's login needs both, and every statement is a round
/// trip (a thread hop on SQLite).
pub async fn by_subject_with_user(
    db: &impl ConnectionTrait,
    connection_id: &str,
    subject: &str,
) -> Result<Option<(Model, Option<user::Model>)>, DbErr> {
    use super::prefixed_cols as cols;
    use sea_orm::FromQueryResult;
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        "SELECT {}, {} FROM identities i LEFT JOIN users u ON u.id = i.user_id \
         WHERE i.connection_id = {p1} AND i.subject = {p2}",
        cols::<identity::Column>("i"),
        cols::<user::Column>("u"),
    );
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [connection_id.into(), subject.into()]);
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    Ok(Some((Model::from_query_result(&row, "i_")?, user::Model::from_query_result_optional(&row, "u_")?)))
}

/// A user's identity at one connection.
pub async fn of_user_at(db: &impl ConnectionTrait, user_id: &str, connection_id: &str) -> Result<Option<Model>, DbErr> {
    identity::Entity::find()
        .filter(identity::Column::UserId.eq(user_id))
        .filter(identity::Column::ConnectionId.eq(connection_id))
        .one(db)
        .await
}

/// Links an identity (fails on a second link of the same connection and subject).
pub async fn insert(db: &impl ConnectionTrait, m: Model) -> Result<Model, DbErr> {
    identity::ActiveModel::from(m).insert(db).await
}

pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    identity::Entity::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}

/// What a login through the identity's connection records on it.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    /// The upstream groups (a JSON list).
    pub groups: String,
    /// The upstream attributes (a JSON object); `None` leaves them alone.
    pub attributes: Option<String>,
    pub verified_email: Option<String>,
    pub verified_email_domain: Option<String>,
    pub last_login_at: i64,
}

pub async fn record_login(db: &impl ConnectionTrait, idn: Model, r: LoginRecord) -> Result<Model, DbErr> {
    let mut im: identity::ActiveModel = idn.into();
    im.groups = Set(r.groups);
    if let Some(a) = r.attributes {
        im.attributes = Set(a);
    }
    im.verified_email = Set(r.verified_email);
    im.verified_email_domain = Set(r.verified_email_domain);
    im.last_login_at = Set(r.last_login_at);
    im.update(db).await
}
