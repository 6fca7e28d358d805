//! Rate limits (GCRA, the `governor` crate), kept in memory per instance.
//!
//! - per client IP: `/oauth2/authorize`, the `/login/...` and `/sso/...` pages (ACS and OIDC
//!   callback included), `/oauth2/token`;
//! - per client: `/oauth2/token` by `client_id` (HTTP Basic or form body);
//! - per tenant: the SAML ACS (checked by the ACS once the connection is known);
//! - per bearer token: SCIM (tokens belong to one tenant) and the admin API (per key).
//!
//! The client IP is the peer address, unless the peer is a trusted proxy
//! (`rate_limits.trusted_proxies`): then it is the right-most `X-Forwarded-For` address that is
//! not itself a trusted proxy. Keys are keyed 64-bit hashes (no address or token is kept), each
//! table is trimmed of idle keys every minute and restarts empty past `max_keys`.
//!
//! Over a limit the answer is 429 with `Retry-After` (seconds), in the surface's error shape.
use crate::config::RateLimitConfig;
use crate::error_code::ErrorCode;
use crate::http::current_request_id;
use crate::http::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::StreamExt;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// governor's time source: the application clock (so tests can move it).
#[derive(Clone)]
pub struct LimiterClock(Arc<dyn crate::clock::Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::new(u64::try_from(self.0.now_ms()).unwrap_or(0).saturating_mul(1_000_000))
    }
}

type Keyed = RateLimiter<u64, DashMapStateStore<u64>, LimiterClock, NoOpMiddleware<Nanos>>;

/// What was limited, and the shape of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// HTML page for people.
    Page,
    /// OAuth JSON (`/oauth2/token`).
    OAuth,
    /// SCIM error schema.
    Scim,
    /// Admin JSON.
    Admin,
}

/// A request over a limit.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub surface: Surface,
    pub limit: &'static str,
    pub retry_after: u64,
}

impl Limited {
    /// The 429 answer in the surface's error shape.
    pub fn response(&self) -> HttpResponse {
        let secs = self.retry_after;
        let mut r = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
        r.insert_header((header::RETRY_AFTER, secs.to_string()));
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        let message = format!("too many requests; try again in {secs} seconds");
        match self.surface {
            Surface::Page => crate::templates::ErrorPage {
                title: "Too many requests",
                message: &format!(
                    "This sign-in service is receiving too many requests from your network. Wait {secs} seconds and try again."
                ),
                code: ErrorCode::RateLimited,
                request_id: &current_request_id(),
                back: None,
                trace: None,
            }
            .respond(r),
            // RFC 6749 registers `temporarily_unavailable` for overload (§4.1.2.1); with 429 and
            // Retry-After (RFC 6585) clients that know neither still back off on the status.
            Surface::OAuth => r.insert_header((header::PRAGMA, "no-cache")).json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": message,
            })),
            Surface::Scim => r.content_type(crate::scim::error::SCIM_JSON).body(
                serde_json::json!({
                    "schemas": [crate::scim::error::ERROR_SCHEMA],
                    "status": "429",
                    "detail": message,
                })
                .to_string(),
            ),
            Surface::Admin => r.json(serde_json::json!({
                "error": "rate_limited",
                "message": message,
                "request_id": current_request_id(),
            })),
        }
    }
}

/// One keyed limit.
struct Limit {
    name: &'static str,
    surface: Surface,
    quota: Option<Quota>,
    table: RwLock<Arc<Keyed>>,
    clock: LimiterClock,
    max_keys: usize,
    checks: AtomicU64,
}

