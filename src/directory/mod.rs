//! The directory: users and the upstream identities linked to them. The one place SSO and SCIM
//! meet. A person is found by (connection, upstream subject); a first login may link to a
//! SCIM-provisioned user of the same tenant by the tenant's [`ScimLinkRule`], never across tenants.
use crate::claims::NormalizedIdentity;
use crate::clock::Rng;
use crate::ids::{IdentityId, UserId};
use crate::store::entities::{identity, scim_group, scim_group_member, user};
use crate::tenant::ScimLinkRule;
use crate::util::to_json_list;
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

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
pub async fn link_login(
    tx: &impl ConnectionTrait,
    tenant_id: &str,
    connection_id: &str,
    ident: &NormalizedIdentity,
    link_rule: ScimLinkRule,
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
            // SCIM is authoritative for provisioned users' profiles.
            let mut im: identity::ActiveModel = idn.into();
            im.groups = Set(to_json_list(&ident.groups));
            im.last_login_at = Set(now);
            let identity = im.update(tx).await?;
            return Ok(Linked { user: u, identity, created: false });
        }
        let mut um: user::ActiveModel = u.into();
        if ident.email.is_some() {
            um.email = Set(ident.email.clone());
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
        um.email_lower = Set(ident.email.as_ref().map(|e| e.to_lowercase()));
        um.updated_at = Set(now);
        let user = um.update(tx).await?;
        let mut im: identity::ActiveModel = idn.into();
        im.groups = Set(to_json_list(&ident.groups));
        im.attributes = Set(attributes_json(ident));
        im.last_login_at = Set(now);
        let identity = im.update(tx).await?;
        return Ok(Linked { user, identity, created: false });
    }
    if let Some(u) = find_provisioned(tx, tenant_id, ident, link_rule).await? {
        if !u.active || u.deleted_at.is_some() {
            return Err(LinkError::Inactive);
        }
        let identity = identity::ActiveModel {
            id: Set(IdentityId::new(now_ms, rng).to_string()),
            tenant_id: Set(tenant_id.to_string()),
            connection_id: Set(connection_id.to_string()),
            subject: Set(ident.subject.clone()),
            user_id: Set(u.id.clone()),
            attributes: Set("{}".into()),
            groups: Set(to_json_list(&ident.groups)),
            created_at: Set(now),
            last_login_at: Set(now),
        }
        .insert(tx)
        .await?;
        return Ok(Linked { user: u, identity, created: false });
    }
    create(tx, tenant_id, connection_id, ident, now_ms, rng).await
}

/// The SCIM-provisioned user of `tenant_id` a first login links to, by the tenant's rule.
/// Soft-deleted users are found too (so the login is refused rather than re-created).
async fn find_provisioned(
    tx: &impl ConnectionTrait,
    tenant_id: &str,
    ident: &NormalizedIdentity,
    rule: ScimLinkRule,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    let base = || {
        user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(user::Column::Scim.is_not_null())
            .order_by_asc(user::Column::DeletedAt)
            .order_by_asc(user::Column::Id)
    };
    // Only a verified email may link to an existing account: an IdP that does not vouch for
    // the address must not be able to take over a provisioned user.
    let email = ident.email.as_ref().filter(|_| ident.email_verified).map(|e| e.to_lowercase());
    match rule {
        ScimLinkRule::None => Ok(None),
        ScimLinkRule::ExternalId => base().filter(user::Column::ExternalId.eq(ident.subject.clone())).one(tx).await,
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
    let identity = identity::ActiveModel {
        id: Set(IdentityId::new(now_ms, rng).to_string()),
        tenant_id: Set(tenant_id.to_string()),
        connection_id: Set(connection_id.to_string()),
        subject: Set(ident.subject.clone()),
        user_id: Set(user.id.clone()),
        attributes: Set(attributes_json(ident)),
        groups: Set(to_json_list(&ident.groups)),
        created_at: Set(now),
        last_login_at: Set(now),
    }
    .insert(tx)
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
