//! The per-tenant SCIM request log, written in batches: each request appends a row to an
//! in-memory buffer, and a background task (or a reader of the log) inserts the buffered rows
//! with one statement every 250 ms, so logging does not add a write transaction per request.
//! At most [`MAX_BUFFERED`] rows wait; beyond that the oldest are dropped (and counted in a warning).
//! One flush at a time: a reader's flush waits for a flush under way, so it then reads every row
//! logged before it.
use crate::store::entities::scim_request;
use crate::store::{scim_tokens, Db};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Rows kept in memory at most between two flushes.
pub const MAX_BUFFERED: usize = 50_000;

/// The buffer shared by every worker of an instance.
#[derive(Default)]
pub struct RequestLog {
    buf: Mutex<Vec<scim_request::Model>>,
    /// Held while rows are taken from the buffer and written.
    flushing: tokio::sync::Mutex<()>,
}

impl RequestLog {
    /// A buffer with its flusher task (which stops when the buffer is dropped).
    pub fn start(db: Db) -> Arc<Self> {
        let log = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&log);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Some(log) = weak.upgrade() else { break };
                if let Err(e) = log.flush(&db).await {
                    crate::util::log_internal("writing the SCIM request log failed", &e);
                }
            }
        });
        log
    }

    pub fn push(&self, row: scim_request::Model) {
        if let Ok(mut b) = self.buf.lock() {
            if b.len() >= MAX_BUFFERED {
                tracing::warn!("SCIM request log buffer full; dropping the oldest entry");
                b.remove(0);
            }
            b.push(row);
        }
    }

    /// Writes every buffered row.
    pub async fn flush(&self, db: &Db) -> Result<(), crate::store::conn::DbErr> {
        let _one_at_a_time = self.flushing.lock().await;
        let rows = match self.buf.lock() {
            Ok(mut b) => std::mem::take(&mut *b),
            Err(_) => return Ok(()),
        };
        scim_tokens::insert_requests(db, rows).await
    }
}
