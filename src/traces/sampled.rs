//! Failures that belong to no pending login (an ACS post that answers nothing we asked, an
//! OIDC callback with an unknown `state`, a request over a rate limit) are anonymous: anyone
//! can send them, as fast as they like. They are counted in metrics and logged at most once per
//! `rate_limits.failure_log_interval` for each (scope, code), with the number of lines
//! suppressed since; nothing is written to the database for them.
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Mutex;

/// Distinct (scope, code) pairs remembered; past this the table starts afresh.
const MAX_ENTRIES: usize = 10_000;

struct Seen {
    last_ms: i64,
    suppressed: u64,
}

/// Decides which anonymous failures are logged.
pub struct FailureLog {
    interval_ms: i64,
    seen: Mutex<HashMap<(String, String), Seen>>,
}

impl FailureLog {
    pub fn new(interval_secs: i64) -> Self {
        Self { interval_ms: interval_secs.saturating_mul(1000), seen: Mutex::new(HashMap::new()) }
    }

    /// `Some(suppressed since the last line)` when this occurrence is to be logged.
    pub fn sample(&self, now_ms: i64, scope: &str, code: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ENTRIES && !seen.contains_key(&(scope.to_string(), code.to_string())) {
            seen.clear();
        }
        let e = seen.entry((scope.to_string(), code.to_string())).or_insert(Seen { last_ms: i64::MIN, suppressed: 0 });
        if e.last_ms == i64::MIN || now_ms - e.last_ms >= self.interval_ms {
            let n = e.suppressed;
            e.last_ms = now_ms;
            e.suppressed = 0;
            Some(n)
        } else {
            e.suppressed += 1;
            None
        }
    }
}

impl FailureLog {
    /// Logs an anonymous failure if its (scope, code) was not logged within the interval.
    pub fn note(&self, now_ms: i64, scope: &str, detail_scope: &str, code: &str, detail: &str) {
        if let Some(suppressed) = self.sample(now_ms, &format!("{scope}:{detail_scope}"), code) {
            tracing::warn!(
                scope,
                key = detail_scope,
                code,
                suppressed,
                detail,
                "anonymous failure (logged at most once per interval; `suppressed` similar ones since the last line)"
            );
        }
    }

    /// Counts and (sampled) logs a sign-in failure that matches no pending login: nothing is
    /// written to the database, no event is emitted.
    #[allow(clippy::too_many_arguments)]
    pub fn anonymous_failure(
        &self,
        metrics: &Metrics,
        now_ms: i64,
        tenant: &str,
        connection: &str,
        code: &str,
        cause: &str,
    ) {
        metrics
            .inc("fedgate_anonymous_failures_total", &[("tenant", tenant), ("connection", connection), ("code", code)]);
        self.note(now_ms, "sign_in", connection, code, cause);
    }
}

/// Traces of unvouched logins per client, instance and minute.
pub const TRACE_BUDGET_PER_MINUTE: u32 = 60;

/// Bounds the traces written for logins nobody has vouched for yet (refused at authorize, or
/// stopped on the email page): at most `per_minute` per key (the client) and instance. Past it,
/// nothing is written for that key until the next minute, so a flood of requests naming a known
/// client costs a bounded number of rows.
pub struct Budget {
    per_minute: u32,
    used: Mutex<HashMap<String, (i64, u32)>>,
}

impl Budget {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, used: Mutex::new(HashMap::new()) }
    }

    /// Whether one more trace for `key` fits in this minute (and counts it).
    pub fn take(&self, now_ms: i64, key: &str) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.len() >= MAX_ENTRIES && !used.contains_key(key) {
            used.retain(|_, (m, _)| *m == minute);
            if used.len() >= MAX_ENTRIES {
                return false;
            }
        }
        let e = used.entry(key.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= self.per_minute {
            return false;
        }
        e.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_budget_refills_each_minute() {
        let b = Budget::new(2);
        assert!(b.take(0, "c"));
        assert!(b.take(1_000, "c"));
        assert!(!b.take(2_000, "c"));
        assert!(b.take(2_000, "d"), "per key");
        assert!(b.take(60_000, "c"));
    }

    use super::*;
    #[test]
    fn one_line_per_interval_with_the_count_suppressed() {
        let l = FailureLog::new(60);
        assert_eq!(l.sample(0, "c1", "x"), Some(0));
        assert_eq!(l.sample(1_000, "c1", "x"), None);
        assert_eq!(l.sample(2_000, "c1", "x"), None);
        assert_eq!(l.sample(2_000, "c2", "x"), Some(0), "per scope");
        assert_eq!(l.sample(2_000, "c1", "y"), Some(0), "per code");
        assert_eq!(l.sample(60_000, "c1", "x"), Some(2));
        assert_eq!(l.sample(61_000, "c1", "x"), None);
    }
}
