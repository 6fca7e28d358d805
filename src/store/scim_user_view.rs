//! A SCIM user with its groups in ONE statement: `GET /Users/{id}` and every page of users that
//! shows groups read them this way, and each statement is a round trip (a thread hop on SQLite),
//! so the user row and its memberships come back together (the memberships as a JSON list built
//! by the database, [`super::scim_sql::member_of_sql`]).
use super::entities::user;
use super::scim_list::{dialect, ListRow};
use super::scim_sql::{live_user_sql, member_of_sql};
use sea_orm::{DbErr, FromQueryResult, QueryResult, Statement};

/// A user and its groups as (group id, displayName).
#[derive(Debug, Clone)]
pub struct UserWithGroups {
    pub user: user::Model,
    pub groups: Vec<(String, String)>,
}

impl UserWithGroups {
    /// From the user's row and its `member_of` column.
    pub(super) fn new(user: user::Model, member_of: Option<String>) -> Self {
        let groups = member_of.and_then(|j| serde_json::from_str::<Vec<(String, String)>>(&j).ok()).unwrap_or_default();
        Self { user, groups }
    }
}

impl UserWithGroups {
    /// From a row whose user columns are named `{prefix}{column}` and whose groups are the
    /// `member_of` column.
    pub(super) fn from_prefixed(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self::new(user::Model::from_query_result(row, prefix)?, row.try_get::<Option<String>>("", "member_of")?))
    }
}

impl ListRow for UserWithGroups {
    fn row_id(&self) -> &str {
        self.user.row_id()
    }
    fn row_key(&self) -> Option<&str> {
        self.user.row_key()
    }
    fn read_inline(r: &super::inline::Readers, stmt: &Statement) -> Result<Vec<Self>, DbErr> {
        super::inline::users_with_groups(r, stmt)
    }
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Self::from_prefixed(row, "")
    }
}

/// The live SCIM user `id` of tenant `tenant_id` and its groups; `None` when there is no such
/// live user in that tenant.
pub async fn find_live_with_groups(
    db: &impl super::inline::ReadConn,
    tenant_id: &str,
    id: &str,
) -> Result<Option<UserWithGroups>, DbErr> {
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    };
    let groups = member_of_sql(dialect(db), "u");
    let live = live_user_sql("u");
    let sql =
        format!("SELECT u.*, {groups} AS member_of FROM users u WHERE u.tenant_id = {p1} AND u.id = {p2} AND {live}");
    let stmt = Statement::from_sql_and_values(backend, sql, [tenant_id.into(), id.into()]);
    if let Some(r) = db.inline() {
        return Ok(super::inline::users_with_groups(&r, &stmt)?.into_iter().next());
    }
    let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
    UserWithGroups::from_row(&row).map(Some)
}
