//! The SCIM service: one database transaction per write (a failing write changes nothing),
//! everything scoped to the tenant of the authenticated token.
use crate::http::AppState;
use crate::ids::{ScimGroupId, UserId};
use crate::scim::error::ScimError;
use crate::scim::filter;
use crate::scim::models::{self as md, Kind};
use crate::scim::path::AttrPath;
use crate::scim::sql::Sql;
use crate::store::entities::{auth_code, grant, identity, scim_group, scim_group_member, session, tenant, user};
use crate::store::{is_unique_violation, write_tx};
use crate::tenant::ScimDeletePolicy;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
    Statement,
};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The largest page (`ServiceProviderConfig.filter.maxResults`).
pub const MAX_RESULTS: i64 = 1000;
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A request's context: the tenant and the SCIM base URL.
pub struct Ctx<'a> {
    pub st: &'a AppState,
    pub tenant: tenant::Model,
    pub base: String,
}

/// List / search parameters.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// Checks `If-Match` against the current version (412 on mismatch).
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    let Some(h) = if_match else { return Ok(()) };
    let ok = h
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == version.to_string());
    if ok {
        Ok(())
    } else {
        Err(ScimError::precondition())
    }
}

fn parse_list_attrs(q: &ListQuery) -> Result<(Vec<AttrPath>, Vec<AttrPath>), ScimError> {
    Ok((md::parse_attr_list(q.attributes.as_deref())?, md::parse_attr_list(q.excluded_attributes.as_deref())?))
}

