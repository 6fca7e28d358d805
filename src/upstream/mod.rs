//! Upstream identity providers behind one small trait (after Dex's connector interfaces).
//! Connectors hold no actix types and never see the browser; the server owns the correlation
//! id (our LoginId) and stores each connector's state on the pending login row.
pub mod connections;
pub mod console_rules;
pub mod dev;
pub mod github;
pub mod oidc;
pub mod registry;
pub mod saml;

use crate::error_code::ErrorCode;
use crate::ids::{ConnectionId, LoginId, TenantId};
use std::collections::HashMap;

/// What connectors share, and what opening a connection needs: the guarded HTTP client, the
/// discovery/JWKS cache, opened SAML key material, the master key that seals connection
/// secrets, the clock and RNG, and the bounded pool SAML verification runs on. Built once at
/// start; connectors hold an `Arc` of it.
pub struct UpstreamCtx {
    pub http: crate::net::upstream::UpstreamHttp,
    pub oidc: oidc::metadata::MetadataCache,
    pub master: std::sync::Arc<crate::keys::MasterKey>,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    pub rng: std::sync::Arc<dyn crate::clock::Rng>,
    /// Dev mode: the dev connector works, and http URLs are accepted for IdPs.
    pub dev_mode: bool,
    /// SAML signature verification and decryption run here, never on the async workers.
    pub saml_pool: std::sync::Arc<crate::blocking::BlockingPool>,
    /// The least time a failure to decrypt unauthenticated SAML ciphertext takes.
    pub decryption_failure_floor_ms: u64,
}

impl std::fmt::Debug for UpstreamCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCtx")
            .field("http", &self.http)
            .field("dev_mode", &self.dev_mode)
            .finish_non_exhaustive()
    }
}

impl UpstreamCtx {
    pub fn new(
        allow_private_network: bool,
        master: std::sync::Arc<crate::keys::MasterKey>,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
        rng: std::sync::Arc<dyn crate::clock::Rng>,
        dev_mode: bool,
        saml_pool: std::sync::Arc<crate::blocking::BlockingPool>,
        decryption_failure_floor_ms: u64,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: crate::net::upstream::UpstreamHttp::new(allow_private_network)?,
            oidc: Default::default(),
            decryption_failure_floor_ms,
            master,
            clock,
            rng,
            dev_mode,
            saml_pool,
        })
    }
}

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
    /// Force re-authentication upstream (`prompt=login` / `max_age`): SAML `ForceAuthn`.
    pub force_authn: bool,
    /// The app sent `prompt=login`: forwarded to OIDC upstreams as `prompt=login`.
    pub prompt_login: bool,
    /// The app's `max_age` (seconds): forwarded to OIDC upstreams as `max_age`.
    pub max_age: Option<i64>,
    /// MFA is required for this login (policy or the app's `acr_values`): ask the IdP for it in
    /// the preset's terms (OIDC `acr_values` / `claims`, SAML `RequestedAuthnContext`).
    pub require_mfa: bool,
    /// Where the connector records its steps (token exchange, ID token checks...).
    pub steps: StepLog,
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

/// The upstream's statement about the person, before normalization (defined with the pure
/// claims code that maps it; connectors produce it).
pub use crate::claims::UpstreamIdentity;

/// Connector state kept on the pending login row (never in the browser), one shape per
/// connection type. Stored as JSON tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ConnectorState {
    /// The person the dev confirmation page signs in.
    Dev { email: String },
    /// PKCE verifier and nonce of the upstream authorization request, and the connection
    /// version it was sent with.
    Oidc { nonce: String, verifier: String, version: i64 },
    /// GitHub (OAuth 2.0): the PKCE verifier.
    Github { verifier: String, version: i64 },
    /// The AuthnRequest ID (our login id) and the answers the ACS accepted for it, each under
    /// the hash of a handle only the browser that posted it holds.
    Saml {
        saml_request_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        asserted: Vec<SamlAnswer>,
    },
}

