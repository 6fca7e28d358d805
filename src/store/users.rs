//! Queries on `users` outside SCIM provisioning: the user behind a token or session, users an
//! SSO login creates or refreshes and the SCIM-provisioned user a first login links to (a
//! user's SCIM groups come with the token subject: `sessions::subject`). Every lookup by
//! attribute is scoped to one tenant.
use super::entities::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Select, Set,
    TryIntoModel,
};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id.to_string()).one(db).await
}

/// Whether user `id` exists, is active and not deleted.
pub async fn is_live(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    Ok(get(db, id).await?.is_some_and(|u| u.active && u.deleted_at.is_none()))
}

pub async fn insert(db: &impl ConnectionTrait, u: user::Model) -> Result<user::Model, DbErr> {
    user::ActiveModel::from(u).insert(db).await
}

/// What an upstream login says about a person; `None` fields leave the stored value alone.
#[derive(Debug, Clone, Default)]
pub struct UpstreamProfile {
    /// The email, and whether fedgate trusts it.
    pub email: Option<(String, bool)>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// Refreshes an SSO-created user's profile from a login. A login that brings nothing new (the
/// usual case) writes nothing: `updated_at` says when the profile last changed, and the login
/// itself is recorded on the identity (`last_login_at`).
pub async fn update_profile(
    db: &impl ConnectionTrait,
    u: user::Model,
    p: UpstreamProfile,
    now: i64,
) -> Result<user::Model, DbErr> {
    // `set_ne` leaves a field unchanged when the login brings the value already stored.
    let mut um: user::ActiveModel = u.into();
    if let Some((email, verified)) = p.email {
        um.email_lower.set_ne(Some(email.to_lowercase()));
        um.email.set_ne(Some(email));
        um.email_verified.set_ne(verified);
    }
    if p.name.is_some() {
        um.name.set_ne(p.name);
    }
    if p.given_name.is_some() {
        um.given_name.set_ne(p.given_name);
    }
    if p.family_name.is_some() {
        um.family_name.set_ne(p.family_name);
    }
    if !um.is_changed() {
        return um.try_into_model();
    }
    um.updated_at = Set(now);
    um.update(db).await
}

/// SCIM-provisioned users of the tenant, live ones first.
fn provisioned(tenant_id: &str) -> Select<user::Entity> {
    user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Scim.is_not_null())
        .order_by_asc(user::Column::DeletedAt)
        .order_by_asc(user::Column::Id)
}

/// The SCIM-provisioned user of the tenant with this externalId (soft-deleted ones too).
pub async fn provisioned_by_external_id(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    external_id: &str,
) -> Result<Option<user::Model>, DbErr> {
    provisioned(tenant_id).filter(user::Column::ExternalId.eq(external_id)).one(db).await
}

/// The live SCIM-provisioned user of the tenant with this (lowercased) userName.
pub async fn live_provisioned_by_user_name(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    user_name_lower: &str,
) -> Result<Option<user::Model>, DbErr> {
    provisioned(tenant_id)
        .filter(user::Column::UserNameLower.eq(user_name_lower))
        .filter(user::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// The SCIM-provisioned user of the tenant with this (lowercased) email (soft-deleted ones too).
pub async fn provisioned_by_email(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    email_lower: &str,
) -> Result<Option<user::Model>, DbErr> {
    provisioned(tenant_id).filter(user::Column::EmailLower.eq(email_lower)).one(db).await
}
