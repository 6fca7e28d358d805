//! The directory: users and the upstream identities linked to them. The one place SSO and SCIM
//! meet. A person is found by (connection, upstream subject); a first login may link to a
//! SCIM-provisioned user of the same tenant by the tenant's [`ScimLinkRule`], never across tenants.
use crate::claims::NormalizedIdentity;
use crate::clock::Rng;
use crate::ids::{IdentityId, UserId};
use crate::store::entities::{identity, scim_group, scim_group_member, user};
use crate::tenant::{ScimLinkRule, TenantSettings};
use crate::util::to_json_list;
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

pub mod provisioning;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the user is deactivated")]
    Inactive,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
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
    tx: &impl ConnectionTrait,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    settings: &TenantSettings,
    now_ms: i64,
    rng: &dyn Rng,
) -> Result<Linked, LinkError> {
    let now = now_ms / 1000;
    let existing = identity::Entity::find()
        .filter(identity::Column::ConnectionId.eq(connection_id))
        .filter(identity::Column::Subject.eq(ident.subject.clone()))
        .one(tx)
        .await?;
    if let Some(idn) = existing {
        let u = user::Entity::find_by_id(idn.user_id.clone()).one(tx).await?;
        let Some(u) = u.filter(|u| u.tenant_id == tenant_id) else {
            // The identity points at a user that no longer exists: re-create below.
            identity::Entity::delete_by_id(idn.id.clone()).exec(tx).await?;
            return create(tx, tenant_id, connection_id, ident, now_ms, rng).await;
        };
        if !u.active || u.deleted_at.is_some() {
            return Err(LinkError::Inactive);
        }
        if u.scim.is_some() {
            // SCIM is authoritative for provisioned users' profiles; what the IdP vouches for
            // stays on the identity.
            let mut im: identity::ActiveModel = idn.into();
            im.groups = Set(to_json_list(&ident.groups));
            set_verified_email(&mut im, ident);
            im.last_login_at = Set(now);
            let identity = im.update(tx).await?;
            return Ok(Linked { user: u, identity, created: false });
        }
        let mut um: user::ActiveModel = u.into();
        if ident.email.is_some() {
            um.email = Set(ident.email.clone());
            um.email_lower = Set(ident.email.as_ref().map(|e| e.to_lowercase()));
            um.email_verified = Set(ident.email_verified);
        }
        if ident.name.is_some() {
            um.name = Set(ident.name.clone());
        }
        if ident.given_name.is_some() {
            um.given_name = Set(ident.given_name.clone());
        }
        if ident.family_name.is_some() {
            um.family_name = Set(ident.family_name.clone());
        }
        um.updated_at = Set(now);
        let user = um.update(tx).await?;
        let mut im: identity::ActiveModel = idn.into();
        im.groups = Set(to_json_list(&ident.groups));
        im.attributes = Set(attributes_json(ident));
        set_verified_email(&mut im, ident);
        im.last_login_at = Set(now);
        let identity = im.update(tx).await?;
        return Ok(Linked { user, identity, created: false });
    }
    if let Some(u) = find_provisioned(tx, tenant_id, connection_id, ident, settings).await? {
        if !u.active || u.deleted_at.is_some() {
            return Err(LinkError::Inactive);
        }
        let identity =
            new_identity(tenant_id, connection_id, &u.id, ident, "{}".into(), now_ms, rng).insert(tx).await?;
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

fn set_verified_email(im: &mut identity::ActiveModel, ident: &NormalizedIdentity) {
    let (email, domain) = verified_email(ident);
    im.verified_email = Set(email);
    im.verified_email_domain = Set(domain);
}

fn new_identity(
    tenant_id: &str,
    connection_id: &str,
    user_id: &str,
    ident: &NormalizedIdentity,
    attributes: String,
    now_ms: i64,
    rng: &dyn Rng,
) -> identity::ActiveModel {
    let now = now_ms / 1000;
    let (verified_email, verified_email_domain) = verified_email(ident);
    identity::ActiveModel {
        id: Set(IdentityId::new(now_ms, rng).to_string()),
        tenant_id: Set(tenant_id.to_string()),
        connection_id: Set(connection_id.to_string()),
        subject: Set(ident.subject.clone()),
        user_id: Set(user_id.to_string()),
        attributes: Set(attributes),
        groups: Set(to_json_list(&ident.groups)),
        created_at: Set(now),
        last_login_at: Set(now),
        verified_email: Set(verified_email),
        verified_email_domain: Set(verified_email_domain),
    }
}

/// The SCIM-provisioned user of `tenant_id` a first login through `connection_id` links to, by
/// the tenant's rule. Soft-deleted users are found too (so the login is refused rather than
/// re-created).
async fn find_provisioned(
    tx: &impl ConnectionTrait,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    settings: &TenantSettings,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    let base = || {
        user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::Scim.is_not_null())
            .order_by_asc(user::Column::DeletedAt)
            .order_by_asc(user::Column::Id)
    };
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
            base().filter(user::Column::ExternalId.eq(ident.subject.clone())).one(tx).await
        }
        ScimLinkRule::UserName => match email {
            Some(e) => {
                base().filter(user::Column::UserNameLower.eq(e)).filter(user::Column::DeletedAt.is_null()).one(tx).await
            }
            None => Ok(None),
        },
        ScimLinkRule::Email => {
            let Some(e) = email else { return Ok(None) };
            if let Some(u) = base()
                .filter(user::Column::UserNameLower.eq(e.clone()))
                .filter(user::Column::DeletedAt.is_null())
                .one(tx)
                .await?
            {
                return Ok(Some(u));
            }
            base().filter(user::Column::EmailLower.eq(e)).one(tx).await
        }
    }
}

/// Display names of the SCIM groups a user belongs to, sorted.
pub async fn scim_groups_of(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    let group_ids = Query::select()
        .column(scim_group_member::Column::GroupId)
        .from(scim_group_member::Entity)
        .and_where(scim_group_member::Column::UserId.eq(user_id))
        .to_owned();
    let names: Vec<String> = scim_group::Entity::find()
        .select_only()
        .column(scim_group::Column::DisplayName)
        .filter(scim_group::Column::Id.in_subquery(group_ids))
        .order_by_asc(scim_group::Column::DisplayName)
        .into_tuple()
        .all(db)
        .await?;
    Ok(names)
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
    tx: &impl ConnectionTrait,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    now_ms: i64,
    rng: &dyn Rng,
) -> Result<Linked, LinkError> {
    let now = now_ms / 1000;
    let user = user::ActiveModel {
        id: Set(UserId::new(now_ms, rng).to_string()),
        tenant_id: Set(tenant_id.to_string()),
        user_name: Set(ident.email.clone()),
        email: Set(ident.email.clone()),
        email_verified: Set(ident.email_verified),
        name: Set(ident.name.clone()),
        given_name: Set(ident.given_name.clone()),
        family_name: Set(ident.family_name.clone()),
        active: Set(true),
        external_id: Set(None),
        attributes: Set("{}".into()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        user_name_lower: Set(None),
        email_lower: Set(ident.email.as_ref().map(|e| e.to_lowercase())),
        scim: Set(None),
        version: Set(0),
    }
    .insert(tx)
    .await?;
    let identity =
        new_identity(tenant_id, connection_id, &user.id, ident, attributes_json(ident), now_ms, rng).insert(tx).await?;
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
