//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the
//! client's public keys (inline JWKS, validated when saved, or a `jwks_uri` fetched through the
//! outbound guard and cached), and the checks on a client assertion.
use crate::http::error::OAuthError;
use crate::http::AppState;
use crate::keys::{PublicKey, UnverifiedJws};
use crate::store::entities::client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signature algorithms a client assertion may use. Never `none`, never HS* (a shared secret
/// would be the public key). `Ed25519` is EdDSA with Ed25519 by its fully-specified name
/// (RFC 9864), which current JOSE libraries (oauth4webapi, openid-client) put in the header.
pub const ALLOWED_ALGS: [&str; 5] = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];
/// Largest JWKS accepted, inline or fetched.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Most keys in a client's JWKS.
pub const MAX_KEYS: usize = 10;
/// A fetched `jwks_uri` is used this long before it is fetched again.
pub const CACHE_SECS: i64 = 300;
/// An unknown `kid` refetches the `jwks_uri`, at most once per this many seconds per client.
pub const REFETCH_SECS: i64 = 60;
/// Longest lifetime of an assertion: `exp` at most this far in the future.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Clock skew tolerated on `nbf` / `iat`.
const SKEW: i64 = 60;

/// One public key of a client, in the members that matter (no private parts, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientKey {
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn b64_len(v: &Option<String>) -> Option<usize> {
    v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok()).map(|b| b.len())
}

impl ClientKey {
    /// Whether this key can verify a signature made with `alg`.
    pub fn fits(&self, alg: &str) -> bool {
        let eddsa = |a: &str| matches!(a, "EdDSA" | "Ed25519");
        if self.alg.as_deref().is_some_and(|a| a != alg && !(eddsa(a) && eddsa(alg))) {
            return false;
        }
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => matches!(alg, "RS256" | "PS256"),
            ("EC", Some("P-256")) => alg == "ES256",
            ("OKP", Some("Ed25519")) => eddsa(alg),
            _ => false,
        }
    }

    fn verifier(&self, alg: &str) -> PublicKey {
        PublicKey {
            kty: self.kty.clone(),
            crv: self.crv.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            kid: self.kid.clone().unwrap_or_default(),
            alg: alg.to_string(),
            use_: "sig".into(),
        }
    }
}

/// Validates a JWKS (`{"keys": [...]}`): 1 to [`MAX_KEYS`] public signing keys (RSA of at least
/// 2048 bits, EC P-256, Ed25519), no private members, `alg` (when given) in [`ALLOWED_ALGS`],
/// `use` (when given) `sig`, unique `kid`s. Returns the keys in their public form.
pub fn parse_jwks(v: &serde_json::Value) -> Result<Vec<ClientKey>, String> {
    if v.to_string().len() > MAX_JWKS_BYTES {
        return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let keys = v.get("keys").and_then(|k| k.as_array()).ok_or("a JWKS is an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("a JWKS holds 1 to {MAX_KEYS} keys"));
    }
    let mut out: Vec<ClientKey> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let obj = k.as_object().ok_or_else(|| format!("key {i} is not an object"))?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!("key {i} has the private member \"{m}\": register public keys only"));
        }
        if let Some(u) = obj.get("use") {
            if u != "sig" {
                return Err(format!("key {i}: \"use\" must be \"sig\""));
            }
        }
        let key: ClientKey = serde_json::from_value(k.clone()).map_err(|_| format!("key {i} is not a JWK"))?;
        if let Some(a) = &key.alg {
            if !ALLOWED_ALGS.contains(&a.as_str()) {
                return Err(format!("key {i}: alg {a:?} is not allowed (RS256, PS256, ES256, EdDSA, Ed25519)"));
            }
        }
        let ok = match (key.kty.as_str(), key.crv.as_deref()) {
            ("RSA", _) => {
                b64_len(&key.n).is_some_and(|n| n >= 256) && b64_len(&key.e).is_some_and(|e| (1..=8).contains(&e))
            }
            ("EC", Some("P-256")) => b64_len(&key.x) == Some(32) && b64_len(&key.y) == Some(32),
            ("OKP", Some("Ed25519")) => b64_len(&key.x) == Some(32),
            _ => return Err(format!("key {i}: use an RSA (2048 bits or more), EC P-256 or Ed25519 key")),
        };
        if !ok {
            return Err(format!("key {i}: malformed or too short public key"));
        }
        if !ALLOWED_ALGS.iter().any(|a| key.fits(a)) {
            return Err(format!("key {i}: its alg does not match its key type"));
        }
        if key.kid.is_some() && out.iter().any(|o| o.kid == key.kid) {
            return Err(format!("key {i}: duplicate kid"));
        }
        out.push(key);
    }
    Ok(out)
}