impl ConnectorState {
    /// The protocol of the connection that holds this state (`dev`, `oidc`, `github`, `saml`).
    pub fn protocol(&self) -> &'static str {
        match self {
            ConnectorState::Dev { .. } => "dev",
            ConnectorState::Oidc { .. } => "oidc",
            ConnectorState::Github { .. } => "github",
            ConnectorState::Saml { .. } => "saml",
        }
    }
}

/// An identity a SAML response established, waiting for its browser (`/sso/saml/resume`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamlAnswer {
    /// SHA-256 of the handle in the resume URL; empty for answers stored before handles existed.
    pub handle_hash: String,
    pub identity: UpstreamIdentity,
}

impl ConnectorState {
    /// Reads the stored JSON. Rows written before the state was typed (an in-flight login
    /// during an upgrade) are recognised by their fields.
    pub fn from_stored(raw: &str) -> Option<Self> {
        if let Ok(s) = serde_json::from_str::<Self>(raw) {
            return Some(s);
        }
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        if let Some(email) = text("email") {
            return Some(Self::Dev { email });
        }
        if let (Some(nonce), Some(verifier)) = (text("nonce"), text("verifier")) {
            let version = v.get("version").and_then(serde_json::Value::as_i64).unwrap_or(0);
            return Some(Self::Oidc { nonce, verifier, version });
        }
        let saml_request_id = text("saml_request_id")?;
        let asserted = match v.get("asserted") {
            Some(one @ serde_json::Value::Object(_)) => serde_json::from_value(one.clone())
                .ok()
                .map(|identity| vec![SamlAnswer { handle_hash: String::new(), identity }])
                .unwrap_or_default(),
            Some(many @ serde_json::Value::Array(_)) => serde_json::from_value(many.clone()).unwrap_or_default(),
            _ => Vec::new(),
        };
        Some(Self::Saml { saml_request_id, asserted })
    }

    /// The JSON stored on the login row.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".into())
    }
}

/// A use-once key a connector's answer carries (a SAML assertion ID): the login module records
/// it in the replay cache, shared by every instance, before it accepts the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeUse {
    pub key: String,
    /// Until when the key could be accepted again (unix seconds): keep it at least that long.
    pub until: i64,
}

/// What a connector's `complete` established.
#[derive(Debug, Clone)]
pub struct Completed {
    pub identity: UpstreamIdentity,
    pub one_time: Option<OneTimeUse>,
    /// Notes on the claims mapping (for the login trace).
    pub notes: Vec<String>,
}

impl Completed {
    pub fn identity(identity: UpstreamIdentity) -> Self {
        Self { identity, one_time: None, notes: Vec::new() }
    }
}

#[derive(Debug, Clone)]
pub struct LoginStart {
    pub action: LoginAction,
    pub state: ConnectorState,
}

/// What came back from upstream: query or form parameters.
#[derive(Debug, Clone, Default)]
pub struct CallbackPayload {
    pub params: HashMap<String, String>,
    /// The message already decoded by the surface (SAML: the SAMLResponse XML, decoded and
    /// checked while finding the login it names), so the connector need not decode it again.
    pub decoded: Option<std::sync::Arc<str>>,
}

