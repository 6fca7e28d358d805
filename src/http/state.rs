//! The application state every HTTP surface shares: declared here, at the surface layer, and
//! built at the top (`app::AppState::new`). Domain code never sees it: it receives the narrow
//! dependencies it uses (a database handle, the clock, the master key, ...).
use crate::clock::{Clock, Rng};
use crate::config::Config;
use crate::keys::{KeyRing, MasterKey};
use crate::store::Db;
use std::sync::Arc;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub keys: Arc<KeyRing>,
    pub master: Arc<MasterKey>,
    pub openapi: Arc<serde_json::Value>,
    /// Outbound HTTP (webhooks, back-channel logout), SSRF-guarded.
    pub outbound: crate::net::Outbound,
    /// This process's id for delivery leases.
    pub instance_id: String,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set by `serve --demo`: the built-in demo app's client secret.
    pub demo: Arc<std::sync::RwLock<Option<crate::demo::DemoApp>>>,
    /// Upstream HTTP client (SSRF-guarded) and the OIDC discovery/JWKS cache.
    pub upstream: Arc<crate::upstream::UpstreamCtx>,
    /// Connectors opened once per (connection, version).
    pub connectors: Arc<crate::upstream::registry::Connectors>,
    /// The SCIM request log buffer (written in batches).
    pub scim_log: Arc<crate::scim::reqlog::RequestLog>,
    /// Bounded blocking pool for SAML signature verification and decryption.
    pub saml_pool: Arc<crate::blocking::BlockingPool>,
    /// Rate limits (per instance, in memory).
    pub limits: Arc<crate::http::limits::Limits>,
    /// Sampling of the log lines of anonymous failures.
    pub failure_log: Arc<crate::traces::sampled::FailureLog>,
    /// Keys fetched from OAuth clients' `jwks_uri` (`private_key_jwt`).
    pub client_keys: Arc<crate::issuer::client_keys::KeyCache>,
    /// Bounds the traces of logins refused at authorize or stopped on the email page.
    pub trace_budget: Arc<crate::traces::sampled::Budget>,
}
