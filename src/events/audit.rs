//! The audit log of admin actions: who, what, when, from where. Never secrets.
use crate::store::entities::audit_entry;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde_json::Value;

pub struct Actor<'a> {
    pub name: &'a str,
    pub ip: &'a str,
}

#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &impl ConnectionTrait,
    now: i64,
    actor: &Actor<'_>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    tenant_id: Option<&str>,
    details: Value,
) -> Result<(), sea_orm::DbErr> {
    let row = audit_entry::ActiveModel {
        seq: sea_orm::NotSet,
        at: Set(now),
        actor: Set(actor.name.to_string()),
        action: Set(action.to_string()),
        target_type: Set(target_type.to_string()),
        target_id: Set(target_id.map(str::to_string)),
        tenant_id: Set(tenant_id.map(str::to_string)),
        ip: Set(actor.ip.to_string()),
        request_id: Set(crate::util::current_request_id()),
        details: Set(details.to_string()),
    };
    audit_entry::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Removes entries older than the retention period.
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::ColumnTrait;
    crate::store::cleanup::delete_batched::<audit_entry::Entity, _>(
        db,
        audit_entry::Column::Seq,
        audit_entry::Column::At.lt(before),
    )
    .await
}
