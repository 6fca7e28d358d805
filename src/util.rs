//! Small helpers with no better home.

/// Logs an unexpected error with its whole cause chain.
pub fn log_internal(context: &str, e: &(dyn std::error::Error + 'static)) {
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
}

/// The current request's id (inside a request), or "-".
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|r| r.clone()).unwrap_or_else(|_| "-".to_string())
}

/// Records the tenant on the current request's span, so every later log line carries it.
pub fn record_tenant(tenant_id: &str) {
    tracing::Span::current().record("tenant", tenant_id);
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-26T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

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
