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

/// At most this many distinct actions in one family are read one at a time; a larger family
/// (none today: the largest has a dozen) is read as one range, sorted.
const FAMILY_SEEKS: usize = 64;

/// Entries matching `f` with a sequence number below `before`, newest first.
///
/// Each filter has an index that gives the order (`tenant_id, seq`; `actor, seq`;
/// `action, seq`), so a page is a seek at any size. An action family (`tenant.`) is a range of
/// actions: its distinct actions are found by a loose index scan (one `MIN(action)` seek each),
/// then each action's newest `limit` entries are read by a seek and merged, instead of sorting
/// every entry of the family.
pub async fn search(
    db: &impl ConnectionTrait,
    f: &AuditFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    let Some(family) = f.action.as_deref().and_then(|a| a.strip_suffix('.')) else {
        return search_one(db, f, f.action.as_deref(), before, limit).await;
    };
    // `family.` ≤ action < `family/` ('/' follows '.'): every action of the family, in index order.
    let (lo, hi) = (format!("{family}."), format!("{family}/"));
    let mut actions: Vec<String> = Vec::new();
    while actions.len() <= FAMILY_SEEKS {
        let mut q = audit_entry::Entity::find()
            .select_only()
            .column_as(
                sea_orm::sea_query::Expr::from(sea_orm::sea_query::Func::min(sea_orm::sea_query::Expr::col(
                    audit_entry::Column::Action,
                ))),
                "a",
            )
            .filter(audit_entry::Column::Action.lt(hi.as_str()));
        q = match actions.last() {
            Some(a) => q.filter(audit_entry::Column::Action.gt(a.as_str())),
            None => q.filter(audit_entry::Column::Action.gte(lo.as_str())),
        };
        let Some(Some(next)) = q.into_tuple::<Option<String>>().one(db).await? else { break };
        actions.push(next);
    }
    if actions.len() > FAMILY_SEEKS {
        let mut q = filtered(f, before)
            .filter(audit_entry::Column::Action.gte(lo.as_str()))
            .filter(audit_entry::Column::Action.lt(hi.as_str()));
        q = q.order_by_desc(audit_entry::Column::Seq).limit(limit);
        return q.all(db).await;
    }
    let mut rows = Vec::new();
    for a in &actions {
        rows.extend(search_one(db, f, Some(a), before, limit).await?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// The tenant, actor and `before` filters of `f` (not the action).
fn filtered(f: &AuditFilter, before: Option<i64>) -> sea_orm::Select<audit_entry::Entity> {
    let mut q = audit_entry::Entity::find();
    if let Some(t) = &f.tenant_id {
        q = q.filter(audit_entry::Column::TenantId.eq(t.as_str()));
    }
    if let Some(a) = &f.actor {
        q = q.filter(audit_entry::Column::Actor.eq(a.as_str()));
    }
    if let Some(b) = before {
        q = q.filter(audit_entry::Column::Seq.lt(b));
    }
    q
}

/// `search` with one exact action (or none).
async fn search_one(
    db: &impl ConnectionTrait,
    f: &AuditFilter,
    action: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    let mut q = filtered(f, before);
    if let Some(a) = action {
        q = q.filter(audit_entry::Column::Action.eq(a));
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
