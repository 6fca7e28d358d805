//! Groups and their members: create, replace (members sent replace the membership), patch
//! (member adds and removes from the PATCH diff), delete. Members are live SCIM users of the
//! same tenant, never of another.
use super::{check_if_match, Provisioning, ProvisioningError, Result, Versioned};
use crate::ids::ScimGroupId;
use crate::store::conn::{Conn, Tx};
use crate::store::entities::scim_group;
use crate::store::{scim_groups, scim_users, write_tx};
use crate::util::rfc3339;
use fedgate_scim::patch;
use fedgate_scim::resource::{self, RowMeta};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Member values one PATCH may carry (over all its operations, at most
/// [`patch::MAX_OPERATIONS`]): ten requests of Entra ID's or Okta's largest batches. A larger
/// change is several requests (the body is also bounded: 8 MiB).
pub const MAX_MEMBERS_PER_PATCH: usize = 10_000;

/// A group's state, as carried by `group.*` events.
fn group_event(g: &scim_group::Model) -> Value {
    json!({"group_id": g.id, "tenant_id": g.tenant_id, "display_name": g.display_name, "external_id": g.external_id})
}

impl Provisioning<'_> {
    /// The Group resource as returned; `members` (user id, userName) None when not loaded.
    pub(super) fn group_resource(&self, g: &scim_group::Model, members: Option<&[(String, String)]>) -> Value {
        let (created, modified) = (rfc3339(g.created_at), rfc3339(g.updated_at));
        let row = RowMeta { id: &g.id, created: &created, last_modified: &modified, version: g.version };
        resource::group_resource(&g.scim, &row, members, self.base)
    }

    /// The Group resource as returned (members included unless `with_members` is false).
    async fn group_view(&self, db: &impl Conn, g: &scim_group::Model, with_members: bool) -> Result<Value> {
        if !with_members {
            return Ok(self.group_resource(g, None));
        }
        let members = scim_groups::members_of_groups(db, std::slice::from_ref(&g.id)).await?;
        Ok(self.group_resource(g, Some(members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]))))
    }

    async fn load_group(&self, db: &impl Conn, id: &str) -> Result<scim_group::Model> {
        scim_groups::find(db, &self.tenant.id, id).await?.ok_or(ProvisioningError::NotFound("group"))
    }

    pub(super) async fn get_group(&self, id: &str, with_members: bool) -> Result<Versioned> {
        let g = self.load_group(self.db, id).await?;
        Ok((self.group_view(self.db, &g, with_members).await?, g.version))
    }

    /// Checks that every id is a live SCIM user of this tenant (never links across tenants):
    /// one statement per [`scim_groups::CHUNK`] ids.
    async fn check_members(&self, tx: &Tx, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(scim_groups::CHUNK) {
            let found: HashSet<String> = scim_users::live_ids(tx, &self.tenant.id, chunk).await?.into_iter().collect();
            if let Some(missing) = chunk.iter().find(|i| !found.contains(*i)) {
                return Err(ProvisioningError::UnknownMember(missing.clone()));
            }
        }
        Ok(())
    }

    /// Adds memberships and their `group.member_added` events: a few multi-row statements per
    /// 1,000 members, not statements per member.
    async fn add_members(&self, tx: &Tx, group_id: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.check_members(tx, ids).await?;
        let (_, now) = self.now();
        scim_groups::add_members(tx, &self.tenant.id, group_id, ids, now).await?;
        self.emit_members(tx, "group.member_added", group_id, ids).await
    }

    async fn remove_members(&self, tx: &Tx, group_id: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        scim_groups::remove_members(tx, group_id, ids).await?;
        self.emit_members(tx, "group.member_removed", group_id, ids).await
    }

    /// One membership event per user, in order.
    async fn emit_members(&self, tx: &Tx, kind: &str, group_id: &str, ids: &[String]) -> Result<()> {
        let data =
            ids.iter().map(|uid| json!({"group_id": group_id, "user_id": uid, "tenant_id": self.tenant.id})).collect();
        crate::events::emit_many(tx, self.rng, self.clock.now(), Some(&self.tenant.id), kind, data).await?;
        Ok(())
    }

    /// POST /Groups.
    pub(super) async fn create_group(&self, body: Value) -> Result<Versioned> {
        let (doc, members) = resource::normalize_group(body)?;
        let (now_ms, now) = self.now();
        let tx = write_tx(self.db).await?;
        let id = ScimGroupId::new(now_ms, self.rng).to_string();
        let row = scim_groups::insert(&tx, id, &self.tenant.id, &doc, now).await?;
        self.emit(&tx, "group.created", group_event(&row)).await?;
        self.add_members(&tx, &row.id, &members.unwrap_or_default()).await?;
        let view = self.group_view(&tx, &row, true).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PUT /Groups/{id}. `members` sent replaces the membership; omitted keeps it.
    pub(super) async fn replace_group(&self, id: &str, body: Value, if_match: Option<&str>) -> Result<Versioned> {
        let (doc, members) = resource::normalize_group(body)?;
        let tx = write_tx(self.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        if let Some(ids) = members {
            let current = scim_groups::member_ids(&tx, &g.id).await?;
            let (sent, held): (HashSet<&String>, HashSet<&String>) = (ids.iter().collect(), current.iter().collect());
            let removed: Vec<String> = current.iter().filter(|c| !sent.contains(c)).cloned().collect();
            let mut seen = HashSet::new();
            let added: Vec<String> =
                ids.iter().filter(|i| !held.contains(i) && seen.insert(i.as_str())).cloned().collect();
            self.remove_members(&tx, &g.id, &removed).await?;
            self.add_members(&tx, &g.id, &added).await?;
        }
        let row = self.save_group(&tx, g, &doc).await?;
        let view = self.group_view(&tx, &row, true).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// PATCH /Groups/{id}. Returns the resource (members included only when `with_members`).
    pub(super) async fn patch_group(
        &self,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        with_members: bool,
    ) -> Result<Versioned> {
        let req = patch::parse_request(&body)?;
        let values = patch::member_values(&req);
        if values > MAX_MEMBERS_PER_PATCH {
            return Err(ProvisioningError::Patch(patch::PatchError::InvalidValue(format!(
                "too many member values in one PATCH: {values} (the maximum is {MAX_MEMBERS_PER_PATCH}); send them in several requests"
            ))));
        }
        let tx = write_tx(self.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        let mut current: Value = serde_json::from_str(&g.scim).unwrap_or_else(|_| json!({}));
        current["id"] = g.id.clone().into();
        // The members the operations name, when they name them (Okta's and Entra ID's adds and
        // removes): the same diff as from the whole membership, without reading a group of
        // 50,000. Anything else (`replace` of members, remove all) reads every member.
        let ids = match patch::listed_members(&req) {
            Some(named) if named.is_empty() => Vec::new(),
            Some(named) => scim_groups::members_among(&tx, &g.id, &named).await?,
            None => scim_groups::member_ids(&tx, &g.id).await?,
        };
        if !ids.is_empty() {
            current["members"] = Value::Array(ids.iter().map(|i| json!({"value": i})).collect());
        }
        let outcome = patch::apply(&current, &req)?;
        let row = if outcome.changed {
            self.remove_members(&tx, &g.id, &outcome.members_removed).await?;
            self.add_members(&tx, &g.id, &outcome.members_added).await?;
            let (doc, _) = resource::normalize_group(outcome.resource)?;
            self.save_group(&tx, g, &doc).await?
        } else {
            g
        };
        let view = self.group_view(&tx, &row, with_members).await?;
        tx.commit().await?;
        Ok((view, row.version))
    }

    /// Writes a normalized document over a group; a rename (or new externalId) is an event.
    async fn save_group(&self, tx: &Tx, g: scim_group::Model, doc: &Value) -> Result<scim_group::Model> {
        let (_, now) = self.now();
        let display_name = doc.get("displayName").and_then(Value::as_str).unwrap_or_default();
        let renamed =
            g.display_name != display_name || g.external_id.as_deref() != doc.get("externalId").and_then(Value::as_str);
        let row = scim_groups::update(tx, g, doc, now).await?;
        if renamed {
            self.emit(tx, "group.updated", group_event(&row)).await?;
        }
        Ok(row)
    }

    /// DELETE /Groups/{id}.
    pub(super) async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<()> {
        let tx = write_tx(self.db).await?;
        let g = self.load_group(&tx, id).await?;
        check_if_match(if_match, g.version)?;
        self.emit(&tx, "group.deleted", group_event(&g)).await?;
        scim_groups::delete(&tx, &g.id).await?;
        tx.commit().await?;
        Ok(())
    }
}
