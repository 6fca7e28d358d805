//! The directory: users and the upstream identities linked to them. The one place SSO and SCIM
//! meet. A person is found by (connection, upstream subject); a first login may link to a
//! SCIM-provisioned user of the same tenant by the tenant's [`ScimLinkRule`], never across tenants.
use crate::claims::NormalizedIdentity;
use crate::clock::Rng;
use crate::ids::{IdentityId, UserId};
use crate::store::conn::{Conn, DbErr};
use crate::store::entities::{identity, user};
use crate::store::{identities, users};
use crate::tenant::{ScimLinkRule, TenantSettings};
use crate::util::to_json_list;

pub mod provisioning;
pub mod sessions;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the user is deactivated")]
    Inactive,
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub struct Linked {
    pub user: user::Model,
    pub identity: identity::Model,
    pub created: bool,
}

/// Finds or creates (just in time) the user behind an upstream identity and refreshes what the
/// upstream says about them. Runs inside the caller's transaction.
///
/// `ident.email_verified` must already say whether fedgate trusts the address (the IdP vouched
/// for it AND [`crate::tenant::domain_trusted_for_email`]); see `issuer::flow`. Only such an
/// address links to a provisioned user by email, and only such an address is recorded as the
/// identity's `verified_email` (the one tokens may call verified).
pub async fn link_login(
    tx: &impl Conn,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    settings: &TenantSettings,
    now_ms: i64,
    rng: &dyn Rng,
) -> Result<Linked, LinkError> {
    let now = now_ms / 1000;
    let existing = identities::by_subject_with_user(tx, connection_id, &ident.subject).await?;
    if let Some((idn, u)) = existing {
        let Some(u) = u.filter(|u| u.tenant_id == tenant_id) else {
            // The identity points at a user that no longer exists: re-create below.
            identities::delete(tx, &idn.id).await?;
            return create(tx, tenant_id, connection_id, ident, now_ms, rng).await;
        };
        if !u.active || u.deleted_at.is_some() {
            return Err(LinkError::Inactive);
        }
        if u.scim.is_some() {
            // SCIM is authoritative for provisioned users' profiles; what the IdP vouches for
            // stays on the identity.
            let identity = identities::record_login(tx, idn, login_record(ident, None, now)).await?;
            return Ok(Linked { user: u, identity, created: false });
        }
        let profile = users::UpstreamProfile {
            email: ident.email.clone().map(|e| (e, ident.email_verified)),
            name: ident.name.clone(),
            given_name: ident.given_name.clone(),
            family_name: ident.family_name.clone(),
        };
        let user = users::update_profile(tx, u, profile, now).await?;
        let identity =
            identities::record_login(tx, idn, login_record(ident, Some(attributes_json(ident)), now)).await?;
        return Ok(Linked { user, identity, created: false });
    }
    if let Some(u) = find_provisioned(tx, tenant_id, connection_id, ident, settings).await? {
        if !u.active || u.deleted_at.is_some() {
            return Err(LinkError::Inactive);
        }
        let identity =
            identities::insert(tx, new_identity(tenant_id, connection_id, &u.id, ident, "{}".into(), now_ms, rng))
                .await?;
        return Ok(Linked { user: u, identity, created: false });
    }
    create(tx, tenant_id, connection_id, ident, now_ms, rng).await
}

/// The address this login's IdP vouched for (and fedgate trusts), or none.
fn verified_email(ident: &NormalizedIdentity) -> (Option<String>, Option<String>) {
    match ident.email.as_deref().filter(|_| ident.email_verified) {
        Some(e) => (Some(e.to_string()), crate::claims::email_domain(e)),
        None => (None, None),
    }
}

/// What a login records on an existing identity (`attributes`: `None` keeps them).
fn login_record(ident: &NormalizedIdentity, attributes: Option<String>, now: i64) -> identities::LoginRecord {
    let (verified_email, verified_email_domain) = verified_email(ident);
    identities::LoginRecord {
        groups: to_json_list(&ident.groups),
        attributes,
        verified_email,
        verified_email_domain,
        last_login_at: now,
    }
}

