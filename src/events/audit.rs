//! The audit log of admin actions: who, what, when, from where. Never secrets.
use crate::store::audit::NewAudit;
use crate::store::conn::Conn;
use serde_json::Value;

pub struct Actor<'a> {
    pub name: &'a str,
    pub ip: &'a str,
}

impl Actor<'_> {
    /// The audit entry of this actor's action.
    pub fn entry(
        &self,
        now: i64,
        action: &str,
        target_type: &str,
        target_id: Option<&str>,
        tenant_id: Option<&str>,
        details: Value,
    ) -> NewAudit {
        NewAudit {
            at: now,
            actor: self.name.to_string(),
            ip: self.ip.to_string(),
            action: action.to_string(),
            target_type: target_type.to_string(),
            target_id: target_id.map(str::to_string),
            tenant_id: tenant_id.map(str::to_string),
            details,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &impl Conn,
    now: i64,
    actor: &Actor<'_>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    tenant_id: Option<&str>,
    details: Value,
) -> Result<(), crate::store::conn::DbErr> {
    crate::store::audit::insert(db, actor.entry(now, action, target_type, target_id, tenant_id, details)).await
}

/// Removes entries older than the retention period.
pub async fn prune(db: &impl Conn, before: i64) -> Result<u64, crate::store::conn::DbErr> {
    crate::store::audit::prune(db, before).await
}
