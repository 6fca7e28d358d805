//! Upstream identity providers behind one small trait (after Dex's connector interfaces).
//! Connectors hold no actix types and never see the browser; the server owns the correlation
//! id (our LoginId) and stores each connector's state on the pending login row.
pub mod connections;
pub mod dev;

use crate::ids::{ConnectionId, LoginId, TenantId};
use std::collections::HashMap;

/// What a connector knows about the login it is serving.
#[derive(Debug, Clone)]
pub struct LoginContext {
    /// Our LoginId: the OIDC `state` and the SAML request ID upstream.
    pub login_id: LoginId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub login_hint: Option<String>,
    /// fedgate's public base URL.
    pub issuer: String,
    /// Force re-authentication upstream (`prompt=login` / `max_age`).
    pub force_authn: bool,
}

/// How to send the browser upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginAction {
    Redirect(String),
    /// An auto-submitting POST form (rendered and HTML-escaped by the server).
    AutoPost {
        url: String,
        fields: Vec<(String, String)>,
    },
}

/// Connector state kept on the pending login row (never in the browser).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ConnectorState(pub serde_json::Value);

#[derive(Debug, Clone)]
pub struct LoginStart {
    pub action: LoginAction,
    pub state: ConnectorState,
}

/// What came back from upstream: query or form parameters.
#[derive(Debug, Clone, Default)]
pub struct CallbackPayload {
    pub params: HashMap<String, String>,
}

/// The upstream's statement about the person, before normalization.
#[derive(Debug, Clone, Default)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The person (or the IdP) declined the login: the app gets `access_denied`.
    #[error("the sign-in was declined")]
    Denied,
    #[error("the dev connector is disabled (dev mode is off)")]
    DevModeOff,
    #[error("the connection is misconfigured: {0}")]
    Misconfigured(String),
    #[error("the identity provider's answer is invalid: {0}")]
    InvalidResponse(String),
}

impl UpstreamError {
    /// Stable code for traces, pages and logs.
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::Denied => "upstream_denied",
            UpstreamError::DevModeOff => "dev_mode_disabled",
            UpstreamError::Misconfigured(_) => "connection_misconfigured",
            UpstreamError::InvalidResponse(_) => "upstream_invalid_response",
        }
    }
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Begin an upstream login.
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError>;
    /// Check the upstream answer against what `begin` stored and return the upstream identity.
    async fn complete(
        &self,
        login: &LoginContext,
        state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<UpstreamIdentity, UpstreamError>;
}