/// Why an upstream login failed. Every variant has a stable [`code`](UpstreamError::code), a
/// plain-language cause (`Display`) and a [`fix`](UpstreamError::fix) for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The person (or the IdP) declined the login: the app gets `access_denied`.
    #[error("the sign-in was declined at the identity provider{}", .0.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied(Option<String>),
    #[error("the dev connector is disabled (dev mode is off)")]
    DevModeOff,
    #[error("the connection is misconfigured: {0}")]
    Misconfigured(String),
    #[error("the identity provider's answer is invalid: {0}")]
    InvalidResponse(String),
    /// The IdP answered the authorization request with an error other than access_denied.
    #[error("the identity provider returned the error {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ProviderError { error: String, description: Option<String> },
    /// Discovery, JWKS or the token endpoint could not be reached.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the callback's state does not belong to this sign-in")]
    StateMismatch,
    /// RFC 9207 mix-up defence: the `iss` authorization-response parameter is wrong.
    #[error("the authorization response came from issuer {got}, expected {expected}")]
    IssuerParamMismatch { got: String, expected: String },
    #[error("the token endpoint refused the code: {0}")]
    TokenExchange(String),
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("the ID token is signed with {0}, which is not allowed")]
    AlgNotAllowed(String),
    #[error("the ID token's signature does not verify with the identity provider's published keys ({0})")]
    BadSignature(String),
    #[error("the ID token is signed with key {0}, which the identity provider does not publish")]
    UnknownKey(String),
    #[error("the ID token has expired or was issued at an invalid time: {0}")]
    Expired(String),
    #[error("the ID token is not valid yet (nbf {0})")]
    NotYetValid(i64),
    #[error("the ID token audience was {got}, expected {expected}")]
    WrongAudience { got: String, expected: String },
    #[error("the ID token issuer was {got}, expected {expected}")]
    WrongIssuer { got: String, expected: String },
    #[error("the ID token's nonce does not match this sign-in")]
    NonceMismatch,
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    /// The claims were refused by the connection's policy (preset checks).
    #[error("{detail}")]
    ClaimsRejected { code: ErrorCode, detail: String, fix: String },
    /// A SAML response was refused (each reason has its own code).
    #[error("{0}")]
    Saml(saml::validate::SamlError),
    /// The app asked for a fresh sign-in (`prompt=login` / `max_age`) and the upstream's answer
    /// does not show one (see [`crate::claims::check_reauthentication`]).
    #[error("{0}")]
    ReauthenticationMissing(String),
    /// Every SAML verification worker is busy and the queue is full: try again shortly.
    #[error("too many SAML responses are being verified right now")]
    Busy,
}

/// The [`ErrorCode`] of a SAML refusal. The SAML core (crate fedgate-saml) names its codes as
/// text so that it depends on nothing of the server; every one of them is an `ErrorCode` (a test
/// reads them from the crate's source), so the fallback is never taken.
pub fn saml_code(e: &saml::validate::SamlError) -> ErrorCode {
    ErrorCode::parse(e.code()).unwrap_or(ErrorCode::SamlResponseMalformed)
}

impl UpstreamError {
    /// Stable code for traces, pages and logs.
    pub fn code(&self) -> ErrorCode {
        match self {
            UpstreamError::Denied(_) => ErrorCode::UpstreamDenied,
            UpstreamError::DevModeOff => ErrorCode::DevModeDisabled,
            UpstreamError::Misconfigured(_) => ErrorCode::ConnectionMisconfigured,
            UpstreamError::InvalidResponse(_) => ErrorCode::UpstreamInvalidResponse,
            UpstreamError::ProviderError { .. } => ErrorCode::UpstreamError,
            UpstreamError::Unreachable(_) => ErrorCode::UpstreamUnreachable,
            UpstreamError::StateMismatch => ErrorCode::StateMismatch,
            UpstreamError::IssuerParamMismatch { .. } => ErrorCode::IssParameterMismatch,
            UpstreamError::TokenExchange(_) => ErrorCode::TokenExchangeFailed,
            UpstreamError::NoIdToken => ErrorCode::IdTokenMissing,
            UpstreamError::AlgNotAllowed(_) => ErrorCode::IdTokenAlgNotAllowed,
            UpstreamError::BadSignature(_) => ErrorCode::IdTokenSignatureInvalid,
            UpstreamError::UnknownKey(_) => ErrorCode::IdTokenKeyUnknown,
            UpstreamError::Expired(_) => ErrorCode::IdTokenExpired,
            UpstreamError::NotYetValid(_) => ErrorCode::IdTokenNotYetValid,
            UpstreamError::WrongAudience { .. } => ErrorCode::IdTokenAudienceMismatch,
            UpstreamError::WrongIssuer { .. } => ErrorCode::IdTokenIssuerMismatch,
            UpstreamError::NonceMismatch => ErrorCode::IdTokenNonceMismatch,
            UpstreamError::InvalidIdToken(_) => ErrorCode::IdTokenInvalid,
            UpstreamError::ClaimsRejected { code, .. } => *code,
            UpstreamError::Saml(e) => saml_code(e),
            UpstreamError::ReauthenticationMissing(_) => ErrorCode::UpstreamReauthenticationMissing,
            UpstreamError::Busy => ErrorCode::SamlBusy,
        }
    }