impl Limit {
    fn new(
        name: &'static str,
        surface: Surface,
        per_minute: u32,
        burst: u32,
        cfg: &RateLimitConfig,
        clock: &LimiterClock,
    ) -> Self {
        let quota = match (cfg.enabled, NonZeroU32::new(per_minute), NonZeroU32::new(burst)) {
            (true, Some(p), Some(b)) => Some(Quota::per_minute(p).allow_burst(b)),
            _ => None,
        };
        let table = quota.unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN));
        Self {
            name,
            surface,
            quota,
            table: RwLock::new(Arc::new(RateLimiter::dashmap_with_clock(table, clock.clone()))),
            clock: clock.clone(),
            max_keys: cfg.max_keys,
            checks: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Arc<Keyed> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn check(&self, key: u64) -> Result<(), Limited> {
        if self.quota.is_none() {
            return Ok(());
        }
        let table = self.current();
        let verdict = table.check_key(&key);
        // The size is looked at now and then (it walks every shard).
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 && table.len() > self.max_keys {
            self.trim();
        }
        verdict.map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Limited { surface: self.surface, limit: self.name, retry_after: retry_after.max(1) }
        })
    }

    /// Drops idle keys; restarts the table when it is still over `max_keys`.
    fn trim(&self) {
        let Some(quota) = self.quota else { return };
        let table = self.current();
        table.retain_recent();
        table.shrink_to_fit();
        if table.len() > self.max_keys {
            tracing::warn!(
                limit = self.name,
                keys = table.len(),
                max_keys = self.max_keys,
                "rate limit table over max_keys after dropping idle keys; starting it afresh"
            );
            *self.table.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(RateLimiter::dashmap_with_clock(quota, self.clock.clone()));
        }
    }

    fn len(&self) -> usize {
        self.current().len()
    }
}

pub use crate::net::Cidr;

/// One `X-Forwarded-For` entry as an address (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`).
fn forwarded_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(a, _)| a.parse().ok());
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// The client address: the peer, or (from a trusted proxy) the right-most untrusted
/// `X-Forwarded-For` entry. An unreadable entry stops the walk and is the client's "address"
/// (the proxy passed it on as such).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> String {
    let Some(peer) = peer.map(|p| p.to_canonical()) else { return "-".into() };
    if !trusted.iter().any(|c| c.contains(peer)) {
        return peer.to_string();
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let mut client = peer.to_string();
    for hop in hops.iter().rev() {
        match forwarded_addr(hop).map(|a| a.to_canonical()) {
            Some(a) if trusted.iter().any(|c| c.contains(a)) => client = a.to_string(),
            Some(a) => return a.to_string(),
            None => return (*hop).chars().take(64).collect(),
        }
    }
    client
}

