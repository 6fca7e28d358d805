//! The `webhook_endpoints` table.
use super::entities::webhook_endpoint::{self, Model};
use super::page::{self, Order, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// Whether an endpoint subscribed to `event_type`. Empty = everything; `user.*` = a family.
pub fn type_matches(subscribed: &[String], event_type: &str) -> bool {
    subscribed.is_empty()
        || subscribed.iter().any(|s| {
            s == "*"
                || s == event_type
                || s.strip_suffix(".*").is_some_and(|p| event_type.starts_with(&format!("{p}.")))
        })
}

/// An endpoint to register (enabled).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: String,
    pub url: String,
    pub secret_enc: String,
    /// JSON list of event types.
    pub event_types: String,
    pub tenant_id: Option<String>,
    pub now: i64,
}

pub async fn insert(db: &impl ConnectionTrait, n: NewWebhook) -> Result<Model, DbErr> {
    webhook_endpoint::ActiveModel {
        id: Set(n.id),
        url: Set(n.url),
        secret_enc: Set(n.secret_enc),
        event_types: Set(n.event_types),
        tenant_id: Set(n.tenant_id),
        enabled: Set(true),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(n.now),
        updated_at: Set(n.now),
    }
    .insert(db)
    .await
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id.to_string()).one(db).await
}

/// Every endpoint, oldest first.
pub async fn page(db: &impl ConnectionTrait, req: PageRequest<'_>) -> Result<Page<Model>, DbErr> {
    page::fetch(db, webhook_endpoint::Entity::find(), webhook_endpoint::Column::Id, Order::Asc, req, |r| r.id.clone())
        .await
}

/// What an update changes (absent: unchanged).
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    /// JSON list of event types.
    pub event_types: Option<String>,
    /// `true` also clears `disabled_reason` and `failing_since`.
    pub enabled: Option<bool>,
}

pub async fn update(db: &impl ConnectionTrait, row: Model, c: WebhookChanges, now: i64) -> Result<Model, DbErr> {
    let mut m: webhook_endpoint::ActiveModel = row.into();
    if let Some(u) = c.url {
        m.url = Set(u);
    }
    if let Some(t) = c.event_types {
        m.event_types = Set(t);
    }
    if let Some(e) = c.enabled {
        m.enabled = Set(e);
        if e {
            m.disabled_reason = Set(None);
            m.failing_since = Set(None);
        }
    }
    m.updated_at = Set(now);
    m.update(db).await
}

/// Records an endpoint's health: when it started failing (`None`: healthy), and whether it is
/// disabled, with the reason.
pub async fn set_health(
    db: &impl ConnectionTrait,
    row: Model,
    failing_since: Option<i64>,
    disabled_reason: Option<String>,
    now: i64,
) -> Result<Model, DbErr> {
    let mut m: webhook_endpoint::ActiveModel = row.into();
    m.failing_since = Set(failing_since);
    if let Some(r) = disabled_reason {
        m.enabled = Set(false);
        m.disabled_reason = Set(Some(r));
    }
    m.updated_at = Set(now);
    m.update(db).await
}

/// Removes an endpoint and its pending deliveries.
pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    super::deliveries::delete_pending_for(db, id).await?;
    webhook_endpoint::Entity::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}

/// The enabled endpoints that receive a tenant's events (`None`: events of no tenant): those of
/// the tenant and those of every tenant.
pub async fn enabled_for(db: &impl ConnectionTrait, tenant_id: Option<&str>) -> Result<Vec<Model>, DbErr> {
    let mut q = webhook_endpoint::Entity::find().filter(webhook_endpoint::Column::Enabled.eq(true));
    q = match tenant_id {
        Some(t) => q.filter(
            sea_orm::Condition::any()
                .add(webhook_endpoint::Column::TenantId.is_null())
                .add(webhook_endpoint::Column::TenantId.eq(t)),
        ),
        None => q.filter(webhook_endpoint::Column::TenantId.is_null()),
    };
    q.all(db).await
}
