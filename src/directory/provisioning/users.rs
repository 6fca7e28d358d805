//! Users: create (restoring a soft-deleted user, adopting one an SSO login created), replace,
//! patch, delete; deactivation and deletion end the user's sessions.
use super::{check_if_match, Provisioning, ProvisioningError, Result, Versioned};
use crate::ids::UserId;
use crate::store::conn::{Conn, DbErr, Tx};
use crate::store::entities::user;
use crate::store::scim_user_view::UserWithGroups;
use crate::store::scim_users::{Alone, Existing, Inserted};
use crate::store::{is_unique_violation, scim_groups, scim_user_view, scim_users, write_tx};
use crate::tenant::{ExternalIdScope, ScimDeletePolicy, ScimLinkRule};
use crate::util::rfc3339;
use fedgate_scim::patch;
use fedgate_scim::resource::{self, RowMeta, UserColumns};
use serde_json::{json, Value};

/// The emails (lower-cased) an email link rule matches an SSO user's verified email against: the
/// `userName`, and the primary email too (both rules, as they have always been read). `None`
/// for the rules that do not match by email.
fn adoption_emails(rule: ScimLinkRule, cols: &UserColumns) -> Option<Vec<String>> {
    match rule {
        ScimLinkRule::UserName | ScimLinkRule::Email => {
            let mut emails = vec![cols.user_name.to_lowercase()];
            if let Some(e) = &cols.email {
                emails.push(e.to_lowercase());
            }
            Some(emails)
        }
        ScimLinkRule::ExternalId | ScimLinkRule::None => None,
    }
}

fn user_conflict(e: DbErr, user_name: &str) -> ProvisioningError {
    if is_unique_violation(&e) {
        ProvisioningError::UserNameTaken(user_name.to_string())
    } else {
        e.into()
    }
}

/// A PatchOp that may be written without a transaction: the parsed request, unless it may change
/// `active` (an operation whose path is `active`, with or without its schema, or a value object
/// holding it) or does not parse. Such a request takes the transactional path at once (a
/// deactivation ends sessions and revokes grants; a parse error is reported there, after the
/// token), rather than reading the user to find that out.
pub fn patch_alone(body: &Value) -> Option<patch::PatchRequest> {
    let names_active = |k: &str| {
        let k = k.to_ascii_lowercase();
        k == "active" || k.ends_with(":active")
    };
    let req = patch::parse_request(body).ok()?;
    let may_change_active = req.operations.iter().any(|op| match &op.path {
        Some(p) => names_active(&p.attr.attr),
        None => op.value.as_ref().and_then(Value::as_object).is_some_and(|m| m.keys().any(|k| names_active(k))),
    });
    (!may_change_active).then_some(req)
}

/// Whether a PUT of a User may deactivate it (`active` other than `true`): such a request takes
/// the transactional path at once, as [`patch_alone`] tells for a PATCH.
pub fn replace_may_deactivate(body: &Value) -> bool {
    !matches!(body.get("active"), None | Some(Value::Bool(true)))
}