fn new_identity(
    tenant_id: &str,
    connection_id: &str,
    user_id: &str,
    ident: &NormalizedIdentity,
    attributes: String,
    now_ms: i64,
    rng: &dyn Rng,
) -> identity::Model {
    let now = now_ms / 1000;
    let (verified_email, verified_email_domain) = verified_email(ident);
    identity::Model {
        id: IdentityId::new(now_ms, rng).to_string(),
        tenant_id: tenant_id.to_string(),
        connection_id: connection_id.to_string(),
        subject: ident.subject.clone(),
        user_id: user_id.to_string(),
        attributes,
        groups: to_json_list(&ident.groups),
        created_at: now,
        last_login_at: now,
        verified_email,
        verified_email_domain,
    }
}

/// The SCIM-provisioned user of `tenant_id` a first login through `connection_id` links to, by
/// the tenant's rule. Soft-deleted users are found too (so the login is refused rather than
/// re-created).
async fn find_provisioned(
    tx: &impl Conn,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    settings: &TenantSettings,
) -> Result<Option<user::Model>, DbErr> {
    // Only a trusted email may link to an existing account: an IdP that does not vouch for the
    // address, or vouches for one outside the tenant's domains, must not be able to take over a
    // provisioned user.
    let email = ident.email.as_ref().filter(|_| ident.email_verified).map(|e| e.to_lowercase());
    match settings.scim_link {
        ScimLinkRule::None => Ok(None),
        ScimLinkRule::ExternalId => {
            // A subject means a person only within its connection: it links only through the
            // connection(s) the tenant's scim_link_scope admits.
            if !crate::tenant::external_id_scope(tx, tenant_id, settings).await?.admits(connection_id) {
                return Ok(None);
            }
            users::provisioned_by_external_id(tx, tenant_id, &ident.subject).await
        }
        ScimLinkRule::UserName => match email {
            Some(e) => users::live_provisioned_by_user_name(tx, tenant_id, &e).await,
            None => Ok(None),
        },
        ScimLinkRule::Email => {
            let Some(e) = email else { return Ok(None) };
            if let Some(u) = users::live_provisioned_by_user_name(tx, tenant_id, &e).await? {
                return Ok(Some(u));
            }
            users::provisioned_by_email(tx, tenant_id, &e).await
        }
    }
}

/// Upstream groups followed by the user's SCIM groups, without duplicates.
pub fn merge_groups(mut upstream: Vec<String>, scim: Vec<String>) -> Vec<String> {
    for g in scim {
        if !upstream.contains(&g) {
            upstream.push(g);
        }
    }
    upstream
}

async fn create(
    tx: &impl Conn,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    now_ms: i64,
    rng: &dyn Rng,
) -> Result<Linked, LinkError> {
    let now = now_ms / 1000;
    let user = users::insert(
        tx,
        user::Model {
            id: UserId::new(now_ms, rng).to_string(),
            tenant_id: tenant_id.to_string(),
            user_name: ident.email.clone(),
            email: ident.email.clone(),
            email_verified: ident.email_verified,
            name: ident.name.clone(),
            given_name: ident.given_name.clone(),
            family_name: ident.family_name.clone(),
            active: true,
            external_id: None,
            attributes: "{}".into(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            user_name_lower: None,
            email_lower: ident.email.as_ref().map(|e| e.to_lowercase()),
            scim: None,
            version: 0,
        },
    )
    .await?;
    let identity = identities::insert(
        tx,
        new_identity(tenant_id, connection_id, &user.id, ident, attributes_json(ident), now_ms, rng),
    )
    .await?;
    Ok(Linked { user, identity, created: true })
}

/// A user's normalized state, as carried by `user.*` events.
pub fn user_event(u: &user::Model, source: &str) -> serde_json::Value {
    serde_json::json!({
        "user_id": u.id, "tenant_id": u.tenant_id, "user_name": u.user_name, "email": u.email,
        "email_verified": u.email_verified, "name": u.name, "given_name": u.given_name, "family_name": u.family_name,
        "active": u.active, "external_id": u.external_id, "source": source,
    })
}

fn attributes_json(ident: &NormalizedIdentity) -> String {
    match &ident.attributes {
        serde_json::Value::Object(m) => serde_json::Value::Object(m.clone()).to_string(),
        _ => "{}".into(),
    }
}
