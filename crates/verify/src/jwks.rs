//! The issuer's keys: discovery (or an explicit `jwks_uri`), a cache with a TTL from the
//! response's `Cache-Control` (bounded), and rotation: a token signed with a `kid` the cache does
//! not know triggers one refresh, at most once per refresh interval (a minute by default), so a
//! flood of tokens with made-up `kid`s cannot turn into a flood of requests to the issuer.
//! Concurrent misses wait for one fetch instead of each starting their own. While the issuer
//! cannot be reached, the keys already fetched keep verifying for up to a day past their lifetime.
use crate::clock::Clock;
use crate::error::VerifyError;
use crate::Alg;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One public key from the JWKS.
pub(crate) struct Key {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it says one (fedgate's always do).
    pub alg: Option<Alg>,
    /// The algorithms its `kty`/`crv` can verify.
    pub family: Family,
    pub key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    P256,
    Ed25519,
    Rsa,
}

impl Key {
    fn fits(&self, alg: Alg) -> bool {
        self.alg.is_none_or(|a| a == alg) && alg.family() == self.family
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `{issuer}/.well-known/openid-configuration`, whose `issuer` must equal the configured one.
    Discovery {
        url: String,
        issuer: String,
    },
    Jwks(String),
}

#[derive(Debug, Clone)]
pub(crate) struct CacheConfig {
    /// Least time between two fetches caused by unknown `kid`s.
    pub refresh_interval: i64,
    /// Least time between two attempts after a failed fetch.
    pub retry_interval: i64,
    pub default_ttl: i64,
    pub min_ttl: i64,
    pub max_ttl: i64,
    pub max_body: usize,
    /// How long past their lifetime the keys still verify while the issuer cannot be reached.
    pub max_stale: i64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            refresh_interval: 60,
            retry_interval: 5,
            default_ttl: 300,
            min_ttl: 30,
            max_ttl: 3600,
            max_body: 256 * 1024,
            max_stale: 86400,
        }
    }
}

#[derive(Default)]
struct State {
    keys: Vec<Arc<Key>>,
    loaded: bool,
    expires_at: i64,
    last_attempt: Option<i64>,
    last_error: Option<String>,
    /// Bumped by every fetch attempt: a task that waited for another's fetch does not fetch again.
    generation: u64,
    /// The `jwks_uri` discovery found (discovery is redone after a failed JWKS fetch).
    jwks_uri: Option<String>,
}

pub(crate) struct JwksCache {
    source: Source,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cfg: CacheConfig,
    state: RwLock<State>,
    fetch: tokio::sync::Mutex<()>,
}

enum Lookup {
    Done(Result<Vec<Arc<Key>>, VerifyError>),
    Fetch(u64),
}

