//! Domain ownership proven by a DNS TXT record: the record's name and value, the lookup (through
//! the configured resolver, `[dns] resolver`, else the system's), and what a lookup means — a
//! pure function so that "2 TXT records found, none match" is decided and tested in one place.
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The label under the domain where the TXT record goes.
pub const CHALLENGE_LABEL: &str = "_fedgate-challenge";
/// The prefix of the record's value.
pub const VALUE_PREFIX: &str = "fedgate-verification=";
/// TXT values kept in a check's result (the rest are counted).
const KEEP_FOUND: usize = 5;

/// The TXT record's name for `domain`.
pub fn record_name(domain: &str) -> String {
    format!("{CHALLENGE_LABEL}.{domain}")
}

/// The TXT record's value for a claim's random challenge.
pub fn record_value(challenge: &str) -> String {
    format!("{VALUE_PREFIX}{challenge}")
}

/// What one DNS check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckResult {
    /// A TXT record has the expected value.
    Verified,
    /// The name exists with no TXT record, or does not exist.
    NoRecord,
    /// TXT records exist, none with the expected value. `found`: some of them (at most 5, each
    /// cut to 200 characters); `count`: how many there were.
    Mismatch { count: usize, found: Vec<String> },
    /// The lookup itself failed (timeout, refused, server failure).
    LookupFailed { reason: String },
    /// The record matched, but the domain had become another tenant's meanwhile.
    Taken,
}

impl CheckResult {
    pub fn is_verified(&self) -> bool {
        matches!(self, CheckResult::Verified)
    }
}

/// Compares the TXT values found at the record's name with the expected one. Values are compared
/// exactly after trimming surrounding spaces and quotes (consoles sometimes keep the quotes).
pub fn evaluate(expected: &str, found: &[String]) -> CheckResult {
    if found.is_empty() {
        return CheckResult::NoRecord;
    }
    let clean = |v: &str| v.trim().trim_matches('"').trim().to_string();
    if found.iter().any(|v| clean(v) == expected) {
        return CheckResult::Verified;
    }
    CheckResult::Mismatch {
        count: found.len(),
        found: found.iter().take(KEEP_FOUND).map(|v| v.chars().take(200).collect()).collect(),
    }
}

/// Looks up TXT records (no cache: every check asks the server again, so a record just added is
/// seen at once).
#[derive(Debug, Clone)]
pub struct DnsChecker {
    /// The configured server; `None`: the system's resolvers.
    server: Option<SocketAddr>,
}

/// A `[dns] resolver` that is not `ip:port` (or `ip`, port 53).
#[derive(Debug, thiserror::Error)]
#[error("dns.resolver must be ip:port (e.g. 127.0.0.1:5353), got {0:?}")]
pub struct BadResolver(String);

impl DnsChecker {
    pub fn new(resolver: Option<&str>) -> Result<Self, BadResolver> {
        let server = match resolver.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| BadResolver(s.to_string()))?,
            ),
        };
        Ok(Self { server })
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.server {
            Some(addr) => TokioResolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    vec![],
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                TokioConnectionProvider::default(),
            ),
            None => {
                TokioResolver::builder_tokio().map_err(|e| format!("reading the system's DNS configuration: {e}"))?
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 1;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 1;
        opts.ndots = 0;
        Ok(builder.build())
    }

    /// The TXT values at `name` (each record's strings joined, as RFC 7208 does).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let resolver = self.resolver()?;
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match resolver.txt_lookup(fqdn).await {
            Ok(l) => Ok(l
                .iter()
                .map(|t| t.txt_data().iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<String>())
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(e.to_string().chars().take(300).collect()),
        }
    }

    /// Checks `domain`'s challenge record against `expected` (the full value).
    pub async fn check(&self, domain: &str, expected: &str) -> CheckResult {
        match self.txt(&record_name(domain)).await {
            Ok(found) => evaluate(expected, &found),
            Err(reason) => CheckResult::LookupFailed { reason },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(record_name("acme.com"), "_fedgate-challenge.acme.com");
        assert_eq!(record_value("abc"), "fedgate-verification=abc");
    }

    #[test]
    fn evaluate_explains_what_dns_returned() {
        let want = "fedgate-verification=abc";
        assert_eq!(evaluate(want, &[]), CheckResult::NoRecord);
        assert_eq!(evaluate(want, &["v=spf1 -all".into(), want.into()]), CheckResult::Verified);
        assert_eq!(evaluate(want, &[format!("\"{want}\" ")]), CheckResult::Verified, "quotes kept by a console");
        assert_eq!(
            evaluate(want, &["fedgate-verification=old".into(), "v=spf1 -all".into()]),
            CheckResult::Mismatch { count: 2, found: vec!["fedgate-verification=old".into(), "v=spf1 -all".into()] }
        );
        assert!(!evaluate(want, &["FEDGATE-VERIFICATION=ABC".into()]).is_verified(), "exact value");
        let many: Vec<String> = (0..9).map(|i| format!("r{i}")).collect();
        match evaluate(want, &many) {
            CheckResult::Mismatch { count, found } => assert_eq!((count, found.len()), (9, 5)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resolver_setting() {
        assert!(DnsChecker::new(None).unwrap().server.is_none());
        assert_eq!(DnsChecker::new(Some("127.0.0.1:5353")).unwrap().server.unwrap().port(), 5353);
        assert_eq!(DnsChecker::new(Some("10.0.0.2")).unwrap().server.unwrap().port(), 53);
        assert!(DnsChecker::new(Some("dns.example")).is_err());
    }

    #[test]
    fn results_round_trip_as_json() {
        let r = CheckResult::Mismatch { count: 2, found: vec!["a".into()] };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"outcome":"mismatch","count":2,"found":["a"]}"#);
        assert_eq!(serde_json::from_str::<CheckResult>(&j).unwrap(), r);
    }
}
