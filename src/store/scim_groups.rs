//! The queries of SCIM groups and memberships (`scim_groups`, `scim_group_members`).
use super::entities::{scim_group, scim_group_member, user};
use super::scim_sql::ListSql;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use serde_json::Value;
use std::collections::HashMap;

/// Ids bound in one statement (a multi-row INSERT binds 4 a row: 4,000 values, under SQLite's
/// 32,766 and PostgreSQL's 65,535): adding or removing 1,000 members is one statement.
pub const CHUNK: usize = 1000;

/// A group of the tenant.
pub async fn find(db: &impl ConnectionTrait, tenant_id: &str, id: &str) -> Result<Option<scim_group::Model>, DbErr> {
    scim_group::Entity::find_by_id(id.to_string()).filter(scim_group::Column::TenantId.eq(tenant_id)).one(db).await
}

fn str_of(doc: &Value, k: &str) -> String {
    doc.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Inserts a group (version 1) from its normalized document.
pub async fn insert(
    db: &impl ConnectionTrait,
    id: String,
    tenant_id: &str,
    doc: &Value,
    now: i64,
) -> Result<scim_group::Model, DbErr> {
    scim_group::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant_id.to_string()),
        display_name: Set(str_of(doc, "displayName")),
        display_name_lower: Set(str_of(doc, "displayName").to_lowercase()),
        external_id: Set(doc.get("externalId").and_then(Value::as_str).map(str::to_string)),
        scim: Set(doc.to_string()),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Writes a normalized document over a group (next version).
pub async fn update(
    db: &impl ConnectionTrait,
    g: scim_group::Model,
    doc: &Value,
    now: i64,
) -> Result<scim_group::Model, DbErr> {
    let version = g.version + 1;
    let mut m: scim_group::ActiveModel = g.into();
    m.display_name = Set(str_of(doc, "displayName"));
    m.display_name_lower = Set(str_of(doc, "displayName").to_lowercase());
    m.external_id = Set(doc.get("externalId").and_then(Value::as_str).map(str::to_string));
    m.scim = Set(doc.to_string());
    m.version = Set(version);
    m.updated_at = Set(now);
    m.update(db).await
}

/// Deletes a group and its memberships.
pub async fn delete(db: &impl ConnectionTrait, group_id: &str) -> Result<(), DbErr> {
    scim_group_member::Entity::delete_many().filter(scim_group_member::Column::GroupId.eq(group_id)).exec(db).await?;
    scim_group::Entity::delete_by_id(group_id.to_string()).exec(db).await?;
    Ok(())
}

/// The member ids of a group, oldest membership first.
pub async fn member_ids(db: &impl ConnectionTrait, group_id: &str) -> Result<Vec<String>, DbErr> {
    scim_group_member::Entity::find()
        .select_only()
        .column(scim_group_member::Column::UserId)
        .filter(scim_group_member::Column::GroupId.eq(group_id))
        .order_by_asc(scim_group_member::Column::CreatedAt)
        .order_by_asc(scim_group_member::Column::UserId)
        .into_tuple()
        .all(db)
        .await
}

/// Adds memberships (existing ones are kept as they are).
pub async fn add_members(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    group_id: &str,
    user_ids: &[String],
    now: i64,
) -> Result<(), DbErr> {
    for chunk in user_ids.chunks(CHUNK) {
        let rows = chunk.iter().map(|uid| scim_group_member::ActiveModel {
            group_id: Set(group_id.to_string()),
            user_id: Set(uid.clone()),
            tenant_id: Set(tenant_id.to_string()),
            created_at: Set(now),
        });
        scim_group_member::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([scim_group_member::Column::GroupId, scim_group_member::Column::UserId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Removes memberships of a group.
pub async fn remove_members(db: &impl ConnectionTrait, group_id: &str, user_ids: &[String]) -> Result<(), DbErr> {
    for chunk in user_ids.chunks(CHUNK) {
        scim_group_member::Entity::delete_many()
            .filter(scim_group_member::Column::GroupId.eq(group_id))
            .filter(scim_group_member::Column::UserId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Removes every membership of a user.
pub async fn remove_user(db: &impl ConnectionTrait, user_id: &str) -> Result<(), DbErr> {
    scim_group_member::Entity::delete_many().filter(scim_group_member::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(())
}

/// (user id, userName) of each group's members, oldest membership first: one statement
/// (memberships joined to their users, two columns each), whatever the group's size.
pub async fn members_of_groups(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>, DbErr> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(String, String, Option<String>)> = scim_group_member::Entity::find()
        .select_only()
        .column(scim_group_member::Column::GroupId)
        .column(scim_group_member::Column::UserId)
        .column_as(Expr::col((user::Entity, user::Column::UserName)), "user_name")
        .join(
            JoinType::LeftJoin,
            scim_group_member::Entity::belongs_to(user::Entity)
                .from(scim_group_member::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .filter(scim_group_member::Column::GroupId.is_in(ids.to_vec()))
        .order_by_asc(scim_group_member::Column::CreatedAt)
        .order_by_asc(scim_group_member::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    for (group_id, user_id, name) in rows {
        out.entry(group_id).or_default().push((user_id, name.unwrap_or_default()));
    }
    Ok(out)
}

/// Which of `user_ids` are members of the group, oldest membership first (a PATCH that names
/// its members reads only those, not the whole group).
pub async fn members_among(
    db: &impl ConnectionTrait,
    group_id: &str,
    user_ids: &[String],
) -> Result<Vec<String>, DbErr> {
    let mut found: Vec<(i64, String)> = Vec::new();
    for chunk in user_ids.chunks(CHUNK) {
        let rows: Vec<(i64, String)> = scim_group_member::Entity::find()
            .select_only()
            .column(scim_group_member::Column::CreatedAt)
            .column(scim_group_member::Column::UserId)
            .filter(scim_group_member::Column::GroupId.eq(group_id))
            .filter(scim_group_member::Column::UserId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    found.sort();
    found.dedup();
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// A page of a list or search, and the number of matches.
pub async fn list(
    db: &impl super::inline::ReadConn,
    q: ListSql,
    tenant_id: &str,
    start: i64,
    count: i64,
    now: i64,
) -> Result<(i64, Vec<scim_group::Model>), DbErr> {
    super::scim_list::run::<scim_group::Model>(db, q, tenant_id, start, count, now).await
}