/// Every limit of this instance.
pub struct Limits {
    trusted: Vec<Cidr>,
    hasher: std::collections::hash_map::RandomState,
    form_body: usize,
    authorize_ip: Limit,
    pages_ip: Limit,
    token_ip: Limit,
    token_client: Limit,
    acs_tenant: Limit,
    scim_token: Limit,
    admin_key: Limit,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Limits {
    pub fn new(
        cfg: &RateLimitConfig,
        form_body: usize,
        clock: Arc<dyn crate::clock::Clock>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let c = LimiterClock(clock);
        let l = |name, surface, per_minute, burst| Limit::new(name, surface, per_minute, burst, cfg, &c);
        Self {
            trusted: cfg.trusted_proxies.iter().filter_map(|p| Cidr::parse(p)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            form_body,
            authorize_ip: l(
                "authorize_per_ip",
                Surface::Page,
                cfg.authorize_per_ip_per_minute,
                cfg.authorize_per_ip_burst,
            ),
            pages_ip: l("pages_per_ip", Surface::Page, cfg.pages_per_ip_per_minute, cfg.pages_per_ip_burst),
            token_ip: l("token_per_ip", Surface::OAuth, cfg.token_per_ip_per_minute, cfg.token_per_ip_burst),
            token_client: l(
                "token_per_client",
                Surface::OAuth,
                cfg.token_per_client_per_minute,
                cfg.token_per_client_burst,
            ),
            acs_tenant: l("acs_per_tenant", Surface::Page, cfg.acs_per_tenant_per_minute, cfg.acs_per_tenant_burst),
            scim_token: l("scim_per_token", Surface::Scim, cfg.scim_per_token_per_minute, cfg.scim_per_token_burst),
            admin_key: l("admin_per_key", Surface::Admin, cfg.admin_per_key_per_minute, cfg.admin_per_key_burst),
            metrics,
        }
    }

    fn all(&self) -> [&Limit; 7] {
        [
            &self.authorize_ip,
            &self.pages_ip,
            &self.token_ip,
            &self.token_client,
            &self.acs_tenant,
            &self.scim_token,
            &self.admin_key,
        ]
    }

    fn check(&self, limit: &Limit, key: &str) -> Result<(), Limited> {
        limit.check(self.hasher.hash_one(key)).inspect_err(|l| {
            self.metrics.inc("fedgate_rate_limited_total", &[("limit", l.limit)]);
        })
    }

    /// The client address of a request (see [`client_ip`]).
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> String {
        client_ip(req.peer_addr().map(|a| a.ip()), req.headers(), &self.trusted)
    }

    /// The ACS's per-tenant limit.
    pub fn acs_tenant(&self, tenant_id: &str) -> Result<(), Limited> {
        self.check(&self.acs_tenant, tenant_id)
    }

    /// Drops idle keys of every limit (called every minute).
    pub fn housekeeping(&self) {
        for l in self.all() {
            l.trim();
        }
    }

    /// Keys held per limit (for tests and diagnostics).
    pub fn sizes(&self) -> Vec<(&'static str, usize)> {
        self.all().iter().map(|l| (l.name, l.len())).collect()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| v[7..].trim())
}

/// The client_id of HTTP Basic client authentication (RFC 6749 §2.3.1: form-encoded).
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.get(..6).filter(|p| p.eq_ignore_ascii_case("basic ")).map(|_| v[6..].trim())?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, _) = text.split_once(':')?;
    url::form_urlencoded::parse(format!("x={id}").as_bytes()).next().map(|(_, v)| v.into_owned())
}

/// Reads the (small) form body of a token request to find `client_id`, and puts it back for the
/// handler. Bodies over the form limit are left to the handler (which refuses them).
async fn form_client_id(req: &mut ServiceRequest, limit: usize) -> Result<Option<String>, actix_web::Error> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut payload = req.take_payload();
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() > limit {
            break;
        }
    }
    let body: Bytes = buf.freeze();
    let id = url::form_urlencoded::parse(&body).find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned());
    req.set_payload(Payload::from(body));
    Ok(id)
}

/// Applies the per-IP, per-client and per-token limits before any handler runs (the per-tenant
/// ACS limit is applied by the ACS).
async fn admit(st: &AppState, req: &mut ServiceRequest) -> Result<Result<(), Limited>, actix_web::Error> {
    let l = &st.limits;
    let path = req.path();
    let ip = || client_ip(req.peer_addr().map(|a| a.ip()), req.headers(), &l.trusted);
    if path == "/oauth2/authorize" {
        return Ok(l.check(&l.authorize_ip, &ip()));
    }
    if path.starts_with("/login/") || path.starts_with("/sso/") {
        return Ok(l.check(&l.pages_ip, &ip()));
    }
    if path == "/oauth2/token" {
        if let Err(e) = l.check(&l.token_ip, &ip()) {
            return Ok(Err(e));
        }
        if l.token_client.quota.is_none() {
            return Ok(Ok(()));
        }
        let client = match basic_client_id(req.headers()) {
            Some(c) => Some(c),
            None => form_client_id(req, l.form_body).await?,
        };
        return Ok(match client {
            Some(c) => l.check(&l.token_client, &format!("client:{c}")),
            None => Ok(()),
        });
    }
    let token_key = |req: &ServiceRequest| match bearer(req.headers()) {
        Some(t) => format!("token:{t}"),
        None => format!("ip:{}", client_ip(req.peer_addr().map(|a| a.ip()), req.headers(), &l.trusted)),
    };
    if path.starts_with("/scim/") {
        return Ok(l.check(&l.scim_token, &token_key(req)));
    }
    if path.starts_with("/admin/") {
        return Ok(l.check(&l.admin_key, &token_key(req)));
    }
    Ok(Ok(()))
}

