//! The `tenants` and `tenant_domains` tables, and deleting a tenant with everything it owns.
use super::entities::tenant::{self, Model};
use super::entities::{
    auth_code, connection, grant, identity, refresh_token, scim_group, scim_group_member, scim_request, scim_token,
    session, tenant_domain, user,
};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    tenant::Entity::find_by_id(id.to_string()).one(db).await
}

pub async fn by_slug(db: &impl ConnectionTrait, slug: &str) -> Result<Option<Model>, DbErr> {
    tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(db).await
}

/// A tenant to create.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// JSON.
    pub settings: String,
    pub now: i64,
}

/// Inserts a tenant (a taken slug is a unique violation).
pub async fn insert(db: &impl ConnectionTrait, n: NewTenant) -> Result<Model, DbErr> {
    tenant::ActiveModel {
        id: Set(n.id),
        slug: Set(n.slug),
        name: Set(n.name),
        settings: Set(n.settings),
        created_at: Set(n.now),
        updated_at: Set(n.now),
    }
    .insert(db)
    .await
}

/// What an update changes (absent: unchanged).
#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// JSON.
    pub settings: Option<String>,
}

pub async fn update(db: &impl ConnectionTrait, row: Model, c: TenantChanges, now: i64) -> Result<Model, DbErr> {
    let mut m: tenant::ActiveModel = row.into();
    if let Some(n) = c.name {
        m.name = Set(n);
    }
    if let Some(s) = c.slug {
        m.slug = Set(s);
    }
    if let Some(s) = c.settings {
        m.settings = Set(s);
    }
    m.updated_at = Set(now);
    m.update(db).await
}

/// Every tenant, oldest first.
pub async fn page(db: &impl ConnectionTrait, req: PageRequest<'_>) -> Result<Page<Model>, DbErr> {
    page::fetch(db, tenant::Entity::find(), tenant::Column::Id, Order::Asc, req, |r| r.id.clone()).await
}

/// The domain row of an email domain (lower case).
pub async fn domain(db: &impl ConnectionTrait, domain: &str) -> Result<Option<tenant_domain::Model>, DbErr> {
    tenant_domain::Entity::find_by_id(domain.to_string()).one(db).await
}

/// The tenant owning `domain` (lowercase), with its domain row's lookup in the same statement.
pub async fn owner_of_domain(db: &impl ConnectionTrait, domain: &str) -> Result<Option<Model>, DbErr> {
    tenant::Entity::find()
        .filter(
            tenant::Column::Id.in_subquery(
                Query::select()
                    .column(tenant_domain::Column::TenantId)
                    .from(tenant_domain::Entity)
                    .and_where(tenant_domain::Column::Domain.eq(domain))
                    .to_owned(),
            ),
        )
        .one(db)
        .await
}

/// A tenant's domain rows, by domain.
pub async fn domains_of(db: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<tenant_domain::Model>, DbErr> {
    tenant_domain::Entity::find()
        .filter(tenant_domain::Column::TenantId.eq(tenant_id))
        .order_by_asc(tenant_domain::Column::Domain)
        .all(db)
        .await
}

/// The domain rows of several tenants, by domain.
pub async fn domains_of_many(
    db: &impl ConnectionTrait,
    tenant_ids: &[String],
) -> Result<Vec<tenant_domain::Model>, DbErr> {
    tenant_domain::Entity::find()
        .filter(tenant_domain::Column::TenantId.is_in(tenant_ids.to_vec()))
        .order_by_asc(tenant_domain::Column::Domain)
        .all(db)
        .await
}

/// Adds a domain to a tenant (a domain of any tenant already is a unique violation).
pub async fn insert_domain(db: &impl ConnectionTrait, tenant_id: &str, domain: &str, now: i64) -> Result<(), DbErr> {
    tenant_domain::ActiveModel {
        domain: Set(domain.to_string()),
        tenant_id: Set(tenant_id.to_string()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn delete_domains(db: &impl ConnectionTrait, tenant_id: &str) -> Result<u64, DbErr> {
    Ok(tenant_domain::Entity::delete_many()
        .filter(tenant_domain::Column::TenantId.eq(tenant_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes a tenant with everything it owns: tokens, grants, sessions, identities, groups, SCIM
/// tokens and log, users, connections, domains. Run it in a transaction.
pub async fn delete_cascade(db: &impl ConnectionTrait, tenant_id: &str) -> Result<(), DbErr> {
    let tid = tenant_id.to_string();
    let grants_of_tenant = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .and_where(grant::Column::TenantId.eq(tid.clone()))
        .to_owned();
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::GrantId.in_subquery(grants_of_tenant))
        .exec(db)
        .await?;
    let users_of_tenant = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::TenantId.eq(tid.clone()))
        .to_owned();
    auth_code::Entity::delete_many().filter(auth_code::Column::UserId.in_subquery(users_of_tenant)).exec(db).await?;
    grant::Entity::delete_many().filter(grant::Column::TenantId.eq(tid.clone())).exec(db).await?;
    session::Entity::delete_many().filter(session::Column::TenantId.eq(tid.clone())).exec(db).await?;
    identity::Entity::delete_many().filter(identity::Column::TenantId.eq(tid.clone())).exec(db).await?;
    scim_group_member::Entity::delete_many()
        .filter(scim_group_member::Column::TenantId.eq(tid.clone()))
        .exec(db)
        .await?;
    scim_group::Entity::delete_many().filter(scim_group::Column::TenantId.eq(tid.clone())).exec(db).await?;
    scim_token::Entity::delete_many().filter(scim_token::Column::TenantId.eq(tid.clone())).exec(db).await?;
    scim_request::Entity::delete_many().filter(scim_request::Column::TenantId.eq(tid.clone())).exec(db).await?;
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => "DELETE FROM scim_user_counts WHERE tenant_id = $1",
            _ => "DELETE FROM scim_user_counts WHERE tenant_id = ?",
        },
        [tid.clone().into()],
    ))
    .await?;
    super::entities::scim_page_hint::Entity::delete_many()
        .filter(super::entities::scim_page_hint::Column::TenantId.eq(tid.clone()))
        .exec(db)
        .await?;
    user::Entity::delete_many().filter(user::Column::TenantId.eq(tid.clone())).exec(db).await?;
    connection::Entity::delete_many().filter(connection::Column::TenantId.eq(tid.clone())).exec(db).await?;
    tenant_domain::Entity::delete_many().filter(tenant_domain::Column::TenantId.eq(tid.clone())).exec(db).await?;
    super::domain_claims::delete_of_tenant(db, &tid).await?;
    super::claim_configs::delete(db, &tid).await?;
    tenant::Entity::delete_by_id(tid).exec(db).await?;
    Ok(())
}

/// A user of this tenant, in any state (another tenant's is not found).
pub async fn user(db: &impl ConnectionTrait, tenant_id: &str, user_id: &str) -> Result<Option<user::Model>, DbErr> {
    Ok(user::Entity::find_by_id(user_id.to_string()).one(db).await?.filter(|u| u.tenant_id == tenant_id))
}
