//! The directory: users and the upstream identities linked to them. The one place SSO (and,
//! later, SCIM) meet. A person is found by (connection, upstream subject), never by email alone.
use crate::claims::NormalizedIdentity;
use crate::clock::Rng;
use crate::ids::{IdentityId, UserId};
use crate::store::entities::{identity, user};
use crate::util::to_json_list;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

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
        um.updated_at = Set(now);
        let user = um.update(tx).await?;
        let mut im: identity::ActiveModel = idn.into();
        im.groups = Set(to_json_list(&ident.groups));
        im.attributes = Set(attributes_json(ident));
        im.last_login_at = Set(now);
        let identity = im.update(tx).await?;
        return Ok(Linked { user, identity, created: false });
    }
    create(tx, tenant_id, connection_id, ident, now_ms, rng).await
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

fn attributes_json(ident: &NormalizedIdentity) -> String {
    match &ident.attributes {
        serde_json::Value::Object(m) => serde_json::Value::Object(m.clone()).to_string(),
        _ => "{}".into(),
    }
}