/// Logs (sampled) and answers a request over a limit.
pub fn refuse(st: &AppState, limited: &Limited) -> HttpResponse {
    st.failure_log.note(st.clock.now_ms(), "rate_limit", limited.limit, "rate_limited", "a rate limit was reached");
    limited.response()
}

/// The middleware: 429 in the surface's shape, or on to the handler.
pub async fn rate_limit(
    mut req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(st) = req.app_data::<actix_web::web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    match admit(&st, &mut req).await? {
        Ok(()) => next.call(req).await.map(ServiceResponse::map_into_left_body),
        Err(limited) => Ok(req.into_response(refuse(&st, &limited)).map_into_right_body()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn xff(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for x in v {
            h.append(header::HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(x).unwrap());
        }
        h
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // An untrusted peer's header is ignored.
        assert_eq!(client_ip(peer("203.0.113.9"), &xff(&["198.51.100.1"]), &trusted), "203.0.113.9");
        // From a trusted proxy: the right-most untrusted entry; spoofed entries to its left lose.
        assert_eq!(client_ip(peer("10.0.0.2"), &xff(&["1.1.1.1, 198.51.100.7", "10.0.0.3"]), &trusted), "198.51.100.7");
        // Every hop trusted: the left-most.
        assert_eq!(client_ip(peer("10.0.0.2"), &xff(&["10.9.9.9"]), &trusted), "10.9.9.9");
        // No header: the proxy itself.
        assert_eq!(client_ip(peer("10.0.0.2"), &xff(&[]), &trusted), "10.0.0.2");
        assert_eq!(client_ip(peer("10.0.0.2"), &xff(&["[2001:db8::5]:443"]), &trusted), "2001:db8::5");
        assert_eq!(client_ip(peer("10.0.0.2"), &xff(&["198.51.100.7:1234"]), &trusted), "198.51.100.7");
        assert_eq!(client_ip(None, &xff(&[]), &trusted), "-");
    }

    #[test]
    fn basic_client_ids_are_form_decoded() {
        use base64::Engine;
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("my%20app:secret");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {v}")).unwrap());
        assert_eq!(basic_client_id(&h).as_deref(), Some("my app"));
    }

    #[test]
    fn limits_use_the_injected_clock() {
        let clock = crate::clock::ManualClock::new(1_000_000);
        let cfg = RateLimitConfig { admin_per_key_per_minute: 60, admin_per_key_burst: 2, ..Default::default() };
        let l = Limits::new(&cfg, 1024, Arc::new(clock.clone()), Arc::new(crate::metrics::Metrics::new()));
        assert!(l.check(&l.admin_key, "a").is_ok());
        assert!(l.check(&l.admin_key, "a").is_ok());
        let e = l.check(&l.admin_key, "a").unwrap_err();
        assert_eq!((e.limit, e.retry_after), ("admin_per_key", 1));
        assert!(l.check(&l.admin_key, "b").is_ok(), "keys are separate");
        clock.advance_secs(1);
        assert!(l.check(&l.admin_key, "a").is_ok());
        // Idle keys go; a table past max_keys restarts.
        clock.advance_secs(60);
        l.housekeeping();
        assert_eq!(l.admin_key.len(), 0);
        let small = RateLimitConfig { max_keys: 10, ..Default::default() };
        let l = Limits::new(&small, 1024, Arc::new(clock.clone()), Arc::new(crate::metrics::Metrics::new()));
        for i in 0..50 {
            assert!(l.check(&l.pages_ip, &i.to_string()).is_ok());
        }
        l.housekeeping();
        assert_eq!(l.pages_ip.len(), 0);
    }
}
