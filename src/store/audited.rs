//! The audited write: an admin change, its audit entry and its outbox event commit in one
//! transaction, or not at all.
//!
//! ```ignore
//! let w = store::audited::begin(&db).await?;
//! let row = store::tenants::insert(&*w, new).await?;      // any writes, on the transaction
//! w.commit(rng, audit_entry, Some(event)).await?;         // audit + event, then COMMIT
//! ```
//! Dropping the write without `commit` rolls everything back; there is no way to commit it
//! without an audit entry.
use super::audit::{self, NewAudit};
use super::events::{self, NewEvent};
use crate::clock::Rng;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

/// An open write transaction that commits only together with its audit entry.
pub struct AuditedWrite {
    tx: DatabaseTransaction,
}

/// Begins an audited write (the write lock is taken up front on SQLite).
pub async fn begin(db: &DatabaseConnection) -> Result<AuditedWrite, DbErr> {
    Ok(AuditedWrite { tx: super::write_tx(db).await? })
}

impl std::ops::Deref for AuditedWrite {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl AuditedWrite {
    /// Writes the audit entry and the event (at the audit entry's time), then commits. Returns
    /// the event id.
    pub async fn commit(self, rng: &dyn Rng, a: NewAudit, event: Option<NewEvent>) -> Result<Option<String>, DbErr> {
        let at = a.at;
        audit::insert(&self.tx, a).await?;
        let id = match event {
            Some(e) => Some(events::emit(&self.tx, rng, at, e).await?),
            None => None,
        };
        self.tx.commit().await?;
        Ok(id)
    }

    /// Gives up: nothing written on this transaction stays.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.tx.rollback().await
    }
}
