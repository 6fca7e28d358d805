//! The `claim_configs` table: claim rules per tenant and per client, a tenant's token hook.
use super::entities::claim_config::{self, Model};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub async fn get(db: &impl ConnectionTrait, owner_id: &str) -> Result<Option<Model>, DbErr> {
    claim_config::Entity::find_by_id(owner_id.to_string()).one(db).await
}

/// The rows of a tenant and a client in one query: (tenant's, client's).
pub async fn of_pair(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    client_id: &str,
) -> Result<(Option<Model>, Option<Model>), DbErr> {
    let rows = claim_config::Entity::find()
        .filter(claim_config::Column::OwnerId.is_in([tenant_id.to_string(), client_id.to_string()]))
        .all(db)
        .await?;
    let mut t = None;
    let mut c = None;
    for r in rows {
        if r.owner_id == tenant_id {
            t = Some(r);
        } else {
            c = Some(r);
        }
    }
    Ok((t, c))
}

/// What to write (absent: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub rules: Option<Option<String>>,
    pub token_hook: Option<Option<String>>,
}

/// Inserts or updates an owner's row; deletes it when nothing is left.
pub async fn put(db: &impl ConnectionTrait, owner_id: &str, c: Changes, now: i64) -> Result<(), DbErr> {
    match get(db, owner_id).await? {
        Some(row) => {
            let rules = c.rules.clone().unwrap_or_else(|| row.rules.clone());
            let hook = c.token_hook.clone().unwrap_or_else(|| row.token_hook.clone());
            if rules.is_none() && hook.is_none() {
                return delete(db, owner_id).await;
            }
            let mut m: claim_config::ActiveModel = row.into();
            m.rules = Set(rules);
            m.token_hook = Set(hook);
            m.updated_at = Set(now);
            m.update(db).await?;
        }
        None => {
            let rules = c.rules.flatten();
            let hook = c.token_hook.flatten();
            if rules.is_none() && hook.is_none() {
                return Ok(());
            }
            claim_config::ActiveModel {
                owner_id: Set(owner_id.to_string()),
                rules: Set(rules),
                token_hook: Set(hook),
                updated_at: Set(now),
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// Removes an owner's row (tenant or client deleted).
pub async fn delete(db: &impl ConnectionTrait, owner_id: &str) -> Result<(), DbErr> {
    claim_config::Entity::delete_by_id(owner_id.to_string()).exec(db).await?;
    Ok(())
}
