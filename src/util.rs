//! Small helpers with no better home.

/// Logs an unexpected error with its whole cause chain. A database that cannot be reached is
/// not unexpected: it is logged as a warning and marked on the current request
/// ([`DB_UNAVAILABLE`]), whose 500 answer the HTTP middleware then turns into a 503.
pub fn log_internal(context: &str, e: &(dyn std::error::Error + 'static)) {
    if crate::store::chain_is_unavailable(e) {
        note_db_unavailable();
        tracing::warn!(error = %e, "{context}: database unavailable");
        return;
    }
    let mut chain = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    tracing::error!(error = %chain, "{context}");
}

tokio::task_local! {
    /// The id of the request being served (set by the HTTP middleware).
    pub static REQUEST_ID: String;
    /// Set when the request being served met a database that cannot be reached.
    pub static DB_UNAVAILABLE: std::sync::Arc<DbUnavailable>;
}

/// A request's "the database is unreachable" mark: set at the first such error, awaited by the
/// HTTP middleware, which then gives the request a moment to answer and else answers 503 itself
/// (so a request never waits out `database.acquire_timeout` twice).
#[derive(Default)]
pub struct DbUnavailable {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl DbUnavailable {
    pub fn is_set(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Resolves once the mark is set.
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_set() {
            return;
        }
        notified.await;
    }
    fn set(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// Marks the current request (if any) as having met an unreachable database.
pub fn note_db_unavailable() {
    let _ = DB_UNAVAILABLE.try_with(|f| f.set());
}

/// The current request's id (inside a request), or "-".
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|r| r.clone()).unwrap_or_else(|_| "-".to_string())
}

tokio::task_local! {
    /// The request's root span (set by the HTTP middleware), so a field learnt deep inside a
    /// child span (a login step, a store call) still reaches it.
    pub static REQUEST_SPAN: tracing::Span;
}

/// Records the tenant on the current span and on the request's root span, so every later log
/// line (and the trace) carries it.
pub fn record_tenant(tenant_id: &str) {
    tracing::Span::current().record("tenant", tenant_id);
    record_on_request("tenant", tenant_id);
}

/// Records `field` on the request's root span (a field the span declares: `tenant`,
/// `connection`); nothing outside a request.
pub fn record_on_request(field: &'static str, value: &str) {
    let _ = REQUEST_SPAN.try_with(|s| {
        s.record(field, value);
    });
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-26T12:00:00Z`); the SAML core's implementation,
/// one for the whole workspace.
pub use fedgate_saml::text::rfc3339;

/// Serializes a list as a JSON string column.
pub fn to_json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Reads a JSON string column as a list (corrupt values read as empty, and are logged).
pub fn from_json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "corrupt JSON list column");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_694_400), "2026-11-26T12:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
