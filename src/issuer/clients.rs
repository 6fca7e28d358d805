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
}

impl GrantType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }
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
    pub token_endpoint_auth_method: String,
    pub backchannel_logout_uri: Option<String>,
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
        token_endpoint_auth_method: if c.client_type == "public" { "none" } else { "client_secret_basic" }.into(),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
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

/// How the client authenticated at the token, revocation or introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    None,
}

/// Authenticates the client of a back-channel request (RFC 6749 §2.3.1): HTTP Basic with
/// form-urlencoded id and secret, or `client_id`/`client_secret` in the body, never both;
/// public clients send only `client_id`.
pub async fn authenticate(
    db: &impl crate::store::conn::Conn,
    req: &actix_web::HttpRequest,
    params: &Params,
) -> Result<(client::Model, AuthMethod), OAuthError> {
    let basic = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
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
