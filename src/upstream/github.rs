//! GitHub sign-in (`type: github`): OAuth 2.0 without OpenID Connect. Authorization code with
//! `state` (our LoginId) and PKCE S256; the token exchange asks for JSON (`Accept:
//! application/json`; GitHub answers errors with HTTP 200 and an `error` field); then the REST
//! API: `GET /user` (the numeric id is the subject, never the login name) and `GET /user/emails`
//! (the primary address, only if verified). Base URLs are configurable (GitHub Enterprise
//! Server, and the test fixture).
use super::{
    CallbackPayload, Completed, Connector, ConnectorState, LoginAction, LoginContext, LoginStart, UpstreamCtx,
    UpstreamError,
};
use crate::error_code::ErrorCode;
use crate::keys::sha256_b64url;
use crate::net::upstream::HttpError;
use crate::validation::Invalid;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

fn default_authorization_endpoint() -> String {
    "https://github.com/login/oauth/authorize".into()
}
fn default_token_endpoint() -> String {
    "https://github.com/login/oauth/access_token".into()
}
fn default_api_base() -> String {
    "https://api.github.com".into()
}
fn default_scopes() -> Vec<String> {
    vec!["read:user".into(), "user:email".into()]
}

/// The `github` connection's configuration (the client secret is kept apart, sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The OAuth app's (or GitHub app's) client ID.
    pub client_id: String,
    #[serde(default = "default_authorization_endpoint")]
    pub authorization_endpoint: String,
    #[serde(default = "default_token_endpoint")]
    pub token_endpoint: String,
    /// The REST API (`https://api.github.com`; `https://HOST/api/v3` for Enterprise Server).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Scopes asked for: `read:user` and `user:email` (needed for private addresses).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

impl GithubConfig {
    /// Checks the configuration; `dev_mode` allows plain http URLs.
    pub fn validate(&self, dev_mode: bool) -> Result<(), Invalid> {
        for (field, u) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("api_base", &self.api_base),
        ] {
            match url::Url::parse(u) {
                Ok(p)
                    if (p.scheme() == "https" || (dev_mode && p.scheme() == "http"))
                        && p.fragment().is_none()
                        && p.username().is_empty() => {}
                _ => {
                    return Err(Invalid::field(
                        field,
                        ErrorCode::InvalidUrl,
                        format!("{field} must be an https URL without credentials or fragment (http only in dev mode)"),
                    ))
                }
            }
        }
        if self.client_id.trim().is_empty() || self.client_id.len() > 512 {
            return Err(Invalid::field(
                "client_id",
                ErrorCode::InvalidClientId,
                "client_id is required (at most 512 characters)",
            ));
        }
        if self.scopes.len() > 30 || self.scopes.iter().any(|s| s.is_empty() || s.contains(' ') || s.len() > 128) {
            return Err(Invalid::field("scopes", ErrorCode::InvalidScopes, "scopes must be at most 30 single words"));
        }
        Ok(())
    }
}

/// An opened `github` connection.
pub struct GithubConnector {
    pub config: GithubConfig,
    pub client_secret: Option<String>,
    pub version: i64,
    pub ctx: Arc<UpstreamCtx>,
}

/// `/sso/github/callback` on fedgate's issuer.
pub fn callback_url(issuer: &str) -> String {
    format!("{}/sso/github/callback", issuer.trim_end_matches('/'))
}

fn unreachable(what: &str, e: HttpError) -> UpstreamError {
    match e {
        HttpError::Blocked(_) | HttpError::BadUrl(_) => UpstreamError::Misconfigured(format!("{what}: {e}")),
        other => UpstreamError::Unreachable(format!("{what}: {other}")),
    }
}

