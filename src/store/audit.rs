//! The `audit_log` table: who did what, when, from where.
use super::entities::audit_entry;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

/// An audit entry to write. `request_id` is taken from the current request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub at: i64,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub tenant_id: Option<String>,
    pub details: serde_json::Value,
}

pub async fn insert(db: &impl ConnectionTrait, a: NewAudit) -> Result<(), DbErr> {
    let row = audit_entry::ActiveModel {
        seq: sea_orm::NotSet,
        at: Set(a.at),
        actor: Set(a.actor),
        action: Set(a.action),
        target_type: Set(a.target_type),
        target_id: Set(a.target_id),
        tenant_id: Set(a.tenant_id),
        ip: Set(a.ip),
        request_id: Set(crate::util::current_request_id()),
        details: Set(a.details.to_string()),
    };
    audit_entry::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Entries after sequence number `after`, oldest first.
pub async fn list_after(db: &impl ConnectionTrait, after: i64, limit: u64) -> Result<Vec<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find()
        .filter(audit_entry::Column::Seq.gt(after))
        .order_by_asc(audit_entry::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// What the console's audit view filters on.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant_id: Option<String>,
    /// Exact actor (`operator:ops@vendor.example`, `admin (key_…)`).
    pub actor: Option<String>,
    /// An action (`tenant.update`) or a family (`tenant.`, ending with a dot).
    pub action: Option<String>,
}

/// Entries matching `f` with a sequence number below `before`, newest first.
pub async fn search(
    db: &impl ConnectionTrait,
    f: &AuditFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    let mut q = audit_entry::Entity::find();
    if let Some(t) = &f.tenant_id {
        q = q.filter(audit_entry::Column::TenantId.eq(t.as_str()));
    }
    if let Some(a) = &f.actor {
        q = q.filter(audit_entry::Column::Actor.eq(a.as_str()));
    }
    if let Some(a) = &f.action {
        q = match a.strip_suffix('.') {
            Some(family) => q.filter(audit_entry::Column::Action.starts_with(format!("{family}."))),
            None => q.filter(audit_entry::Column::Action.eq(a.as_str())),
        };
    }
    if let Some(b) = before {
        q = q.filter(audit_entry::Column::Seq.lt(b));
    }
    q.order_by_desc(audit_entry::Column::Seq).limit(limit).all(db).await
}

/// Removes entries older than `before` (in bounded batches).
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    super::cleanup::delete_batched::<audit_entry::Entity, _>(
        db,
        audit_entry::Column::Seq,
        audit_entry::Column::At.lt(before),
    )
    .await
}