impl JwksCache {
    pub fn new(source: Source, http: reqwest::Client, clock: Arc<dyn Clock>, cfg: CacheConfig) -> Self {
        Self { source, http, clock, cfg, state: RwLock::new(State::default()), fetch: tokio::sync::Mutex::new(()) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys that may have signed a token with this `kid` and `alg` (a token without `kid`:
    /// every key of the algorithm). Fetches when the cache is empty or stale, or once per refresh
    /// interval when the `kid` is unknown.
    pub async fn keys_for(&self, kid: Option<&str>, alg: Alg) -> Result<Vec<Arc<Key>>, VerifyError> {
        match self.lookup(kid, alg) {
            Lookup::Done(r) => r,
            Lookup::Fetch(generation) => {
                self.refresh(generation).await;
                self.settle(kid, alg)
            }
        }
    }

    fn lookup(&self, kid: Option<&str>, alg: Alg) -> Lookup {
        let s = self.read();
        let now = self.clock.now();
        let since_attempt = s.last_attempt.map(|t| now - t);
        let fresh = s.loaded && now < s.expires_at;
        let found = matching(&s.keys, kid, alg);
        if fresh {
            if !found.is_empty() {
                return Lookup::Done(Ok(found));
            }
            // An unknown kid (a rotation we have not seen yet): one refresh a minute at most.
            if since_attempt.is_some_and(|d| d < self.cfg.refresh_interval) {
                return Lookup::Done(Err(unknown(kid)));
            }
            return Lookup::Fetch(s.generation);
        }
        // Empty or expired: fetch, unless an attempt just failed (then keep using what we have).
        if since_attempt.is_some_and(|d| d < self.cfg.retry_interval) {
            drop(s);
            return Lookup::Done(self.settle(kid, alg));
        }
        Lookup::Fetch(s.generation)
    }

    /// The answer after a fetch (ours or a concurrent one): no further fetch.
    fn settle(&self, kid: Option<&str>, alg: Alg) -> Result<Vec<Arc<Key>>, VerifyError> {
        let s = self.read();
        // Keys past their lifetime (the issuer unreachable) keep verifying for a while, not forever.
        let usable = s.loaded && self.clock.now() < s.expires_at.saturating_add(self.cfg.max_stale);
        let found = if usable { matching(&s.keys, kid, alg) } else { Vec::new() };
        if !found.is_empty() {
            return Ok(found);
        }
        match &s.last_error {
            Some(e) => Err(VerifyError::JwksFetch(e.clone())),
            None => Err(unknown(kid)),
        }
    }

    async fn refresh(&self, seen_generation: u64) {
        let _one_at_a_time = self.fetch.lock().await;
        if self.read().generation != seen_generation {
            return; // another task fetched while we waited
        }
        let started = self.clock.now();
        let result = self.fetch_keys().await;
        let mut s = self.write();
        s.generation += 1;
        s.last_attempt = Some(started);
        match result {
            Ok((keys, ttl)) => {
                s.keys = keys;
                s.loaded = true;
                s.expires_at = started + ttl;
                s.last_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "fedgate-verify: fetching the issuer's keys failed");
                s.jwks_uri = None;
                s.last_error = Some(e);
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(Vec<Arc<Key>>, i64), String> {
        let uri = match &self.source {
            Source::Jwks(u) => u.clone(),
            Source::Discovery { url, issuer } => match self.discovered() {
                Some(u) => u,
                None => {
                    let u = self.discover(url, issuer).await?;
                    self.write().jwks_uri = Some(u.clone());
                    u
                }
            },
        };
        let (body, cache_control) = self.get(&uri).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("{uri}: not JSON: {e}"))?;
        let keys = parse_jwks(&doc).ok_or_else(|| format!("{uri}: not a JWK set"))?;
        Ok((keys, self.ttl(cache_control.as_deref())))
    }

    fn discovered(&self) -> Option<String> {
        self.read().jwks_uri.clone()
    }

    async fn discover(&self, url: &str, issuer: &str) -> Result<String, String> {
        let (body, _) = self.get(url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        // OpenID Connect Discovery §4.3: the document's issuer must be the one we asked.
        let found = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
        if found != issuer {
            return Err(format!("{url}: the document's issuer is `{found}`, expected `{issuer}`"));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(|v| v.as_str()).ok_or_else(|| format!("{url}: no jwks_uri"))?;
        let parsed = url::Url::parse(jwks_uri).map_err(|e| format!("{url}: jwks_uri: {e}"))?;
        let discovery_over_https = url.starts_with("https://");
        if discovery_over_https && parsed.scheme() != "https" {
            return Err(format!("{url}: jwks_uri `{jwks_uri}` is not https"));
        }
        Ok(jwks_uri.to_string())
    }

    /// GET with the body bounded (`max_body`); returns the body and `Cache-Control`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > self.cfg.max_body as u64) {
            return Err(format!("{url}: response larger than {} bytes", self.cfg.max_body));
        }
        let cache_control =
            resp.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > self.cfg.max_body {
                return Err(format!("{url}: response larger than {} bytes", self.cfg.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, cache_control))
    }

    /// The cache lifetime: `max-age` (0 for `no-store`/`no-cache`), else the default, within
    /// the bounds.
    fn ttl(&self, cache_control: Option<&str>) -> i64 {
        let mut ttl = self.cfg.default_ttl;
        for directive in cache_control.unwrap_or("").split(',').map(str::trim) {
            let d = directive.to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                ttl = 0;
                break;
            }
            if let Some(v) = d.strip_prefix("max-age=") {
                if let Ok(n) = v.trim_matches('"').parse::<i64>() {
                    ttl = n;
                }
            }
        }
        ttl.clamp(self.cfg.min_ttl, self.cfg.max_ttl)
    }
}

/// At most this many keys are tried for a token without `kid`.
const MAX_CANDIDATES: usize = 8;

fn matching(keys: &[Arc<Key>], kid: Option<&str>, alg: Alg) -> Vec<Arc<Key>> {
    keys.iter()
        .filter(|k| k.fits(alg) && (kid.is_none() || k.kid.as_deref() == kid))
        .take(MAX_CANDIDATES)
        .cloned()
        .collect()
}

fn unknown(kid: Option<&str>) -> VerifyError {
    VerifyError::UnknownKey { kid: kid.map(str::to_string) }
}

/// The signing keys of a JWK set we can use: `use` absent or `sig`; EC P-256, OKP Ed25519 or RSA;
/// an `alg`, when present, that we know. Others (encryption keys, symmetric keys, future
/// algorithms) are skipped, not errors.
fn parse_jwks(doc: &serde_json::Value) -> Option<Vec<Arc<Key>>> {
    let list = doc.get("keys")?.as_array()?;
    let mut keys = Vec::new();
    for k in list {
        let s = |name: &str| k.get(name).and_then(|v| v.as_str());
        if s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let family = match (s("kty"), s("crv")) {
            (Some("EC"), Some("P-256")) => Family::P256,
            (Some("OKP"), Some("Ed25519")) => Family::Ed25519,
            (Some("RSA"), _) => Family::Rsa,
            _ => continue,
        };
        let alg = match s("alg") {
            None => None,
            Some(a) => match Alg::parse(a) {
                Some(a) if a.family() == family => Some(a),
                _ => continue,
            },
        };
        // jsonwebtoken's Jwk type knows fewer `alg` values than a JWKS may carry: parse the
        // key material without it.
        let mut material = k.clone();
        if let Some(o) = material.as_object_mut() {
            o.remove("alg");
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(material) else { continue };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        keys.push(Arc::new(Key { kid: s("kid").map(str::to_string), alg, family, key }));
    }
    Some(keys)
}

/// The HTTP client used when none is given: rustls, timeouts, no redirects.
pub(crate) fn default_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fedgate-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_parsing_skips_what_it_cannot_use() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "ps", "alg": "PS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed", "alg": "EdDSA", "use": "sig"},
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "es", "alg": "RS256"},
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "es2"}
        ]});
        let keys = parse_jwks(&doc).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["ed", "es2"]);
        assert!(keys[1].fits(Alg::ES256) && !keys[1].fits(Alg::RS256) && !keys[0].fits(Alg::ES256));
        assert!(parse_jwks(&serde_json::json!({"nokeys": []})).is_none());
    }

    #[test]
    fn ttl_follows_cache_control_within_bounds() {
        let c = JwksCache::new(
            Source::Jwks("http://127.0.0.1:9/jwks".into()),
            reqwest::Client::new(),
            Arc::new(crate::ManualClock::new(0)),
            CacheConfig::default(),
        );
        assert_eq!(c.ttl(Some("public, max-age=300")), 300);
        assert_eq!(c.ttl(Some("max-age=5")), 30);
        assert_eq!(c.ttl(Some("max-age=999999")), 3600);
        assert_eq!(c.ttl(Some("no-store")), 30);
        assert_eq!(c.ttl(Some("garbage")), 300);
        assert_eq!(c.ttl(None), 300);
    }
}
