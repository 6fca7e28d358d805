//! A SCIM user with its groups in ONE statement: `GET /Users/{id}` runs this on every call, and
//! each statement is a round trip (a thread hop on SQLite), so the user row and its memberships
//! come back together (the memberships as a JSON list built by the database).
use super::entities::user;
use sea_orm::{DbErr, FromQueryResult, Statement};

/// The live SCIM user `id` of tenant `tenant_id` and its groups as (group id, displayName);
/// `None` when there is no such live user in that tenant.
pub async fn find_live_with_groups(
    db: &impl super::inline::ReadConn,
    tenant_id: &str,
    id: &str,
) -> Result<Option<(user::Model, Vec<(String, String)>)>, DbErr> {
    let backend = db.get_database_backend();
    let (p1, p2, groups) = match backend {
        sea_orm::DbBackend::Postgres => (
            "$1",
            "$2",
            "(SELECT json_agg(json_build_array(g.id, g.display_name))::text FROM scim_group_members m \
             JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = u.id)",
        ),
        _ => (
            "?1",
            "?2",
            "(SELECT json_group_array(json_array(g.id, g.display_name)) FROM scim_group_members m \
             JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = u.id)",
        ),
    };
    let sql = format!(
        "SELECT u.*, {groups} AS member_of FROM users u \
         WHERE u.tenant_id = {p1} AND u.id = {p2} AND u.scim IS NOT NULL AND u.deleted_at IS NULL"
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [tenant_id.into(), id.into()]);
    let (user, member_of) = if let Some(r) = db.inline() {
        match super::inline::user_with_groups(&r, &stmt)? {
            Some(found) => found,
            None => return Ok(None),
        }
    } else {
        let Some(row) = db.query_one_raw(stmt).await? else { return Ok(None) };
        (user::Model::from_query_result(&row, "")?, row.try_get::<Option<String>>("", "member_of")?)
    };
    let groups: Vec<(String, String)> =
        member_of.and_then(|j| serde_json::from_str::<Vec<(String, String)>>(&j).ok()).unwrap_or_default();
    Ok(Some((user, groups)))
}