    /// What the person is told on the error page: one fixed sentence per kind of failure. The
    /// detail ([`Display`](std::fmt::Display)) may carry the identity provider's or a library's
    /// text (xmlsec, OpenSSL, JOSE, HTTP errors): it goes only to the server log and the
    /// admin-only login trace, never to the person.
    pub fn public_message(&self) -> &'static str {
        match self {
            UpstreamError::Denied(_) => "The sign-in was declined at your identity provider.",
            UpstreamError::DevModeOff => "This sign-in method is turned off on this server.",
            UpstreamError::Misconfigured(_) => "This sign-in method of your organization is not set up correctly.",
            UpstreamError::Unreachable(_) => "Your organization's identity provider could not be reached.",
            UpstreamError::StateMismatch | UpstreamError::NonceMismatch | UpstreamError::IssuerParamMismatch { .. } => {
                "The answer from your identity provider does not belong to this sign-in."
            }
            UpstreamError::Expired(_) | UpstreamError::NotYetValid(_) => {
                "The answer from your identity provider is outside its validity period."
            }
            UpstreamError::ClaimsRejected { .. } => {
                "Your identity provider's answer does not meet your organization's sign-in policy."
            }
            UpstreamError::ReauthenticationMissing(_) => {
                "The application asked you to sign in again, but your identity provider did not ask you to."
            }
            UpstreamError::Busy => {
                "Too many sign-ins are being checked right now. Go back to the application and try again in a moment."
            }
            UpstreamError::Saml(e) => match saml_code(e) {
                ErrorCode::SamlReplay => "This answer from your identity provider was already used.",
                ErrorCode::SamlStatusNotSuccess => "Your identity provider did not sign you in.",
                ErrorCode::SamlExpired | ErrorCode::SamlNotYetValid => {
                    "The answer from your identity provider is outside its validity period."
                }
                ErrorCode::SamlUnsolicitedResponse => {
                    "Sign-ins started at your identity provider are not enabled here."
                }
                _ => "The answer from your identity provider could not be accepted.",
            },
            _ => "The answer from your identity provider could not be accepted.",
        }
    }

    /// The detail for the server log and the admin-only trace, bounded.
    pub fn detail(&self) -> String {
        let full = self.to_string();
        match full.char_indices().nth(MAX_DETAIL) {
            Some((at, _)) => format!("{}…", &full[..at]),
            None => full,
        }
    }

    /// What the administrator of connection `conn` should do about it.
    pub fn fix(&self, conn: &str) -> String {
        match self {
            UpstreamError::Denied(_) => "None needed if the person cancelled; otherwise check that the person is assigned to the application at the identity provider.".into(),
            UpstreamError::DevModeOff => "Dev connections only work with dev_mode = true; use a real connection in production.".into(),
            UpstreamError::Misconfigured(_) => format!("Correct the configuration of connection {conn}."),
            UpstreamError::InvalidResponse(_) | UpstreamError::InvalidIdToken(_) => format!("Check the identity provider's logs and the settings of connection {conn}."),
            UpstreamError::ProviderError { .. } => format!("Read the error at the identity provider and check the application settings there (redirect URI, scopes) for connection {conn}."),
            UpstreamError::Unreachable(_) => format!("Check that the issuer URL of connection {conn} is right and that the identity provider is up and reachable from fedgate."),
            UpstreamError::StateMismatch => "Start the sign-in again from the application; if it persists, the identity provider is not returning the state parameter unchanged.".into(),
            UpstreamError::IssuerParamMismatch { .. } => format!("The answer came from another identity provider than the one connection {conn} sent the person to (mix-up attack or wrong issuer): check the issuer of connection {conn}."),
            UpstreamError::TokenExchange(_) => format!("Check the client ID and client secret of connection {conn} and that the redirect URI {{issuer}}/sso/oidc/callback is registered at the identity provider."),
            UpstreamError::NoIdToken => format!("Make sure the scopes of connection {conn} include openid."),
            UpstreamError::AlgNotAllowed(_) => "Configure the identity provider to sign ID tokens with RS256, ES256 or another asymmetric algorithm.".into(),
            UpstreamError::BadSignature(_) | UpstreamError::UnknownKey(_) => format!("Check that the issuer of connection {conn} is the identity provider that signs the tokens; if keys were just rotated, retry in a minute."),
            UpstreamError::Expired(_) | UpstreamError::NotYetValid(_) => "Check the clocks of the identity provider and of fedgate (NTP).".into(),
            UpstreamError::WrongAudience { expected, .. } => format!("Check the client ID configured on connection {conn} (currently {expected}): it must be the identity provider's client ID for fedgate."),
            UpstreamError::WrongIssuer { .. } => format!("Check the issuer configured on connection {conn}: it must be exactly the identity provider's issuer."),
            UpstreamError::NonceMismatch => "Start the sign-in again from the application; if it persists, the identity provider does not echo the nonce.".into(),
            UpstreamError::ClaimsRejected { fix, .. } => fix.clone(),
            UpstreamError::Saml(e) => e.fix(conn),
            UpstreamError::Busy => "None for one person (they retry). If it persists, look for a flood in fedgate_saml_busy_total and the rate-limit metrics, and raise saml.verify_workers if the load is real.".into(),
            UpstreamError::ReauthenticationMissing(_) => format!("The application asked for a fresh sign-in (prompt=login or max_age). Make sure the identity provider of connection {conn} re-authenticates when asked (SAML ForceAuthn; OIDC prompt=login and max_age) and says when it did: AuthnInstant in the SAML AuthnStatement, auth_time in the OIDC ID token (Entra ID: add the optional claim auth_time). Clock skew allowed: the connection's clock skew setting."),
        }
    }
}

/// Longest technical detail kept for the log and the trace.
pub const MAX_DETAIL: usize = 1000;

/// Steps of a login, collected while a request runs and written to the login's trace.
#[derive(Debug, Clone, Default)]
pub struct StepLog(pub std::sync::Arc<std::sync::Mutex<Vec<crate::traces::Step>>>);

impl StepLog {
    /// Records a step that took `duration_ms`, with non-secret details.
    pub fn push(&self, name: &str, at_ms: i64, duration_ms: i64, detail: serde_json::Value) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.push(crate::traces::Step { step: name.to_string(), at_ms, duration_ms, detail });
    }
    /// Takes the steps recorded so far.
    pub fn take(&self) -> Vec<crate::traces::Step> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// Records steps taken earlier ([`StepLog::take`]) again, after any recorded since.
    pub fn extend(&self, steps: Vec<crate::traces::Step>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(steps);
    }
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Begin an upstream login.
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError>;
    /// Check the upstream answer against what `begin` stored and return the upstream identity
    /// (and the use-once key the caller must record, if the protocol has one).
    async fn complete(
        &self,
        login: &LoginContext,
        state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<Completed, UpstreamError>;
}