impl Provisioning<'_> {
    /// The User resource as returned, with the given (group id, displayName) groups.
    pub(super) fn user_resource(&self, u: &user::Model, groups: &[(String, String)]) -> Value {
        let (created, modified) = (rfc3339(u.created_at), rfc3339(u.updated_at));
        let row = RowMeta { id: &u.id, created: &created, last_modified: &modified, version: u.version };
        resource::user_resource(u.scim.as_deref().unwrap_or("{}"), &row, u.active, groups, self.base)
    }

    async fn load_user(&self, db: &impl Conn, id: &str) -> Result<user::Model> {
        scim_users::find_live(db, &self.tenant.id, id).await?.ok_or(ProvisioningError::NotFound("user"))
    }

    /// The user, with its groups when `with_groups` (read in the same statement). A write of a
    /// user never changes its groups (they are read-only on the User), so the groups read here
    /// are those of the answer.
    async fn load_user_for_update(&self, tx: &Tx, id: &str, with_groups: bool) -> Result<UserWithGroups> {
        if !with_groups {
            return Ok(UserWithGroups { user: self.load_user(tx, id).await?, groups: Vec::new() });
        }
        scim_user_view::find_live_with_groups(tx, &self.tenant.id, id).await?.ok_or(ProvisioningError::NotFound("user"))
    }

    /// `GET /Users/{id}` of a user read with the request's token
    /// ([`crate::scim::auth::authenticate_with_user`]): `None` is a 404.
    pub fn found_user(&self, found: Option<UserWithGroups>) -> Result<Versioned> {
        let found = found.ok_or(ProvisioningError::NotFound("user"))?;
        Ok((self.user_resource(&found.user, &found.groups), found.user.version))
    }

    pub(super) async fn get_user(&self, id: &str, with_groups: bool) -> Result<Versioned> {
        if !with_groups {
            let u = self.load_user(self.db, id).await?;
            return Ok((self.user_resource(&u, &[]), u.version));
        }
        // The user and its groups in one statement.
        self.found_user(scim_user_view::find_live_with_groups(self.db, &self.tenant.id, id).await?)
    }

    /// POST /Users. A soft-deleted user with the same externalId is restored; a user an SSO
    /// login created is adopted (the tenant's link rule).
    pub(super) async fn create_user(&self, body: Value) -> Result<Versioned> {
        let doc = resource::normalize_user(body)?;
        let cols = resource::user_columns(&doc);
        let (now_ms, now) = self.now();
        let settings = crate::tenant::settings_of(self.tenant);
        let emails = adoption_emails(settings.scim_link, &cols).filter(|_| cols.external_id.is_some());
        // What Okta and Entra ID send (an externalId, the email link rule): the lookup, the
        // insert and its event are one statement on PostgreSQL, outside any transaction when no
        // webhook endpoint could want the event; a user to take over, or an endpoint, and the
        // transactional path looks again, in its transaction.
        let new_row = match &emails {
            Some(emails) => {
                let row =
                    scim_users::new_user(UserId::new(now_ms, self.rng).to_string(), &self.tenant.id, &doc, &cols, now)?;
                if let Inserted::Inserted(row) = self.insert_new(self.db, &row, emails, now, Alone::Yes).await? {
                    return Ok((self.user_resource(&row, &[]), row.version));
                }
                Some((row, emails))
            }
            None => None,
        };
        let tx = write_tx(self.db).await?;
        let found = match new_row {
            Some((row, emails)) => match self.insert_new(&tx, &row, emails, now, Alone::No).await? {
                Inserted::Inserted(row) => {
                    let view = self.user_resource(&row, &[]);
                    tx.commit().await?;
                    return Ok((view, row.version));
                }
                Inserted::Found(existing) => Some(existing),
                Inserted::NotAlone => {
                    return Err(DbErr::Custom("a write in a transaction is never alone".into()).into())
                }
            },
            None => self.existing_user(&tx, &cols).await?,
        };
        let (existing, kind) = match found {
            Some(Existing::Deleted(d)) => (Some(d), "user.reactivated"),
            Some(Existing::Sso(u)) => (Some(u), "user.updated"),
            None => (None, "user.created"),
        };
        let row = match existing {
            Some(old) => scim_users::update(&tx, old, &doc, &cols, true, now).await,
            None => {
                let id = UserId::new(now_ms, self.rng).to_string();
                scim_users::insert(&tx, id, &self.tenant.id, &doc, &cols, now).await
            }
        };
        let row = row.map_err(|e| user_conflict(e, &cols.user_name))?;
        let view = self.user_resource(&row, &[]);
        self.emit(&tx, kind, crate::directory::user_event(&row, "scim")).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// The user a create takes over: a soft-deleted one with the same externalId (restored), else
    /// one a person's SSO login created before provisioning was turned on (same tenant, not yet
    /// SCIM-managed, matched by the tenant's link rule: adopted instead of creating a second
    /// user for the same person). With an externalId and an email link rule (the default, and
    /// what Okta and Entra ID send) both lookups are one statement.
    async fn existing_user(&self, tx: &Tx, cols: &UserColumns) -> Result<Option<Existing>> {
        let tenant_id = &self.tenant.id;
        let settings = crate::tenant::settings_of(self.tenant);
        let emails = adoption_emails(settings.scim_link, cols);
        if let (Some(ext), Some(emails)) = (&cols.external_id, &emails) {
            return Ok(scim_users::deleted_or_sso_by_email(tx, tenant_id, ext, emails).await?);
        }
        if let Some(ext) = &cols.external_id {
            if let Some(d) = scim_users::find_deleted_by_external_id(tx, tenant_id, ext).await? {
                return Ok(Some(Existing::Deleted(d)));
            }
        }
        Ok(self.sso_user_to_adopt(tx, cols, &settings, emails).await?.map(Existing::Sso))
    }

    /// The SSO-created (not SCIM-managed) user of this tenant that a SCIM create should adopt.
    /// Email rules need an email fedgate trusted at the login (the IdP vouched for it, in a
    /// domain of the tenant); the externalId rule matches the upstream subject of a connection
    /// the tenant's `scim_link_scope` admits, and only when it names one person. `emails` are the
    /// email rules' [`adoption_emails`].
    async fn sso_user_to_adopt(
        &self,
        tx: &Tx,
        cols: &UserColumns,
        settings: &crate::tenant::TenantSettings,
        emails: Option<Vec<String>>,
    ) -> Result<Option<user::Model>> {
        let tenant_id = &self.tenant.id;
        let found = match settings.scim_link {
            ScimLinkRule::None => None,
            ScimLinkRule::ExternalId => match &cols.external_id {
                Some(ext) => {
                    let connection = match crate::tenant::external_id_scope(tx, tenant_id, settings).await? {
                        ExternalIdScope::Connection(c) => Some(c),
                        ExternalIdScope::Tenant => None,
                        ExternalIdScope::Nowhere => return Ok(None),
                    };
                    match scim_users::users_with_subject(tx, tenant_id, ext, connection.as_deref()).await?.as_slice() {
                        // The same subject at two connections naming two people: ambiguous.
                        [one] => scim_users::find_sso_user(tx, tenant_id, one).await?,
                        _ => None,
                    }
                }
                None => None,
            },
            ScimLinkRule::UserName | ScimLinkRule::Email => match emails {
                Some(emails) => scim_users::find_sso_user_by_verified_email(tx, tenant_id, emails).await?,
                None => None,
            },
        };
        Ok(found)
    }

    /// The `kind` event of a SCIM user (`row` as written).
    fn user_event(&self, kind: &str, row: &user::Model) -> crate::store::events::NewEvent {
        crate::store::events::NewEvent {
            tenant_id: Some(self.tenant.id.clone()),
            event_type: kind.into(),
            data: crate::directory::user_event(row, "scim"),
        }
    }

    /// A new user `row` inserted with its `user.created` event unless a user the create takes
    /// over exists ([`scim_users::insert_unless_existing`]), with `db` (the pool, when `alone`,
    /// or the create's transaction).
    async fn insert_new(
        &self,
        db: &impl Conn,
        row: &user::Model,
        emails: &[String],
        now: i64,
        alone: Alone,
    ) -> Result<Inserted> {
        let event = self.user_event("user.created", row);
        let user_name = row.user_name.as_deref().unwrap_or_default();
        scim_users::insert_unless_existing(db, self.rng, row, emails, event, now, alone)
            .await
            .map_err(|e| user_conflict(e, user_name))
    }

    /// PATCH /Users/{id} of a user read with the request's token
    /// ([`crate::scim::auth::authenticate_with_user`]), written in ONE statement outside any
    /// transaction when it can be ([`scim_users::update_alone`], PostgreSQL): the patch applied
    /// to what was read, written only if the user is still at that version, with its event.
    /// A patch that changes nothing writes nothing. `None`: nothing was written and the caller
    /// takes the transactional path ([`Self::patch`]), which reads the user again: on SQLite, a
    /// deactivation (it ends sessions and revokes grants), a user changed meanwhile, or a tenant
    /// whose webhook endpoints are not the ones its last event went to (the statement writes
    /// the deliveries of those it expects).
    pub async fn patch_user_read(
        &self,
        found: Option<UserWithGroups>,
        req: &patch::PatchRequest,
        if_match: Option<&str>,
        with_groups: bool,
    ) -> Result<Option<Versioned>> {
        let UserWithGroups { user: u, groups } = found.ok_or(ProvisioningError::NotFound("user"))?;
        let groups = if with_groups { groups } else { Vec::new() };
        check_if_match(if_match, u.version)?;
        let mut current: Value = serde_json::from_str(u.scim.as_deref().unwrap_or("{}")).unwrap_or_else(|_| json!({}));
        current["id"] = u.id.clone().into();
        let outcome = patch::apply(&current, req)?;
        if !outcome.changed {
            return Ok(Some((self.user_resource(&u, &groups), u.version)));
        }
        let doc = resource::normalize_user(outcome.resource)?;
        self.write_read_user(u, groups, doc).await
    }

    /// PUT /Users/{id} of a user read with the request's token, in ONE statement outside any
    /// transaction when it can be, as [`Self::patch_user_read`]: `None` when nothing was
    /// written and the caller takes the transactional path ([`Self::replace`]).
    pub async fn replace_user_read(
        &self,
        found: Option<UserWithGroups>,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Option<Versioned>> {
        let doc = resource::normalize_user(body)?;
        let UserWithGroups { user: u, groups } = found.ok_or(ProvisioningError::NotFound("user"))?;
        check_if_match(if_match, u.version)?;
        self.write_read_user(u, groups, doc).await
    }

    /// Writes a normalized document over a user read before (`u`, at its version), with its
    /// event, in one statement ([`scim_users::update_alone`]); `None` when it could not (a
    /// deactivation, which ends sessions, SQLite, the user changed meanwhile, webhook endpoints
    /// other than those expected).
    async fn write_read_user(
        &self,
        u: user::Model,
        groups: Vec<(String, String)>,
        doc: Value,
    ) -> Result<Option<Versioned>> {
        let cols = resource::user_columns(&doc);
        if u.active && !cols.active {
            return Ok(None);
        }
        let (_, now) = self.now();
        let row = scim_users::updated_user(&u, &doc, &cols, now)?;
        let kind = if !u.active && row.active { "user.reactivated" } else { "user.updated" };
        let done = scim_users::update_alone(self.db, self.rng, &u, &doc, &cols, self.user_event(kind, &row), now).await;
        Ok(done
            .map_err(|e| user_conflict(e, &cols.user_name))?
            .map(|row| (self.user_resource(&row, &groups), row.version)))
    }

    /// PUT /Users/{id}.
    pub(super) async fn replace_user(&self, id: &str, body: Value, if_match: Option<&str>) -> Result<Versioned> {
        let doc = resource::normalize_user(body)?;
        let tx = write_tx(self.db).await?;
        let UserWithGroups { user: u, groups } = self.load_user_for_update(&tx, id, true).await?;
        check_if_match(if_match, u.version)?;
        let row = self.save_user(&tx, u, doc).await?;
        let view = self.user_resource(&row, &groups);
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PATCH /Users/{id}.
    pub(super) async fn patch_user(
        &self,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        with_groups: bool,
    ) -> Result<Versioned> {
        let req = patch::parse_request(&body)?;
        let tx = write_tx(self.db).await?;
        let UserWithGroups { user: u, groups } = self.load_user_for_update(&tx, id, with_groups).await?;
        check_if_match(if_match, u.version)?;
        let mut current: Value = serde_json::from_str(u.scim.as_deref().unwrap_or("{}")).unwrap_or_else(|_| json!({}));
        current["id"] = u.id.clone().into();
        let outcome = patch::apply(&current, &req)?;
        let row = if outcome.changed {
            self.save_user(&tx, u, resource::normalize_user(outcome.resource)?).await?
        } else {
            u
        };
        let view = self.user_resource(&row, &groups);
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// Writes a normalized document over a user; a deactivation ends their sessions.
    async fn save_user(&self, tx: &Tx, u: user::Model, doc: Value) -> Result<user::Model> {
        let (_, now) = self.now();
        let cols = resource::user_columns(&doc);
        let was_active = u.active;
        let uid = u.id.clone();
        let row =
            scim_users::update(tx, u, &doc, &cols, false, now).await.map_err(|e| user_conflict(e, &cols.user_name))?;
        let kind = if was_active && !row.active {
            // Sessions end, grants are revoked, apps with a back-channel logout URI are told.
            crate::directory::sessions::revoke_user_sessions(tx, self.rng, &uid, "user_deactivated", now).await?;
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
    pub(super) async fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let (_, now) = self.now();
        let policy = crate::tenant::settings_of(self.tenant).scim_delete;
        let tx = write_tx(self.db).await?;
        let u = self.load_user(&tx, id).await?;
        check_if_match(if_match, u.version)?;
        crate::directory::sessions::revoke_user_sessions(&tx, self.rng, &u.id, "user_deleted", now).await?;
        self.emit(&tx, "user.deleted", crate::directory::user_event(&u, "scim")).await?;
        scim_groups::remove_user(&tx, &u.id).await?;
        match policy {
            ScimDeletePolicy::Soft => scim_users::soft_delete(&tx, u, now).await?,
            ScimDeletePolicy::Hard => scim_users::hard_delete(&tx, &u.id).await?,
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_that_may_deactivate() {
        assert!(replace_may_deactivate(&json!({"userName": "a", "active": false})));
        assert!(replace_may_deactivate(&json!({"userName": "a", "active": "False"})));
        assert!(!replace_may_deactivate(&json!({"userName": "a", "active": true})));
        assert!(!replace_may_deactivate(&json!({"userName": "a"})));
    }

    #[test]
    fn patches_that_may_change_active_take_the_transaction() {
        let patch =
            |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        for may in [
            patch(json!([{"op": "replace", "path": "active", "value": false}])),
            patch(json!([{"op": "Replace", "path": "Active", "value": "False"}])),
            patch(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": false}]),
            ),
            patch(json!([{"op": "replace", "value": {"displayName": "x", "active": false}}])),
            patch(
                json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "value": {"ACTIVE": true}}]),
            ),
            json!({"schemas": []}),
        ] {
            assert!(patch_alone(&may).is_none(), "{may}");
        }
        for not in [
            patch(json!([{"op": "replace", "path": "displayName", "value": "x"}])),
            patch(json!([{"op": "replace", "value": {"name.givenName": "x", "inactive": 1}}])),
            patch(json!([{"op": "add", "path": "emails", "value": [{"value": "a@b.c", "active": true}]}])),
        ] {
            assert!(patch_alone(&not).is_some(), "{not}");
        }
    }
}
