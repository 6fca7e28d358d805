//! Provider metadata (discovery) and JWKS, cached in memory per connection and reopened when the
//! connection's `version` changes. The JWKS is refreshed on an unknown `kid`, at most once a
//! minute per connection; if it cannot be fetched, logins fail closed.
use super::jwk::IdpKey;
use super::OidcConfig;
use crate::net::upstream::{HttpError, UpstreamHttp};
use crate::upstream::UpstreamError;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySet, JsonWebKeySetUrl, ProviderMetadata, ResponseTypes,
    TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Discovery metadata beyond the core set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 9207: the IdP sends `iss` on authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    IdpKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How long discovery metadata is reused before it is fetched again.
pub const METADATA_TTL: i64 = 3600;
/// Minimum seconds between two JWKS refreshes of one connection.
pub const JWKS_REFRESH_INTERVAL: i64 = 60;

#[derive(Clone)]
struct Entry {
    version: i64,
    meta: Arc<Metadata>,
    fetched_at: i64,
    jwks_at: i64,
}

/// The per-process cache. Every instance keeps its own; nothing here needs sharing.
#[derive(Default)]
pub struct MetadataCache {
    inner: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetadataCache")
    }
}

fn unreachable(what: &str, e: HttpError) -> UpstreamError {
    match e {
        HttpError::Blocked(_) | HttpError::BadUrl(_) => UpstreamError::Misconfigured(format!("{what}: {e}")),
        other => UpstreamError::Unreachable(format!("{what}: {other}")),
    }
}

async fn get_json(http: &UpstreamHttp, url: &str, what: &str) -> Result<Vec<u8>, UpstreamError> {
    let req = openidconnect::http::Request::builder()
        .method("GET")
        .uri(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| UpstreamError::Misconfigured(format!("{what} URL {url}: {e}")))?;
    let resp = http.execute(req).await.map_err(|e| unreachable(what, e))?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Unreachable(format!("{what} at {url} answered HTTP {}", resp.status().as_u16())));
    }
    Ok(resp.into_body())
}

async fn fetch_jwks(http: &UpstreamHttp, url: &str) -> Result<JsonWebKeySet<IdpKey>, UpstreamError> {
    let body = get_json(http, url, "JWKS").await?;
    serde_json::from_slice(&body)
        .map_err(|e| UpstreamError::InvalidResponse(format!("the JWKS at {url} is not valid: {e}")))
}

fn bad(field: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Misconfigured(format!("{field}: {e}"))
}

/// Fetches (or builds from explicit endpoints) the metadata and its JWKS.
pub async fn load(http: &UpstreamHttp, cfg: &OidcConfig) -> Result<Metadata, UpstreamError> {
    let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| bad("issuer", e))?;
    let mut meta: Metadata = match (&cfg.authorization_endpoint, &cfg.token_endpoint, &cfg.jwks_uri) {
        (Some(a), Some(t), Some(j)) => Metadata::new(
            issuer,
            AuthUrl::new(a.clone()).map_err(|e| bad("authorization_endpoint", e))?,
            JsonWebKeySetUrl::new(j.clone()).map_err(|e| bad("jwks_uri", e))?,
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            vec![CoreSubjectIdentifierType::Public],
            Vec::new(),
            ExtraMetadata::default(),
        )
        .set_token_endpoint(Some(TokenUrl::new(t.clone()).map_err(|e| bad("token_endpoint", e))?)),
        _ => {
            let url = format!("{}/.well-known/openid-configuration", cfg.issuer.trim_end_matches('/'));
            let body = get_json(http, &url, "discovery").await?;
            let m: Metadata = serde_json::from_slice(&body).map_err(|e| {
                UpstreamError::InvalidResponse(format!("the discovery document at {url} is not valid: {e}"))
            })?;
            // Microsoft's multi-tenant endpoints publish a templated issuer (or, for `consumers`,
            // the personal-accounts directory's); everything else must
            // publish exactly the configured issuer.
            if !cfg.microsoft_multi_tenant() && m.issuer().as_str() != cfg.issuer {
                return Err(UpstreamError::Misconfigured(format!(
                    "the discovery document's issuer is {}, but the connection says {}",
                    m.issuer().as_str(),
                    cfg.issuer
                )));
            }
            let mut m = m;
            for (field, v) in
                [("authorization_endpoint", &cfg.authorization_endpoint), ("token_endpoint", &cfg.token_endpoint)]
            {
                if let Some(v) = v {
                    m = match field {
                        "authorization_endpoint" => {
                            m.set_authorization_endpoint(AuthUrl::new(v.clone()).map_err(|e| bad(field, e))?)
                        }
                        _ => m.set_token_endpoint(Some(TokenUrl::new(v.clone()).map_err(|e| bad(field, e))?)),
                    };
                }
            }
            if let Some(j) = &cfg.jwks_uri {
                m = m.set_jwks_uri(JsonWebKeySetUrl::new(j.clone()).map_err(|e| bad("jwks_uri", e))?);
            }
            m
        }
    };
    if let Some(u) = &cfg.userinfo_endpoint {
        meta = meta.set_userinfo_endpoint(Some(UserInfoUrl::new(u.clone()).map_err(|e| bad("userinfo_endpoint", e))?));
    }
    let jwks = fetch_jwks(http, meta.jwks_uri().as_str()).await?;
    Ok(meta.set_jwks(jwks))
}

impl MetadataCache {
    /// The connection's metadata, from the cache when fresh.
    pub async fn get(
        &self,
        http: &UpstreamHttp,
        conn_id: &str,
        version: i64,
        cfg: &OidcConfig,
        now: i64,
    ) -> Result<Arc<Metadata>, UpstreamError> {
        if let Some(e) = self.lookup(conn_id) {
            if e.version == version && now - e.fetched_at < METADATA_TTL {
                return Ok(e.meta);
            }
        }
        let meta = Arc::new(load(http, cfg).await?);
        let entry = Entry { version, meta: meta.clone(), fetched_at: now, jwks_at: now };
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).insert(conn_id.to_string(), entry);
        Ok(meta)
    }

    fn lookup(&self, conn_id: &str) -> Option<Entry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).get(conn_id).cloned()
    }

    /// Fetches the JWKS again after an unknown `kid`. `None` when a refresh happened less than
    /// [`JWKS_REFRESH_INTERVAL`] ago (rate limit).
    pub async fn refresh_jwks(
        &self,
        http: &UpstreamHttp,
        conn_id: &str,
        now: i64,
    ) -> Result<Option<Arc<Metadata>>, UpstreamError> {
        let Some(e) = self.lookup(conn_id) else {
            return Ok(None);
        };
        if now - e.jwks_at < JWKS_REFRESH_INTERVAL {
            return Ok(None);
        }
        let jwks = fetch_jwks(http, e.meta.jwks_uri().as_str()).await?;
        let meta = Arc::new((*e.meta).clone().set_jwks(jwks));
        let entry = Entry { version: e.version, meta: meta.clone(), fetched_at: e.fetched_at, jwks_at: now };
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).insert(conn_id.to_string(), entry);
        Ok(Some(meta))
    }
}
