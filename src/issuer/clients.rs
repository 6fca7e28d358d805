//! OAuth clients (the SaaS apps): registration rules and client authentication.
use crate::error_code::ErrorCode;
use crate::http::error::{ApiError, OAuthError};
use crate::http::Params;
use crate::keys::{verify_hashed, Alg};
use crate::store::entities::client;
use crate::util::{from_json_list, rfc3339};
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Has a secret (a server-side app).
    Confidential,
    /// No secret (SPA, native app): PKCE S256 is mandatory.
    Public,
}

impl ClientType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    /// Machine-to-machine (RFC 6749 §4.4): confidential clients only.
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// The client secret, in HTTP Basic (the body form is accepted too).
    ClientSecretBasic,
    /// The client secret, in the body (HTTP Basic is accepted too).
    ClientSecretPost,
    /// A JWT signed with one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// Public clients.
    None,
}

impl TokenAuthMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The method a client is registered with (stored, or by type for clients registered before
/// the method was a setting).
pub fn auth_method_of(c: &client::Model) -> TokenAuthMethod {
    match c.auth_method.as_deref().and_then(TokenAuthMethod::parse) {
        Some(m) => m,
        None if c.client_type == "public" => TokenAuthMethod::None,
        None => TokenAuthMethod::ClientSecretBasic,
    }
}

/// The scopes `client_credentials` may request.
pub fn scopes_of(c: &client::Model) -> Vec<String> {
    c.scopes.as_deref().map(from_json_list).unwrap_or_default()
}

/// The browser origins allowed to call the token endpoint for this client (CORS).
pub fn web_origins_of(c: &client::Model) -> Vec<String> {
    c.web_origins.as_deref().map(from_json_list).unwrap_or_default()
}

/// The `aud` of the client's access tokens: its registered audience, or its client id.
pub fn audience_of(c: &client::Model) -> Vec<String> {
    match c.audience.as_deref().map(from_json_list) {
        Some(a) if !a.is_empty() => a,
        _ => vec![c.id.clone()],
    }
}

/// Lifetime of the client's access tokens.
pub fn access_token_ttl_of(c: &client::Model, cfg: &crate::config::Config) -> i64 {
    c.access_token_ttl.unwrap_or(cfg.tokens.access_token_ttl)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The OAuth `client_id`.
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub id_token_signed_response_alg: String,
    pub token_endpoint_auth_method: TokenAuthMethod,
    pub backchannel_logout_uri: Option<String>,
    /// Scopes the client may request with `client_credentials`.
    pub scopes: Vec<String>,
    /// The tenant the client's machine tokens speak for (their `org_id`).
    pub tenant_id: Option<String>,
    /// Access token lifetime in seconds (absent: `tokens.access_token_ttl`).
    pub access_token_ttl: Option<i64>,
    /// `aud` of the client's access tokens (absent: the client id).
    pub audience: Option<Vec<String>>,
    /// Inline public keys for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where the keys for `private_key_jwt` are fetched.
    pub jwks_uri: Option<String>,
    /// Browser origins allowed to call the token endpoint (CORS; public clients).
    pub web_origins: Vec<String>,
    /// False: the client gets no new tokens and its machine tokens stop validating.
    pub enabled: bool,
    /// The tenant (id) of self-serve sign-ups: logins with no enterprise tenant go to its social
    /// connections.
    pub default_tenant: Option<String>,
    /// Present only in the response that created the client or rotated its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn view(c: &client::Model, secret: Option<String>) -> ClientView {
    ClientView {
        id: c.id.clone(),
        name: c.name.clone(),
        client_type: c.client_type.clone(),
        redirect_uris: from_json_list(&c.redirect_uris),
        post_logout_redirect_uris: from_json_list(&c.post_logout_redirect_uris),
        grant_types: from_json_list(&c.grant_types),
        id_token_signed_response_alg: c.id_token_alg.clone(),
        token_endpoint_auth_method: auth_method_of(c),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        scopes: scopes_of(c),
        tenant_id: c.tenant_id.clone(),
        access_token_ttl: c.access_token_ttl,
        audience: c.audience.as_deref().map(from_json_list),
        jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
        jwks_uri: c.jwks_uri.clone(),
        web_origins: web_origins_of(c),
        enabled: c.disabled_at.is_none(),
        default_tenant: c.default_tenant_id.clone(),
        client_secret: secret,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

/// A redirect URI must be absolute, without fragment, and https — or http on a loopback host
/// (RFC 8252 §7.3), or a private-use scheme for native apps (RFC 8252 §7.1). With dev mode on,
/// plain http is accepted for any host.
pub fn validate_redirect_uri(field: &str, s: &str, dev_mode: bool) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::invalid(field, ErrorCode::InvalidRedirectUri, format!("{s:?}: {m}"));
    if s.len() > 2000 {
        return Err(bad("too long"));
    }
    let u = url::Url::parse(s).map_err(|_| bad("not an absolute URL"))?;
    if u.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    match u.scheme() {
        "https" => {}
        "http" => {
            let loopback = matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
            if !loopback && !dev_mode {
                return Err(bad("http is allowed only for loopback hosts; use https"));
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => return Err(bad("scheme not allowed")),
        scheme if scheme.contains('.') => {}
        _ => return Err(bad("use https, http on loopback, or a reverse-domain private-use scheme")),
    }
    // Store exactly what was registered: redirect_uri matching is exact string comparison.
    Ok(s.to_string())
}

pub fn validate_uris(field: &str, v: &[String], dev_mode: bool, min: usize) -> Result<Vec<String>, ApiError> {
    if v.len() < min || v.len() > 32 {
        return Err(ApiError::invalid(
            field,
            ErrorCode::InvalidRedirectUri,
            format!("{field} must list {min} to 32 URIs"),
        ));
    }
    let mut out = Vec::new();
    for s in v {
        let s = validate_redirect_uri(field, s, dev_mode)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn validate_alg(a: &str) -> Result<Alg, ApiError> {
    Alg::parse(a).ok_or_else(|| {
        ApiError::invalid("id_token_signed_response_alg", ErrorCode::InvalidAlg, "supported: ES256, EdDSA, RS256")
    })
}

/// The scopes a client may request with `client_credentials`: scope tokens (RFC 6749 §3.3),
/// at most 32 of at most 64 characters; `openid` and `offline_access` are about people and are
/// refused.
pub fn validate_scopes(v: &[String]) -> Result<Vec<String>, ApiError> {
    let bad = |m: String| ApiError::invalid("scopes", ErrorCode::InvalidScopes, m);
    if v.len() > 32 {
        return Err(bad("at most 32 scopes".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for s in v {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !ok {
            return Err(bad(format!("{s:?} is not a scope token")));
        }
        if matches!(s.as_str(), "openid" | "offline_access") {
            return Err(bad(format!("{s:?} is for sign-in, not for machine tokens")));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// Access token audiences: 1 to 8 identifiers (an absolute URI or a plain name) of at most 200
/// characters, no whitespace.
pub fn validate_audience(v: &[String]) -> Result<Vec<String>, ApiError> {
    let bad = |m: String| ApiError::invalid("audience", ErrorCode::InvalidAudience, m);
    if v.is_empty() || v.len() > 8 {
        return Err(bad("audience lists 1 to 8 values".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for a in v {
        if a.is_empty() || a.len() > 200 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!("{a:?} is not an audience identifier")));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// A web origin: `scheme://host[:port]` exactly (no path, query, fragment or credentials),
/// https, or http on localhost / a loopback address. Returned in its serialized form.
pub fn validate_web_origin(s: &str) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::invalid("web_origins", ErrorCode::InvalidWebOrigin, format!("{s:?}: {m}"));
    if s.len() > 300 {
        return Err(bad("too long"));
    }
    let u = url::Url::parse(s).map_err(|_| bad("not an origin (scheme://host[:port])"))?;
    let origin = u.origin().ascii_serialization();
    if origin == "null" || origin != s.trim_end_matches('/') || !u.username().is_empty() || u.password().is_some() {
        return Err(bad("an origin is scheme://host[:port] with nothing after it"));
    }
    match u.scheme() {
        "https" => {}
        "http" if matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => {}
        _ => return Err(bad("use https (http only for localhost)")),
    }
    Ok(origin)
}

pub fn validate_web_origins(v: &[String]) -> Result<Vec<String>, ApiError> {
    if v.len() > 16 {
        return Err(ApiError::invalid("web_origins", ErrorCode::InvalidWebOrigin, "at most 16 origins"));
    }
    let mut out: Vec<String> = Vec::new();
    for s in v {
        let o = validate_web_origin(s)?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// An inline JWKS for `private_key_jwt`, stored in its public form.
pub fn validate_jwks(v: &serde_json::Value) -> Result<String, ApiError> {
    let keys = super::client_keys::parse_jwks(v).map_err(|m| ApiError::invalid("jwks", ErrorCode::InvalidJwks, m))?;
    Ok(super::client_keys::jwks_value(&keys).to_string())
}

/// A `jwks_uri`: https (http only in dev mode), no credentials or fragment, and allowed by the
/// outbound guard (no private address unless `allow_private_network`).
pub fn validate_jwks_uri(s: &str, outbound: &crate::net::Outbound, dev_mode: bool) -> Result<String, ApiError> {
    let bad = |m: String| ApiError::invalid("jwks_uri", ErrorCode::InvalidJwks, format!("{s:?}: {m}"));
    if s.len() > 2000 {
        return Err(bad("too long".into()));
    }
    let u = url::Url::parse(s).map_err(|_| bad("not an absolute URL".into()))?;
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err(bad("no fragment or credentials".into()));
    }
    match u.scheme() {
        "https" => {}
        "http" if dev_mode => {}
        _ => return Err(bad("use https".into())),
    }
    outbound.check_url(s).map_err(|e| bad(e.to_string()))?;
    Ok(s.to_string())
}

/// How the client authenticated at the token, revocation or introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    PrivateKeyJwt,
    None,
}

/// Authenticates the client of a back-channel request (RFC 6749 §2.3.1): HTTP Basic with
/// form-urlencoded id and secret, or `client_id`/`client_secret` in the body, never both;
/// a JWT client assertion (`private_key_jwt`, RFC 7523 §2.2) for clients registered with it;
/// public clients send only `client_id`. A disabled client is refused. `endpoint` is the URL
/// of the endpoint called (an assertion's `aud` may name it).
pub async fn authenticate(
    st: &crate::http::AppState,
    req: &actix_web::HttpRequest,
    params: &Params,
    endpoint: &str,
) -> Result<(client::Model, AuthMethod), OAuthError> {
    let db = &st.db;
    let basic = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    if let Some(assertion) = params.get("client_assertion") {
        if basic.is_some() || params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request("use one client authentication method, not both"));
        }
        if params.get("client_assertion_type") != Some(super::client_keys::ASSERTION_TYPE) {
            return Err(OAuthError::invalid_client(
                format!("client_assertion_type must be {}", super::client_keys::ASSERTION_TYPE),
                false,
            ));
        }
        let id = super::client_keys::asserted_client(assertion)?;
        if params.get("client_id").is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_client("client_id differs from the client_assertion's sub", false));
        }
        if id.is_empty() || id.len() > 64 {
            return Err(OAuthError::invalid_client("unknown client", false));
        }
        let client = crate::store::clients::get(db, &id)
            .await?
            .ok_or_else(|| OAuthError::invalid_client("unknown client", false))?;
        if client.disabled_at.is_some() {
            return Err(OAuthError::invalid_client("the client is disabled", false));
        }
        if auth_method_of(&client) != TokenAuthMethod::PrivateKeyJwt {
            return Err(OAuthError::invalid_client(
                format!("this client is registered for {}, not private_key_jwt", auth_method_of(&client).as_str()),
                false,
            ));
        }
        super::client_keys::verify_assertion(st, &client, assertion, endpoint).await?;
        return Ok((client, AuthMethod::PrivateKeyJwt));
    }
    if params.get("client_assertion_type").is_some() {
        return Err(OAuthError::invalid_client("client_assertion_type without client_assertion", false));
    }
    let (client_id, secret, method) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request("use one client authentication method, not both"));
        }
        (Some(b), None) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let text =
                String::from_utf8(raw).map_err(|_| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let (id, secret) =
                text.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let dec =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.to_string());
            let id = dec(id).unwrap_or_default();
            let secret = dec(secret).unwrap_or_default();
            if let Some(body_id) = params.get("client_id") {
                if body_id != id {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the authenticated client",
                    ));
                }
            }
            (id, Some(secret), AuthMethod::Basic)
        }
        (None, Some(s)) => {
            let id = params.get("client_id").ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
            (id.to_string(), Some(s.to_string()), AuthMethod::Post)
        }
        (None, None) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is required", false))?;
            (id.to_string(), None, AuthMethod::None)
        }
    };
    let is_basic = method == AuthMethod::Basic;
    if client_id.is_empty() || client_id.len() > 64 {
        return Err(OAuthError::invalid_client("unknown client", is_basic));
    }
    let client = crate::store::clients::get(db, &client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client", is_basic))?;
    if client.disabled_at.is_some() {
        return Err(OAuthError::invalid_client("the client is disabled", is_basic));
    }
    if auth_method_of(&client) == TokenAuthMethod::PrivateKeyJwt {
        return Err(OAuthError::invalid_client(
            "this client authenticates with private_key_jwt (client_assertion), not a secret",
            is_basic,
        ));
    }
    match (client.client_type.as_str(), &secret, &client.secret_hash) {
        ("public", None, _) => Ok((client, AuthMethod::None)),
        ("public", Some(_), _) => Err(OAuthError::invalid_client("public clients do not have a secret", is_basic)),
        (_, Some(s), Some(h)) if verify_hashed(s, h) => Ok((client, method)),
        (_, None, _) => Err(OAuthError::invalid_client("client authentication is required", false)),
        _ => Err(OAuthError::invalid_client("client authentication failed", is_basic)),
    }
}

pub fn allows_grant(c: &client::Model, g: GrantType) -> bool {
    from_json_list(&c.grant_types).iter().any(|x| x == g.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    proptest::proptest! {
        #[test]
        fn redirect_validation_never_panics(s in ".{0,300}") {
            let _ = validate_redirect_uri("r", &s, false);
        }
    }
    #[test]
    fn redirect_uri_rules() {
        assert!(validate_redirect_uri("r", "https://app.example.com/cb", false).is_ok());
        assert!(validate_redirect_uri("r", "http://127.0.0.1:3000/cb", false).is_ok());
        assert!(validate_redirect_uri("r", "http://app.example.com/cb", false).is_err());
        assert!(validate_redirect_uri("r", "http://app.example.com/cb", true).is_ok());
        assert!(validate_redirect_uri("r", "https://app.example.com/cb#x", false).is_err());
        assert!(validate_redirect_uri("r", "javascript:alert(1)", false).is_err());
        assert!(validate_redirect_uri("r", "com.example.app:/cb", false).is_ok());
        assert!(validate_redirect_uri("r", "/relative", false).is_err());
        assert!(validate_redirect_uri("r", "https://u:p@app.example.com/", false).is_err());
    }
}