impl GithubConnector {
    async fn api(&self, path: &str, token: &str) -> Result<Value, UpstreamError> {
        let url = format!("{}{path}", self.config.api_base.trim_end_matches('/'));
        let req = openidconnect::http::Request::builder()
            .method("GET")
            .uri(&url)
            .header("accept", "application/vnd.github+json")
            .header("authorization", format!("Bearer {token}"))
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", concat!("fedgate/", env!("CARGO_PKG_VERSION")))
            .body(Vec::new())
            .map_err(|e| UpstreamError::Misconfigured(format!("{url}: {e}")))?;
        let resp = self.ctx.http.execute(req).await.map_err(|e| unreachable(path, e))?;
        if !resp.status().is_success() {
            return Err(UpstreamError::InvalidResponse(format!(
                "GitHub's {path} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        serde_json::from_slice(resp.body())
            .map_err(|_| UpstreamError::InvalidResponse(format!("GitHub's {path} answer is not JSON")))
    }
}

#[async_trait::async_trait]
impl Connector for GithubConnector {
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError> {
        let rng = &*self.ctx.rng;
        let verifier = format!("{}{}", crate::ids::random128(rng), crate::ids::random128(rng));
        let mut url = url::Url::parse(&self.config.authorization_endpoint)
            .map_err(|e| UpstreamError::Misconfigured(format!("authorization_endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &callback_url(&login.issuer))
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", login.login_id.as_str())
                .append_pair("code_challenge", &sha256_b64url(verifier.as_bytes()))
                .append_pair("code_challenge_method", "S256");
            if login.prompt_login {
                // GitHub's closest: always show the account picker.
                q.append_pair("prompt", "select_account");
            }
        }
        login.steps.push(
            "redirected_upstream",
            self.ctx.clock.now_ms(),
            0,
            json!({ "authorization_endpoint": self.config.authorization_endpoint, "scopes": self.config.scopes, "pkce": "S256" }),
        );
        Ok(LoginStart {
            action: LoginAction::Redirect(url.to_string()),
            state: ConnectorState::Github { verifier, version: self.version },
        })
    }

    async fn complete(
        &self,
        login: &LoginContext,
        state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<Completed, UpstreamError> {
        let p = &payload.params;
        if p.get("state").map(String::as_str) != Some(login.login_id.as_str()) {
            return Err(UpstreamError::StateMismatch);
        }
        let ConnectorState::Github { verifier, .. } = state else {
            return Err(UpstreamError::InvalidResponse("no pending GitHub state for this sign-in".into()));
        };
        if let Some(err) = p.get("error") {
            let description = p.get("error_description").cloned();
            return Err(if err == "access_denied" {
                UpstreamError::Denied(description)
            } else {
                UpstreamError::ProviderError { error: err.chars().take(64).collect(), description }
            });
        }
        let code = p.get("code").ok_or_else(|| UpstreamError::InvalidResponse("the callback has no code".into()))?;
        let t0 = self.ctx.clock.now_ms();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.config.client_id)
            .append_pair("client_secret", self.client_secret.as_deref().unwrap_or_default())
            .append_pair("code", code)
            .append_pair("redirect_uri", &callback_url(&login.issuer))
            .append_pair("code_verifier", verifier)
            .finish();
        let req = openidconnect::http::Request::builder()
            .method("POST")
            .uri(&self.config.token_endpoint)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", concat!("fedgate/", env!("CARGO_PKG_VERSION")))
            .body(form.into_bytes())
            .map_err(|e| UpstreamError::Misconfigured(format!("token_endpoint: {e}")))?;
        let resp = self.ctx.http.execute(req).await.map_err(|e| unreachable("token endpoint", e))?;
        let body: Value = serde_json::from_slice(resp.body()).map_err(|_| {
            UpstreamError::TokenExchange(format!("unreadable token response (HTTP {})", resp.status().as_u16()))
        })?;
        // GitHub answers a refused code with HTTP 200 and an `error` field.
        if let Some(e) = body.get("error").and_then(Value::as_str) {
            let d = body.get("error_description").and_then(Value::as_str).map(|d| format!(": {d}")).unwrap_or_default();
            return Err(UpstreamError::TokenExchange(format!("{}{d}", e.chars().take(64).collect::<String>())));
        }
        let token = match body.get("access_token").and_then(Value::as_str) {
            Some(t) if resp.status().is_success() && !t.is_empty() => t.to_string(),
            _ => {
                return Err(UpstreamError::TokenExchange(format!(
                    "no access_token in the token response (HTTP {})",
                    resp.status().as_u16()
                )))
            }
        };
        login.steps.push(
            "token_exchanged",
            self.ctx.clock.now_ms(),
            self.ctx.clock.now_ms() - t0,
            json!({ "token_endpoint": self.config.token_endpoint, "token_type": body.get("token_type"), "scope": body.get("scope") }),
        );
        let t1 = self.ctx.clock.now_ms();
        let user = self.api("/user", &token).await?;
        let emails = self.api("/user/emails", &token).await?;
        let mapped = crate::claims::social::github(&user, &emails).map_err(|r| UpstreamError::ClaimsRejected {
            code: r.code,
            detail: r.detail,
            fix: r.fix,
        })?;
        login.steps.push(
            "claims_mapped",
            self.ctx.clock.now_ms(),
            self.ctx.clock.now_ms() - t1,
            json!({ "provider": "github", "email_domain": mapped.identity.email.as_deref().and_then(crate::claims::email_domain), "email_verified": mapped.identity.email_verified }),
        );
        Ok(Completed { identity: mapped.identity, one_time: None, notes: mapped.notes })
    }
}
