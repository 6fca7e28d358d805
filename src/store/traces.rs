//! The `login_traces` table.
use super::entities::login_trace::{self, Model};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    login_trace::Entity::find_by_id(id.to_string()).one(db).await
}

/// Inserts a trace row as given (an existing trace is a unique violation).
pub async fn insert(db: &impl ConnectionTrait, row: Model) -> Result<Model, DbErr> {
    login_trace::ActiveModel::from(row).reset_all().insert(db).await
}

/// Writes the changing columns of a trace: tenant, connection (when given), steps, status,
/// error, updated_at.
pub async fn update(db: &impl ConnectionTrait, old: Model, new: Model) -> Result<Model, DbErr> {
    let mut m: login_trace::ActiveModel = old.clone().into();
    if new.tenant_id != old.tenant_id {
        m.tenant_id = Set(new.tenant_id);
    }
    if new.connection_id != old.connection_id {
        m.connection_id = Set(new.connection_id);
    }
    m.steps = Set(new.steps);
    m.status = Set(new.status);
    m.error_code = Set(new.error_code);
    m.cause = Set(new.cause);
    m.fix = Set(new.fix);
    m.updated_at = Set(new.updated_at);
    m.update(db).await
}

/// A tenant's traces, newest first, optionally of one status.
pub async fn page_of_tenant(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    status: Option<&str>,
    req: PageRequest<'_>,
) -> Result<Page<Model>, DbErr> {
    let mut q = login_trace::Entity::find().filter(login_trace::Column::TenantId.eq(tenant_id));
    if let Some(s) = status {
        q = q.filter(login_trace::Column::Status.eq(s));
    }
    page::fetch(db, q, login_trace::Column::SortKey, Order::Desc, req, |r| r.sort_key.clone()).await
}

/// Removes traces created before `before` (in bounded batches).
pub async fn expire(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    super::cleanup::delete_batched::<login_trace::Entity, _>(
        db,
        login_trace::Column::Id,
        login_trace::Column::CreatedAt.lt(before),
    )
    .await
}