impl Ctx<'_> {
    fn now(&self) -> (i64, i64) {
        let ms = self.st.clock.now_ms();
        (ms, ms / 1000)
    }

    /// GET /Users or /Groups (and POST /.search).
    pub async fn list(&self, kind: Kind, q: &ListQuery) -> Result<Value, ScimError> {
        let (attributes, excluded) = parse_list_attrs(q)?;
        let db = &self.st.db;
        let mut sql = Sql::new(db.get_database_backend());
        let t = kind.alias();
        let table = match kind {
            Kind::User => "users",
            Kind::Group => "scim_groups",
        };
        let tp = sql.bind(self.tenant.id.clone());
        let mut wh = format!("{t}.tenant_id = {tp}");
        if kind == Kind::User {
            wh.push_str(&format!(" AND {t}.scim IS NOT NULL AND {t}.deleted_at IS NULL"));
        }
        if let Some(f) = q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let parsed = filter::parse(f)?;
            let cond = sql.filter(kind, &parsed).map_err(|m| ScimError::bad("invalidFilter", m))?;
            wh.push_str(&format!(" AND {cond}"));
        }
        let count_params = sql.params.clone();
        let count_sql = format!("SELECT COUNT(*) AS n FROM {table} {t} WHERE {wh}");
        let start = q.start_index.unwrap_or(1).max(1);
        let count = q.count.unwrap_or(100).clamp(0, MAX_RESULTS);
        let mut order = String::new();
        if let Some(sb) = q.sort_by.as_deref().filter(|s| !s.trim().is_empty()) {
            let p = AttrPath::parse(sb).map_err(|e| ScimError::bad("invalidPath", format!("sortBy: {e}")))?;
            let e = sql.sort_expr(kind, &p).map_err(|m| ScimError::bad("invalidPath", m))?;
            let desc = q.sort_order.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("descending"));
            order = format!("{e} {}, ", if desc { "DESC" } else { "ASC" });
        }
        let backend = db.get_database_backend();
        let total: i64 = db
            .query_one_raw(Statement::from_sql_and_values(backend, count_sql, count_params))
            .await?
            .and_then(|r| r.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        let mut resources = Vec::new();
        if count > 0 {
            let lim = sql.bind(count);
            let off = sql.bind(start - 1);
            let q_sql =
                format!("SELECT {t}.* FROM {table} {t} WHERE {wh} ORDER BY {order}{t}.id ASC LIMIT {lim} OFFSET {off}");
            let stmt = Statement::from_sql_and_values(backend, q_sql, sql.params.clone());
            match kind {
                Kind::User => {
                    let rows = user::Entity::find().from_raw_sql(stmt).all(db).await?;
                    let want_groups = !md::mentions(&excluded, "groups")
                        && (attributes.is_empty() || md::mentions(&attributes, "groups"));
                    let groups = if want_groups {
                        groups_of_users(db, &rows.iter().map(|u| u.id.clone()).collect::<Vec<_>>()).await?
                    } else {
                        HashMap::new()
                    };
                    for u in rows {
                        let g = groups.get(&u.id).map(Vec::as_slice).unwrap_or(&[]);
                        resources.push(md::project(md::user_resource(&u, g, &self.base), &attributes, &excluded));
                    }
                }
                Kind::Group => {
                    let rows = scim_group::Entity::find().from_raw_sql(stmt).all(db).await?;
                    let want_members = !md::mentions(&excluded, "members")
                        && (attributes.is_empty() || md::mentions(&attributes, "members"));
                    let members = if want_members {
                        members_of_groups(db, &rows.iter().map(|g| g.id.clone()).collect::<Vec<_>>()).await?
                    } else {
                        HashMap::new()
                    };
                    for g in rows {
                        let m = want_members.then(|| members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]));
                        resources.push(md::project(md::group_resource(&g, m, &self.base), &attributes, &excluded));
                    }
                }
            }
        }
        Ok(json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }))
    }

    async fn load_user(&self, db: &impl ConnectionTrait, id: &str) -> Result<user::Model, ScimError> {
        user::Entity::find_by_id(id.to_string())
            .filter(user::Column::TenantId.eq(self.tenant.id.clone()))
            .filter(user::Column::Scim.is_not_null())
            .filter(user::Column::DeletedAt.is_null())
            .one(db)
            .await?
            .ok_or_else(|| ScimError::not_found("user"))
    }

    async fn load_group(&self, db: &impl ConnectionTrait, id: &str) -> Result<scim_group::Model, ScimError> {
        scim_group::Entity::find_by_id(id.to_string())
            .filter(scim_group::Column::TenantId.eq(self.tenant.id.clone()))
            .one(db)
            .await?
            .ok_or_else(|| ScimError::not_found("group"))
    }

    /// The User resource as returned.
    pub async fn user_view(&self, db: &impl ConnectionTrait, u: &user::Model) -> Result<Value, ScimError> {
        let groups = groups_of_users(db, std::slice::from_ref(&u.id)).await?;
        let g = groups.get(&u.id).map(Vec::as_slice).unwrap_or(&[]);
        Ok(md::user_resource(u, g, &self.base))
    }

    /// The Group resource as returned (members included unless `with_members` is false).
    pub async fn group_view(
        &self,
        db: &impl ConnectionTrait,
        g: &scim_group::Model,
        with_members: bool,
    ) -> Result<Value, ScimError> {
        if !with_members {
            return Ok(md::group_resource(g, None, &self.base));
        }
        let members = members_of_groups(db, std::slice::from_ref(&g.id)).await?;
        Ok(md::group_resource(g, Some(members.get(&g.id).map(Vec::as_slice).unwrap_or(&[])), &self.base))
    }

    pub async fn get_user(&self, id: &str) -> Result<(Value, i64), ScimError> {
        let u = self.load_user(&self.st.db, id).await?;
        Ok((self.user_view(&self.st.db, &u).await?, u.version))
    }

    pub async fn get_group(&self, id: &str, with_members: bool) -> Result<(Value, i64), ScimError> {
        let g = self.load_group(&self.st.db, id).await?;
        Ok((self.group_view(&self.st.db, &g, with_members).await?, g.version))
    }

    /// POST /Users. A soft-deleted user with the same externalId is restored.
    pub async fn create_user(&self, body: Value) -> Result<(Value, i64), ScimError> {
        let doc = md::normalize_user(body)?;
        let cols = md::user_columns(&doc);
        let (now_ms, now) = self.now();
        let tx = write_tx(&self.st.db).await?;
        let deleted = match &cols.external_id {
            Some(ext) => {
                user::Entity::find()
                    .filter(user::Column::TenantId.eq(self.tenant.id.clone()))
                    .filter(user::Column::ExternalId.eq(ext.clone()))
                    .filter(user::Column::Scim.is_not_null())
                    .filter(user::Column::DeletedAt.is_not_null())
                    .order_by_desc(user::Column::DeletedAt)
                    .one(&tx)
                    .await?
            }
            None => None,
        };
        // A person who signed in through SSO before provisioning was turned on already has a
        // user: adopt it (same tenant, not yet SCIM-managed, matched by the tenant's link rule)
        // instead of creating a second user for the same person.
        let (deleted, kind) = match deleted {
            Some(d) => (Some(d), "user.reactivated"),
            None => match self.sso_user_to_adopt(&tx, &cols).await? {
                Some(u) => (Some(u), "user.updated"),
                None => (None, "user.created"),
            },
        };
        let row = match deleted {
            Some(old) => {
                let version = old.version + 1;
                let mut m: user::ActiveModel = old.into();
                set_user_columns(&mut m, &doc, &cols);
                m.deleted_at = Set(None);
                m.version = Set(version);
                m.updated_at = Set(now);
                m.update(&tx).await
            }
            None => {
                let mut m = user::ActiveModel {
                    id: Set(UserId::new(now_ms, &*self.st.rng).to_string()),
                    tenant_id: Set(self.tenant.id.clone()),
                    email_verified: Set(false),
                    attributes: Set("{}".into()),
                    created_at: Set(now),
                    updated_at: Set(now),
                    deleted_at: Set(None),
                    version: Set(1),
                    ..Default::default()
                };
                set_user_columns(&mut m, &doc, &cols);
                m.insert(&tx).await
            }
        };
        let row = row.map_err(|e| user_conflict(e, &cols.user_name))?;
        let view = md::user_resource(&row, &[], &self.base);
        self.emit(&tx, kind, crate::directory::user_event(&row, "scim")).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// The SSO-created (not SCIM-managed) user of this tenant that a SCIM create should adopt.
    /// Email rules need an email fedgate trusted at the login (the IdP vouched for it, in a
    /// domain of the tenant); the externalId rule matches the upstream subject of a connection
    /// the tenant's `scim_link_scope` admits, and only when it names one person.
    async fn sso_user_to_adopt(
        &self,
        tx: &DatabaseTransaction,
        cols: &md::UserColumns,
    ) -> Result<Option<user::Model>, ScimError> {
        use crate::tenant::{ExternalIdScope, ScimLinkRule};
        let base = || {
            user::Entity::find()
                .filter(user::Column::TenantId.eq(self.tenant.id.clone()))
                .filter(user::Column::Scim.is_null())
                .filter(user::Column::DeletedAt.is_null())
        };
        let settings = crate::tenant::settings_of(&self.tenant);
        let found = match settings.scim_link {
            ScimLinkRule::None => None,
            ScimLinkRule::ExternalId => match &cols.external_id {
                Some(ext) => {
                    let mut q = identity::Entity::find()
                        .filter(identity::Column::TenantId.eq(self.tenant.id.clone()))
                        .filter(identity::Column::Subject.eq(ext.clone()));
                    match crate::tenant::external_id_scope(tx, &self.tenant.id, &settings).await? {
                        ExternalIdScope::Connection(c) => q = q.filter(identity::Column::ConnectionId.eq(c)),
                        ExternalIdScope::Tenant => {}
                        ExternalIdScope::Nowhere => return Ok(None),
                    }
                    let mut users: Vec<String> = q.all(tx).await?.into_iter().map(|i| i.user_id).collect();
                    users.sort();
                    users.dedup();
                    match users.as_slice() {
                        // The same subject at two connections naming two people: ambiguous.
                        [one] => base().filter(user::Column::Id.eq(one.clone())).one(tx).await?,
                        _ => None,
                    }
                }
                None => None,
            },
            ScimLinkRule::UserName | ScimLinkRule::Email => {
                let mut emails = vec![cols.user_name.to_lowercase()];
                if let Some(e) = &cols.email {
                    emails.push(e.to_lowercase());
                }
                base()
                    .filter(user::Column::EmailLower.is_in(emails))
                    .filter(user::Column::EmailVerified.eq(true))
                    .one(tx)
                    .await?
            }
        };
        Ok(found)
    }

    /// PUT /Users/{id}.
    pub async fn replace_user(&self, id: &str, body: Value, if_match: Option<&str>) -> Result<(Value, i64), ScimError> {
        let doc = md::normalize_user(body)?;
        let tx = write_tx(&self.st.db).await?;
        let u = self.load_user(&tx, id).await?;
        check_if_match(if_match, u.version)?;
        let row = self.save_user(&tx, u, doc).await?;
        let view = self.user_view(&tx, &row).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PATCH /Users/{id}.
    pub async fn patch_user(&self, id: &str, body: Value, if_match: Option<&str>) -> Result<(Value, i64), ScimError> {
        let req = crate::scim::patch::parse_request(&body)?;
        let tx = write_tx(&self.st.db).await?;
        let u = self.load_user(&tx, id).await?;
        check_if_match(if_match, u.version)?;
        let mut current: Value = serde_json::from_str(u.scim.as_deref().unwrap_or("{}")).unwrap_or_else(|_| json!({}));
        current["id"] = u.id.clone().into();
        let outcome = crate::scim::patch::apply(&current, &req)?;
        let row =
            if outcome.changed { self.save_user(&tx, u, md::normalize_user(outcome.resource)?).await? } else { u };
        let view = self.user_view(&tx, &row).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    async fn save_user(&self, tx: &DatabaseTransaction, u: user::Model, doc: Value) -> Result<user::Model, ScimError> {
        let (_, now) = self.now();
        let cols = md::user_columns(&doc);
        let was_active = u.active;
        let version = u.version + 1;
        let uid = u.id.clone();
        let mut m: user::ActiveModel = u.into();
        set_user_columns(&mut m, &doc, &cols);
        m.version = Set(version);
        m.updated_at = Set(now);
        let row = m.update(tx).await.map_err(|e| user_conflict(e, &cols.user_name))?;
        let kind = if was_active && !row.active {
            // Sessions end, grants are revoked, apps with a back-channel logout URI are told.
            crate::issuer::endpoints::revoke_user_sessions(tx, self.st, &uid, "user_deactivated", now).await?;
            tracing::info!(user = %uid, tenant = %self.tenant.id, "SCIM deactivated a user; sessions and grants revoked");
            "user.deactivated"
        } else if !was_active && row.active {
            "user.reactivated"
        } else {
            "user.updated"
        };
        self.emit(tx, kind, crate::directory::user_event(&row, "scim")).await?;
        Ok(row)
    }

    /// DELETE /Users/{id}: soft or hard per tenant policy; sessions and grants revoked.
    pub async fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let (_, now) = self.now();
        let policy = crate::tenant::settings_of(&self.tenant).scim_delete;
        let tx = write_tx(&self.st.db).await?;
        let u = self.load_user(&tx, id).await?;
        check_if_match(if_match, u.version)?;
        crate::issuer::endpoints::revoke_user_sessions(&tx, self.st, &u.id, "user_deleted", now).await?;
        self.emit(&tx, "user.deleted", crate::directory::user_event(&u, "scim")).await?;
        scim_group_member::Entity::delete_many()
            .filter(scim_group_member::Column::UserId.eq(u.id.clone()))
            .exec(&tx)
            .await?;
        match policy {
            ScimDeletePolicy::Soft => {
                let version = u.version + 1;
                let mut m: user::ActiveModel = u.into();
                m.deleted_at = Set(Some(now));
                m.active = Set(false);
                m.user_name_lower = Set(None);
                m.version = Set(version);
                m.updated_at = Set(now);
                m.update(&tx).await?;
            }
            ScimDeletePolicy::Hard => {
                let uid = u.id.clone();
                auth_code::Entity::delete_many().filter(auth_code::Column::UserId.eq(uid.clone())).exec(&tx).await?;
                grant::Entity::delete_many().filter(grant::Column::UserId.eq(uid.clone())).exec(&tx).await?;
                session::Entity::delete_many().filter(session::Column::UserId.eq(uid.clone())).exec(&tx).await?;
                identity::Entity::delete_many().filter(identity::Column::UserId.eq(uid.clone())).exec(&tx).await?;
                user::Entity::delete_by_id(uid).exec(&tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks that every id is a live SCIM user of this tenant (never links across tenants).
    async fn check_members(&self, tx: &DatabaseTransaction, ids: &[String]) -> Result<(), ScimError> {
        for chunk in ids.chunks(500) {
            let found: Vec<String> = user::Entity::find()
                .select_only_id()
                .filter(user::Column::Id.is_in(chunk.to_vec()))
                .filter(user::Column::TenantId.eq(self.tenant.id.clone()))
                .filter(user::Column::Scim.is_not_null())
                .filter(user::Column::DeletedAt.is_null())
                .into_tuple()
                .all(tx)
                .await?;
            if let Some(missing) = chunk.iter().find(|i| !found.contains(i)) {
                return Err(ScimError::invalid_value(format!("member {missing:?} is not a user of this tenant")));
            }
        }
        Ok(())
    }

    async fn add_members(&self, tx: &DatabaseTransaction, group_id: &str, ids: &[String]) -> Result<(), ScimError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.check_members(tx, ids).await?;
        let (_, now) = self.now();
        for chunk in ids.chunks(200) {
            let rows = chunk.iter().map(|uid| scim_group_member::ActiveModel {
                group_id: Set(group_id.to_string()),
                user_id: Set(uid.clone()),
                tenant_id: Set(self.tenant.id.clone()),
                created_at: Set(now),
            });
            scim_group_member::Entity::insert_many(rows)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([
                        scim_group_member::Column::GroupId,
                        scim_group_member::Column::UserId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(tx)
                .await?;
        }
        for uid in ids {
            self.emit(
                tx,
                "group.member_added",
                json!({"group_id": group_id, "user_id": uid, "tenant_id": self.tenant.id}),
            )
            .await?;
        }
        Ok(())
    }

    async fn remove_members(&self, tx: &DatabaseTransaction, group_id: &str, ids: &[String]) -> Result<(), ScimError> {
        for chunk in ids.chunks(500) {
            scim_group_member::Entity::delete_many()
                .filter(scim_group_member::Column::GroupId.eq(group_id))
                .filter(scim_group_member::Column::UserId.is_in(chunk.to_vec()))
                .exec(tx)
                .await?;
        }
        for uid in ids {
            self.emit(
                tx,
                "group.member_removed",
                json!({"group_id": group_id, "user_id": uid, "tenant_id": self.tenant.id}),
            )
            .await?;
        }
        Ok(())
    }

    /// Writes an event in the caller's transaction (the outbox).
    async fn emit(&self, tx: &DatabaseTransaction, kind: &str, data: Value) -> Result<(), ScimError> {
        crate::events::emit(tx, &*self.st.rng, self.st.clock.now(), Some(&self.tenant.id), kind, data).await?;
        Ok(())
    }

    /// POST /Groups.
    pub async fn create_group(&self, body: Value) -> Result<(Value, i64), ScimError> {
        let (doc, members) = md::normalize_group(body)?;
        let (now_ms, now) = self.now();
        let tx = write_tx(&self.st.db).await?;
        let row = scim_group::ActiveModel {
            id: Set(ScimGroupId::new(now_ms, &*self.st.rng).to_string()),
            tenant_id: Set(self.tenant.id.clone()),
            display_name: Set(str_of(&doc, "displayName")),
            display_name_lower: Set(str_of(&doc, "displayName").to_lowercase()),
            external_id: Set(doc.get("externalId").and_then(Value::as_str).map(str::to_string)),
            scim: Set(doc.to_string()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
        self.emit(&tx, "group.created", group_event(&row)).await?;
        self.add_members(&tx, &row.id, &members.unwrap_or_default()).await?;
        let view = self.group_view(&tx, &row, true).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PUT /Groups/{id}. `members` sent replaces the membership; omitted keeps it.
    pub async fn replace_group(
        &self,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<(Value, i64), ScimError> {
        let (doc, members) = md::normalize_group(body)?;
        let tx = write_tx(&self.st.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        if let Some(ids) = members {
            let current = member_ids(&tx, &g.id).await?;
            let removed: Vec<String> = current.iter().filter(|c| !ids.contains(c)).cloned().collect();
            let added: Vec<String> = ids.iter().filter(|i| !current.contains(i)).cloned().collect();
            self.remove_members(&tx, &g.id, &removed).await?;
            self.add_members(&tx, &g.id, &added).await?;
        }
        let row = self.save_group(&tx, g, &doc).await?;
        let view = self.group_view(&tx, &row, true).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PATCH /Groups/{id}. Returns the resource (members included only when `with_members`).
    pub async fn patch_group(
        &self,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        with_members: bool,
    ) -> Result<(Value, i64), ScimError> {
        let req = crate::scim::patch::parse_request(&body)?;
        let tx = write_tx(&self.st.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        let mut current: Value = serde_json::from_str(&g.scim).unwrap_or_else(|_| json!({}));
        current["id"] = g.id.clone().into();
        let ids = member_ids(&tx, &g.id).await?;
        if !ids.is_empty() {
            current["members"] = Value::Array(ids.iter().map(|i| json!({"value": i})).collect());
        }
        let outcome = crate::scim::patch::apply(&current, &req)?;
        let row = if outcome.changed {
            self.remove_members(&tx, &g.id, &outcome.members_removed).await?;
            self.add_members(&tx, &g.id, &outcome.members_added).await?;
            let (doc, _) = md::normalize_group(outcome.resource)?;
            self.save_group(&tx, g, &doc).await?
        } else {
            g
        };
        let view = self.group_view(&tx, &row, with_members).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    async fn save_group(
        &self,
        tx: &DatabaseTransaction,
        g: scim_group::Model,
        doc: &Value,
    ) -> Result<scim_group::Model, ScimError> {
        let (_, now) = self.now();
        let version = g.version + 1;
        let renamed = g.display_name != str_of(doc, "displayName")
            || g.external_id.as_deref() != doc.get("externalId").and_then(Value::as_str);
        let mut m: scim_group::ActiveModel = g.into();
        m.display_name = Set(str_of(doc, "displayName"));
        m.display_name_lower = Set(str_of(doc, "displayName").to_lowercase());
        m.external_id = Set(doc.get("externalId").and_then(Value::as_str).map(str::to_string));
        m.scim = Set(doc.to_string());
        m.version = Set(version);
        m.updated_at = Set(now);
        let row = m.update(tx).await?;
        if renamed {
            self.emit(tx, "group.updated", group_event(&row)).await?;
        }
        Ok(row)
    }

    /// DELETE /Groups/{id}.
    pub async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let tx = write_tx(&self.st.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        scim_group_member::Entity::delete_many()
            .filter(scim_group_member::Column::GroupId.eq(g.id.clone()))
            .exec(&tx)
            .await?;
        self.emit(&tx, "group.deleted", group_event(&g)).await?;
        scim_group::Entity::delete_by_id(g.id).exec(&tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A group's state, as carried by `group.*` events.
fn group_event(g: &scim_group::Model) -> Value {
    json!({"group_id": g.id, "tenant_id": g.tenant_id, "display_name": g.display_name, "external_id": g.external_id})
}

fn str_of(doc: &Value, k: &str) -> String {
    doc.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn set_user_columns(m: &mut user::ActiveModel, doc: &Value, c: &md::UserColumns) {
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

fn user_conflict(e: sea_orm::DbErr, user_name: &str) -> ScimError {
    if is_unique_violation(&e) {
        ScimError::uniqueness(format!("userName {user_name:?} is already taken in this tenant"))
    } else {
        e.into()
    }
}

async fn member_ids(db: &impl ConnectionTrait, group_id: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    use sea_orm::QuerySelect;
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

/// (group id, displayName) of each user's groups.
async fn groups_of_users(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>, sea_orm::DbErr> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let links =
        scim_group_member::Entity::find().filter(scim_group_member::Column::UserId.is_in(ids.to_vec())).all(db).await?;
    if links.is_empty() {
        return Ok(out);
    }
    let gids: Vec<String> = links.iter().map(|l| l.group_id.clone()).collect();
    let names: HashMap<String, String> = scim_group::Entity::find()
        .filter(scim_group::Column::Id.is_in(gids))
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.display_name))
        .collect();
    for l in links {
        if let Some(n) = names.get(&l.group_id) {
            out.entry(l.user_id).or_default().push((l.group_id, n.clone()));
        }
    }
    Ok(out)
}

/// (user id, userName) of each group's members.
async fn members_of_groups(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>, sea_orm::DbErr> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let users_in = Query::select()
        .column(scim_group_member::Column::UserId)
        .from(scim_group_member::Entity)
        .and_where(scim_group_member::Column::GroupId.is_in(ids.to_vec()))
        .to_owned();
    let links = scim_group_member::Entity::find()
        .filter(scim_group_member::Column::GroupId.is_in(ids.to_vec()))
        .order_by_asc(scim_group_member::Column::CreatedAt)
        .order_by_asc(scim_group_member::Column::UserId)
        .all(db)
        .await?;
    let names: HashMap<String, String> = user::Entity::find()
        .filter(user::Column::Id.in_subquery(users_in))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.user_name.unwrap_or_default()))
        .collect();
    for l in links {
        let n = names.get(&l.user_id).cloned().unwrap_or_default();
        out.entry(l.group_id).or_default().push((l.user_id, n));
    }
    Ok(out)
}

trait SelectOnlyId {
    fn select_only_id(self) -> sea_orm::Select<user::Entity>;
}

impl SelectOnlyId for sea_orm::Select<user::Entity> {
    fn select_only_id(self) -> sea_orm::Select<user::Entity> {
        use sea_orm::QuerySelect;
        self.select_only().column(user::Column::Id)
    }
}