/// The keys as a JWKS document.
pub fn jwks_value(keys: &[ClientKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys })
}

struct Fetched {
    uri: String,
    keys: Vec<ClientKey>,
    fetched_at: i64,
}

/// Keys fetched from clients' `jwks_uri`, per client (in memory, per instance).
#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<HashMap<String, Fetched>>,
}

impl KeyCache {
    fn lookup(&self, client_id: &str, uri: &str) -> Option<(Vec<ClientKey>, i64)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.get(client_id).filter(|f| f.uri == uri).map(|f| (f.keys.clone(), f.fetched_at))
    }

    fn store(&self, client_id: &str, uri: &str, keys: Vec<ClientKey>, now: i64) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(client_id.to_string(), Fetched { uri: uri.to_string(), keys, fetched_at: now });
    }

    /// Forgets a client's fetched keys (the client was updated or deleted).
    pub fn forget(&self, client_id: &str) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).remove(client_id);
    }
}

async fn fetch(st: &AppState, uri: &str) -> Result<Vec<ClientKey>, String> {
    let (status, body) = st
        .outbound
        .get(uri, "application/jwk-set+json, application/json", MAX_JWKS_BYTES)
        .await
        .map_err(|e| format!("the client's jwks_uri could not be fetched: {e}"))?;
    if status != 200 {
        return Err(format!("the client's jwks_uri answered HTTP {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| "the client's jwks_uri did not return JSON".to_string())?;
    parse_jwks(&v).map_err(|e| format!("the client's jwks_uri returned an invalid JWKS: {e}"))
}

/// The client's keys: inline, or from its `jwks_uri` (cached [`CACHE_SECS`]; fetched again
/// for an unknown `kid`, at most once per [`REFETCH_SECS`]).
async fn keys_of(st: &AppState, c: &client::Model, kid: Option<&str>) -> Result<Vec<ClientKey>, String> {
    if let Some(j) = &c.jwks {
        let v: serde_json::Value = serde_json::from_str(j).map_err(|_| "the client's stored JWKS is unreadable")?;
        return parse_jwks(&v);
    }
    let Some(uri) = &c.jwks_uri else { return Err("the client has no keys registered".into()) };
    let now = st.clock.now();
    let cached = st.client_keys.lookup(&c.id, uri);
    if let Some((keys, at)) = &cached {
        let known = kid.is_none_or(|k| keys.iter().any(|x| x.kid.as_deref() == Some(k)));
        let fresh = now - at < CACHE_SECS;
        if (fresh && known) || now - at < REFETCH_SECS {
            return Ok(keys.clone());
        }
    }
    match fetch(st, uri).await {
        Ok(keys) => {
            st.client_keys.store(&c.id, uri, keys.clone(), now);
            Ok(keys)
        }
        Err(e) => {
            tracing::warn!(client = %c.id, error = %e, "client jwks_uri fetch failed");
            match cached {
                // Keep using what we had (an outage of the client's key host is not a reason to
                // fail every login), but do not ask again for a minute.
                Some((keys, _)) => {
                    st.client_keys.store(&c.id, uri, keys.clone(), now);
                    Ok(keys)
                }
                None => Err(e),
            }
        }
    }
}

fn bad(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(d, false)
}

/// The client an assertion names (`sub`, which must equal `iss`), before any verification.
pub fn asserted_client(assertion: &str) -> Result<String, OAuthError> {
    let jws = UnverifiedJws::parse(assertion).ok_or_else(|| bad("client_assertion is not a compact JWS"))?;
    let claims = jws.unverified_claims().ok_or_else(|| bad("client_assertion has an unreadable payload"))?;
    let sub = claims.get("sub").and_then(|v| v.as_str()).ok_or_else(|| bad("client_assertion has no sub"))?;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(sub) {
        return Err(bad("client_assertion: iss and sub must both be the client_id"));
    }
    Ok(sub.to_string())
}

/// Verifies a client assertion for `c`: alg in [`ALLOWED_ALGS`], signature by one of the
/// client's keys, `iss` = `sub` = client_id, `aud` naming the issuer or the token endpoint (or
/// the endpoint called), `exp` present and at most [`MAX_ASSERTION_LIFETIME`] ahead, `nbf` and
/// `iat` not in the future, `jti` present and used once (the replay store, until `exp`).
pub async fn verify_assertion(
    st: &AppState,
    c: &client::Model,
    assertion: &str,
    endpoint: &str,
) -> Result<(), OAuthError> {
    let jws = UnverifiedJws::parse(assertion).ok_or_else(|| bad("client_assertion is not a compact JWS"))?;
    let alg = jws.header.alg.clone();
    if !ALLOWED_ALGS.contains(&alg.as_str()) {
        return Err(bad(format!("client_assertion alg {alg:?} is not allowed (RS256, PS256, ES256, EdDSA, Ed25519)")));
    }
    let kid = jws.header.kid.clone();
    let keys = keys_of(st, c, kid.as_deref()).await.map_err(bad)?;
    let candidates: Vec<&ClientKey> =
        keys.iter().filter(|k| k.fits(&alg)).filter(|k| kid.is_none() || k.kid.is_none() || k.kid == kid).collect();
    if candidates.is_empty() {
        return Err(bad(match &kid {
            Some(k) => format!("no registered key of the client has kid {k:?} and alg {alg}"),
            None => format!("no registered key of the client fits alg {alg}"),
        }));
    }
    let claims = candidates
        .iter()
        .find_map(|k| jws.verify(&k.verifier(&alg)))
        .ok_or_else(|| bad("client_assertion signature is invalid"))?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if s("iss") != Some(c.id.as_str()) || s("sub") != Some(c.id.as_str()) {
        return Err(bad("client_assertion: iss and sub must both be the client_id"));
    }
    let issuer = st.config.issuer.trim_end_matches('/');
    let token_endpoint = format!("{issuer}/oauth2/token");
    let ok_aud = |a: &str| {
        let a = a.trim_end_matches('/');
        a == issuer || a == token_endpoint || a == endpoint
    };
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => ok_aud(a),
        Some(serde_json::Value::Array(v)) => v.iter().filter_map(|a| a.as_str()).any(ok_aud),
        _ => false,
    };
    if !aud_ok {
        return Err(bad(format!("client_assertion aud must contain the issuer ({issuer}) or the token endpoint")));
    }
    let now = st.clock.now();
    let exp = claims.get("exp").and_then(|v| v.as_i64()).ok_or_else(|| bad("client_assertion has no exp"))?;
    if exp <= now {
        return Err(bad("client_assertion has expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME {
        return Err(bad(format!("client_assertion exp is more than {MAX_ASSERTION_LIFETIME} seconds ahead")));
    }
    for k in ["nbf", "iat"] {
        if claims.get(k).and_then(|v| v.as_i64()).is_some_and(|t| t > now + SKEW) {
            return Err(bad(format!("client_assertion {k} is in the future")));
        }
    }
    let jti = s("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(|| bad("client_assertion has no jti"))?;
    let fresh = crate::store::replay::consume(&st.db, &replay_key(&c.id), jti, exp, now).await?;
    if !fresh {
        return Err(bad("client_assertion was already used (jti replay)"));
    }
    Ok(())
}

/// The replay store's namespace for a client's assertions.
fn replay_key(client_id: &str) -> String {
    format!("client_assertion:{client_id}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jwks_rules() {
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "a",
            "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])});
        assert_eq!(parse_jwks(&json!({"keys": [ec.clone()]})).unwrap().len(), 1);
        let mut private = ec.clone();
        private["d"] = json!("AAAA");
        assert!(parse_jwks(&json!({"keys": [private]})).unwrap_err().contains("private"));
        let mut hs = ec.clone();
        hs["alg"] = json!("HS256");
        assert!(parse_jwks(&json!({"keys": [hs]})).is_err());
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(parse_jwks(&json!({"keys": [oct]})).is_err());
        let short_rsa = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([7u8; 128]), "e": "AQAB"});
        assert!(parse_jwks(&json!({"keys": [short_rsa]})).is_err());
        let mut mismatch = ec.clone();
        mismatch["alg"] = json!("RS256");
        assert!(parse_jwks(&json!({"keys": [mismatch]})).is_err());
        assert!(parse_jwks(&json!({"keys": [ec.clone(), ec.clone()]})).unwrap_err().contains("duplicate"));
        assert!(parse_jwks(&json!({"keys": []})).is_err());
        assert!(parse_jwks(&json!([ec])).is_err());
    }
}
