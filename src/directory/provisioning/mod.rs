//! SCIM provisioning: create, replace, patch and delete users and groups of one tenant, their
//! memberships, the adoption of users an SSO login created, restoring soft-deleted users, and
//! deprovisioning (deactivating or deleting a user ends their sessions).
//!
//! One database transaction per write (a failing write changes nothing), events written in it
//! (the outbox). The SCIM engine (`fedgate_scim`) normalizes, patches and renders; the queries
//! are in `store::scim_users`, `store::scim_groups` and `store::scim_sql`. Users and groups go
//! through the same entry points, parameterised by [`ResourceKind`].
//!
//! Narrow dependencies: a database, a clock, an RNG, the tenant and the tenant's SCIM base URL;
//! nothing of HTTP. Deprovisioning ends sessions through [`crate::directory::sessions`].
use crate::clock::{Clock, Rng};
use crate::store::conn::Tx;
use crate::store::entities::tenant;
use crate::store::Db;
use fedgate_scim::ResourceKind;
use serde_json::Value;

mod error;
mod groups;
mod list;
mod users;

pub use error::ProvisioningError;
pub use list::{ListPlan, ListQuery, ListView};
pub use users::{patch_alone, replace_may_deactivate};

type Result<T> = std::result::Result<T, ProvisioningError>;

/// Provisioning for one tenant, on behalf of one request.
pub struct Provisioning<'a> {
    pub db: &'a Db,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
    pub tenant: &'a tenant::Model,
    /// The tenant's SCIM base URL (`https://issuer/scim/v2/{slug}`), for `meta.location` and
    /// `$ref`s.
    pub base: &'a str,
}

/// A resource as returned, and its version (the ETag).
pub type Versioned = (Value, i64);

/// Checks `If-Match` against the current version.
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<()> {
    let Some(h) = if_match else { return Ok(()) };
    let ok = h
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == version.to_string());
    if ok {
        Ok(())
    } else {
        Err(ProvisioningError::VersionMismatch)
    }
}

impl Provisioning<'_> {
    /// (milliseconds, seconds) now.
    fn now(&self) -> (i64, i64) {
        let ms = self.clock.now_ms();
        (ms, ms / 1000)
    }

    /// Writes an event in the caller's transaction (the outbox).
    async fn emit(&self, tx: &Tx, kind: &str, data: Value) -> Result<()> {
        crate::events::emit(tx, self.rng, self.clock.now(), Some(&self.tenant.id), kind, data).await?;
        Ok(())
    }

    /// `GET /{Users,Groups}/{id}`. The membership attribute (a user's `groups`, a group's
    /// `members`) is loaded and shown only when `with_relation`.
    pub async fn get(&self, kind: ResourceKind, id: &str, with_relation: bool) -> Result<Versioned> {
        match kind {
            ResourceKind::User => self.get_user(id, with_relation).await,
            ResourceKind::Group => self.get_group(id, with_relation).await,
        }
    }

    /// `POST /{Users,Groups}`; the resource is returned with its membership attribute.
    pub async fn create(&self, kind: ResourceKind, body: Value) -> Result<Versioned> {
        match kind {
            ResourceKind::User => self.create_user(body).await,
            ResourceKind::Group => self.create_group(body).await,
        }
    }

    /// `PUT /{Users,Groups}/{id}`; the resource is returned with its membership attribute.
    pub async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Versioned> {
        match kind {
            ResourceKind::User => self.replace_user(id, body, if_match).await,
            ResourceKind::Group => self.replace_group(id, body, if_match).await,
        }
    }

    /// `PATCH /{Users,Groups}/{id}`; `with_relation` as for [`Self::get`].
    pub async fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        with_relation: bool,
    ) -> Result<Versioned> {
        match kind {
            ResourceKind::User => self.patch_user(id, body, if_match, with_relation).await,
            ResourceKind::Group => self.patch_group(id, body, if_match, with_relation).await,
        }
    }

    /// `DELETE /{Users,Groups}/{id}`.
    pub async fn delete(&self, kind: ResourceKind, id: &str, if_match: Option<&str>) -> Result<()> {
        match kind {
            ResourceKind::User => self.delete_user(id, if_match).await,
            ResourceKind::Group => self.delete_group(id, if_match).await,
        }
    }
}
