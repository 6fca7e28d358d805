//! Typed, layered configuration (figment): built-in defaults, then `fedgate.toml` (or
//! `--config FILE`), then environment variables. Validated once at start; unknown keys are an
//! error naming the key and where it came from (the file, or the variable).
//!
//! Environment: the documented flat variables (`FEDGATE_LISTEN`, `FEDGATE_ISSUER`,
//! `FEDGATE_DATABASE_URL`, `FEDGATE_MASTER_KEY`, `FEDGATE_DATA_DIR`, `FEDGATE_DEV_MODE`,
//! `FEDGATE_LOG_FORMAT`, `FEDGATE_ALLOW_PRIVATE_NETWORK`, `FEDGATE_METRICS_TOKEN`) and, for any
//! key, the nested form `FEDGATE__SECTION__KEY=value` (e.g.
//! `FEDGATE__TOKENS__ACCESS_TOKEN_TTL=600`). A variable's value is text; the setting's type
//! decides how it is read (a number, a boolean, a list as one comma-separated string, or the
//! text as it is for strings: `FEDGATE__METRICS__TOKEN=12345678` is the token "12345678").
use figment::Figment;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A secret string: never printed by `Debug`.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// The issuer identifier: the public base URL of this service (no trailing slash).
    pub issuer: String,
    /// Where the default SQLite database and the generated master key live.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default `sqlite://{data_dir}/fedgate.db?mode=rwc`.
    pub database_url: Option<String>,
    /// Base64 of 32 random bytes. Encrypts IdP secrets and private keys at rest.
    pub master_key: Option<SecretString>,
    /// Enables the `dev` connector (a confirmation page that logs anyone in). Never in production.
    pub dev_mode: bool,
    /// Allow upstream/webhook calls to private and loopback addresses.
    pub allow_private_network: bool,
    pub log_format: LogFormat,
    /// Run background maintenance (key rotation, expiry clean-up). Tests turn it off and drive
    /// maintenance explicitly.
    pub background_tasks: bool,
    pub database: DatabaseConfig,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub limits: LimitConfig,
    pub webhooks: WebhookConfig,
    pub events: EventConfig,
    pub metrics: MetricsConfig,
    pub rate_limits: RateLimitConfig,
    pub saml: SamlServiceConfig,
    pub retention: RetentionConfig,
    pub dns: DnsConfig,
    pub telemetry: TelemetryConfig,
}

/// OpenTelemetry traces over OTLP/HTTP (protobuf). Off unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318` (spans are posted
    /// to `{otlp_endpoint}/v1/traces`; a URL already ending in `/v1/traces` is used as is).
    /// Unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of requests traced, 0.0 to 1.0 (a root decision; child spans follow it).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, service_name: "fedgate".into(), sample_ratio: 1.0 }
    }
}

/// How long rows that only serve support and debugging are kept (seconds). The other
/// retention settings live next to what they keep: `events.retention`, `events.audit_retention`,
/// `tokens.login_trace_retention`; docs/operations.md lists them all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Finished webhook and back-channel deliveries (delivered, failed for good, or dropped)
    /// and their attempts. Pending deliveries are never pruned.
    pub deliveries: i64,
    /// The SCIM request log (`/admin/v1/tenants/{t}/scim/requests`).
    pub scim_requests: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { deliveries: 30 * 86400, scim_requests: 14 * 86400 }
    }
}

/// How fedgate looks up DNS TXT records (the setup portal's domain verification).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `ip:port` of the DNS server to ask (UDP, then TCP); unset: the system's resolvers
    /// (`/etc/resolv.conf`).
    pub resolver: Option<String>,
}

/// How SAML messages are processed (signature verification and decryption run on a bounded
/// pool of blocking threads, never on the async workers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlServiceConfig {
    /// Verifications that may run at once; 0 = the number of CPUs.
    pub verify_workers: usize,
    /// Verifications that may wait for a worker; beyond that the ACS answers 503 with
    /// Retry-After at once.
    pub verify_queue: usize,
    /// Milliseconds every failure to decrypt and verify an unauthenticated encrypted assertion
    /// takes at least, so that its timing tells nothing about the plaintext.
    pub decryption_failure_floor_ms: u64,
}

impl Default for SamlServiceConfig {
    fn default() -> Self {
        Self { verify_workers: 0, verify_queue: 64, decryption_failure_floor_ms: 25 }
    }
}

impl SamlServiceConfig {
    pub fn workers(&self) -> usize {
        if self.verify_workers > 0 {
            self.verify_workers
        } else {
            std::thread::available_parallelism().map(usize::from).unwrap_or(2)
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Seconds a delivery stays leased by one instance (a killed instance's work is retried after).
    pub lease_secs: i64,
    /// Seconds to keep retrying a delivery.
    pub retry_for: i64,
    /// Seconds of uninterrupted failure after which an endpoint is disabled.
    pub disable_after: i64,
    /// Milliseconds between delivery rounds.
    pub poll_interval_ms: u64,
    /// Deliveries in flight at once per instance (each endpoint and tenant holds at most one).
    pub max_in_flight: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self { lease_secs: 60, retry_for: 86400, disable_after: 3 * 86400, poll_interval_ms: 1000, max_in_flight: 32 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventConfig {
    /// Seconds events are kept for the events API.
    pub retention: i64,
    /// Seconds audit log entries are kept.
    pub audit_retention: i64,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self { retention: 30 * 86400, audit_retention: 365 * 86400 }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Bearer token required for `/metrics` on the main listener. Without it (and without
    /// `listen`), `/metrics` is not served.
    pub token: Option<SecretString>,
    /// A separate listener for `/metrics` (no token; protect it by network), e.g. `127.0.0.1:9090`.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    /// Seconds to wait for a connection from the pool, connecting included: how long a request
    /// waits before it answers 503 when the database is unreachable (sqlx retries a refused
    /// connection until then).
    pub acquire_timeout: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Seconds. Access tokens (JWT, RFC 9068).
    pub access_token_ttl: i64,
    /// Seconds. ID tokens.
    pub id_token_ttl: i64,
    /// Seconds. The longest access token lifetime a client may be given (`access_token_ttl` on
    /// the client, 60 s up to this; at most 86400). Signing keys stay published this long after
    /// they stop signing.
    pub max_client_access_token_ttl: i64,
    /// Seconds. Lifetime of a refresh token family from the first login.
    pub refresh_token_ttl: i64,
    /// Seconds. Authorization codes.
    pub code_ttl: i64,
    /// Seconds. fedgate's own browser session (for `prompt=none` and SSO across apps).
    pub session_ttl: i64,
    /// Seconds a pending login may take once it is routed to a connection (upstream round trip
    /// included).
    pub login_ttl: i64,
    /// Seconds a pending login may wait before it reaches a connection (the email page, the
    /// chooser). Logins that never get that far are removed soon after.
    pub unrouted_login_ttl: i64,
    /// Seconds login traces (`/admin/v1/logins`) are kept.
    pub login_trace_retention: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// Seconds between scheduled signing key rotations.
    pub rotation_interval: i64,
    /// Seconds a new key is published in the JWKS before it signs anything.
    pub publish_ahead: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// Bytes. JSON bodies on the admin API.
    pub admin_body: usize,
    /// Bytes. Form bodies on the OAuth endpoints.
    pub form_body: usize,
}

/// Per-instance rate limits (GCRA, see docs/configuration.md#rate-limits). Each limit is a
/// sustained rate (`*_per_minute`; 0 turns that limit off) and a burst (requests allowed at once
/// on top of an idle key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// All limits on or off.
    pub enabled: bool,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed (a list, or one string with
    /// commas). The client is the right-most address that is not a trusted proxy.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
    /// Keys (addresses, clients, tenants, tokens) remembered per limit; idle keys are dropped
    /// every minute, and past this size the table restarts empty.
    pub max_keys: usize,
    /// Seconds between two log lines for the same anonymous failure (connection and code);
    /// the line carries the number suppressed since the last one.
    pub failure_log_interval: i64,
    /// `/oauth2/authorize`, per client IP.
    pub authorize_per_ip_per_minute: u32,
    pub authorize_per_ip_burst: u32,
    /// `/login/...` and `/sso/...` pages (the SAML ACS and the OIDC callback included), per client IP.
    pub pages_per_ip_per_minute: u32,
    pub pages_per_ip_burst: u32,
    /// `/oauth2/token`, per client IP.
    pub token_per_ip_per_minute: u32,
    pub token_per_ip_burst: u32,
    /// `/oauth2/token`, per `client_id` (HTTP Basic or form).
    pub token_per_client_per_minute: u32,
    pub token_per_client_burst: u32,
    /// The SAML ACS, per tenant.
    pub acs_per_tenant_per_minute: u32,
    pub acs_per_tenant_burst: u32,
    /// SCIM, per bearer token (so per tenant: tokens belong to one tenant).
    pub scim_per_token_per_minute: u32,
    pub scim_per_token_burst: u32,
    /// The admin API, per admin key.
    pub admin_per_key_per_minute: u32,
    pub admin_per_key_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: Vec::new(),
            max_keys: 100_000,
            failure_log_interval: 60,
            authorize_per_ip_per_minute: 1200,
            authorize_per_ip_burst: 600,
            pages_per_ip_per_minute: 3000,
            pages_per_ip_burst: 1200,
            token_per_ip_per_minute: 6000,
            token_per_ip_burst: 2000,
            token_per_client_per_minute: 6000,
            token_per_client_burst: 2000,
            acs_per_tenant_per_minute: 3000,
            acs_per_tenant_burst: 1000,
            scim_per_token_per_minute: 6000,
            scim_per_token_burst: 2000,
            admin_per_key_per_minute: 3000,
            admin_per_key_burst: 600,
        }
    }
}

impl RateLimitConfig {
    /// (name, per minute, burst) of every limit.
    pub fn rates(&self) -> [(&'static str, u32, u32); 7] {
        [
            ("authorize_per_ip", self.authorize_per_ip_per_minute, self.authorize_per_ip_burst),
            ("pages_per_ip", self.pages_per_ip_per_minute, self.pages_per_ip_burst),
            ("token_per_ip", self.token_per_ip_per_minute, self.token_per_ip_burst),
            ("token_per_client", self.token_per_client_per_minute, self.token_per_client_burst),
            ("acs_per_tenant", self.acs_per_tenant_per_minute, self.acs_per_tenant_burst),
            ("scim_per_token", self.scim_per_token_per_minute, self.scim_per_token_burst),
            ("admin_per_key", self.admin_per_key_per_minute, self.admin_per_key_burst),
        ]
    }
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        OneOrMany::Many(v) => v,
    })
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: "http://localhost:8080".into(),
            data_dir: PathBuf::from("fedgate-data"),
            database_url: None,
            master_key: None,
            dev_mode: false,
            allow_private_network: false,
            log_format: LogFormat::Text,
            background_tasks: true,
            database: DatabaseConfig::default(),
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            limits: LimitConfig::default(),
            webhooks: WebhookConfig::default(),
            events: EventConfig::default(),
            retention: RetentionConfig::default(),
            metrics: MetricsConfig::default(),
            saml: SamlServiceConfig::default(),
            dns: DnsConfig::default(),
            rate_limits: RateLimitConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: 3 }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 600,
            id_token_ttl: 3600,
            max_client_access_token_ttl: 3600,
            refresh_token_ttl: 30 * 86400,
            code_ttl: 60,
            session_ttl: 8 * 3600,
            login_ttl: 600,
            unrouted_login_ttl: 300,
            login_trace_retention: 30 * 86400,
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self { rotation_interval: 30 * 86400, publish_ahead: 86400 }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self { admin_body: 1024 * 1024, form_body: 16 * 1024 }
    }
}

/// The documented flat variables: (variable, key, kind).
const FLAT_VARS: &[(&str, &str, Kind)] = &[
    ("FEDGATE_LISTEN", "listen", Kind::Str),
    ("FEDGATE_ISSUER", "issuer", Kind::Str),
    ("FEDGATE_DATA_DIR", "data_dir", Kind::Str),
    ("FEDGATE_DATABASE_URL", "database_url", Kind::Str),
    ("FEDGATE_MASTER_KEY", "master_key", Kind::Str),
    ("FEDGATE_DEV_MODE", "dev_mode", Kind::Bool),
    ("FEDGATE_ALLOW_PRIVATE_NETWORK", "allow_private_network", Kind::Bool),
    ("FEDGATE_LOG_FORMAT", "log_format", Kind::Str),
    ("FEDGATE_METRICS_TOKEN", "metrics.token", Kind::Str),
];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
}

fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::Env { var: var.into(), message: format!("expected a boolean, got {v:?}") }),
    }
}

/// What the metadata of an environment layer is called; errors from it name the variable.
const ENV_LAYER: &str = "environment variable ";

/// One environment variable as a configuration layer: its value, as text, at a key path. The
/// text is not guessed into a type here (figment's own `Env` provider reads `12345678` as a
/// number, which a string setting then refuses); the setting's type decides when the merged
/// configuration is extracted ([`Figment::extract_lossy`]: text into numbers and booleans
/// where those are wanted, text kept as it is for strings).
struct EnvVar {
    var: String,
    key: String,
    value: figment::value::Value,
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("{ENV_LAYER}{}", self.var))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let dict = figment::util::nest(&self.key, self.value.clone())
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{}: empty key", self.var)))?;
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// The environment layers, in the order given: the documented flat variables and every
/// `FEDGATE__SECTION__KEY`; other variables are ignored.
fn env_layers(env: &[(String, String)]) -> Result<Vec<EnvVar>, ConfigError> {
    let mut layers = Vec::new();
    for (var, value) in env {
        if let Some((_, key, kind)) = FLAT_VARS.iter().find(|(v, _, _)| v == var) {
            let value = match kind {
                Kind::Str => figment::value::Value::from(value.clone()),
                Kind::Bool => figment::value::Value::from(parse_bool(var, value)?),
            };
            layers.push(EnvVar { var: var.clone(), key: (*key).to_string(), value });
        } else if let Some(rest) = var.strip_prefix("FEDGATE__") {
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::Env { var: var.clone(), message: "empty key segment".into() });
            }
            let value = figment::value::Value::from(value.clone());
            layers.push(EnvVar { var: var.clone(), key: parts.join("."), value });
        }
    }
    Ok(layers)
}

/// A figment error as one line per problem: `key: what is wrong`.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| match e.path.join(".") {
            key if key.is_empty() => e.kind.to_string(),
            key => format!("{key}: {}", e.kind),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Config {
    /// Loads defaults (the structs' `Default`), then the file (if given, or `fedgate.toml` in
    /// the working directory if it exists), then the environment; validates the result.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        use figment::providers::{Format, Toml};
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("fedgate.toml")).filter(|p| p.exists()),
        };
        let mut figment = Figment::new();
        if let Some(path) = path {
            let shown = path.display().to_string();
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
            // The file alone, strictly typed (TOML has types: no text for numbers), so that its
            // mistakes and unknown keys are reported with the file's name.
            let file = Figment::from(Toml::string(&text));
            file.extract::<Config>().map_err(|e| ConfigError::Parse { path: shown.clone(), message: describe(e) })?;
            figment = file;
        }
        for layer in env_layers(env)? {
            figment = figment.merge(layer);
        }
        let config: Config = figment.extract_lossy().map_err(|e| {
            let var = e.metadata.as_ref().and_then(|m| m.name.strip_prefix(ENV_LAYER)).map(str::to_string);
            match var {
                Some(var) => ConfigError::Env { var, message: describe(e) },
                None => ConfigError::Invalid(describe(e)),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError::Invalid(format!("issuer {:?} is not a URL: {e}", self.issuer)))?;
        if issuer.query().is_some() || issuer.fragment().is_some() || self.issuer.ends_with('/') {
            return Err(ConfigError::Invalid("issuer must have no query, fragment or trailing slash".into()));
        }
        let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match issuer.scheme() {
            "https" => {}
            "http" if loopback || self.dev_mode => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "issuer must use https (http is allowed only for localhost or in dev mode)".into(),
                ))
            }
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!("listen {:?} is not host:port", self.listen)));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.max_client_access_token_ttl", t.max_client_access_token_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.session_ttl", t.session_ttl),
            ("tokens.login_ttl", t.login_ttl),
            ("tokens.unrouted_login_ttl", t.unrouted_login_ttl),
            ("rate_limits.failure_log_interval", self.rate_limits.failure_log_interval),
            ("tokens.login_trace_retention", t.login_trace_retention),
            ("keys.rotation_interval", self.keys.rotation_interval),
            ("webhooks.lease_secs", self.webhooks.lease_secs),
            ("webhooks.retry_for", self.webhooks.retry_for),
            ("webhooks.disable_after", self.webhooks.disable_after),
            ("events.retention", self.events.retention),
            ("events.audit_retention", self.events.audit_retention),
            ("retention.deliveries", self.retention.deliveries),
            ("retention.scim_requests", self.retention.scim_requests),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        if !(60..=86400).contains(&t.max_client_access_token_ttl) {
            return Err(ConfigError::Invalid(
                "tokens.max_client_access_token_ttl must be between 60 and 86400 seconds".into(),
            ));
        }
        if t.code_ttl > 600 {
            return Err(ConfigError::Invalid("tokens.code_ttl must be at most 600 seconds".into()));
        }
        if t.unrouted_login_ttl > t.login_ttl {
            return Err(ConfigError::Invalid("tokens.unrouted_login_ttl must not exceed tokens.login_ttl".into()));
        }
        let rl = &self.rate_limits;
        for (name, per_minute, burst) in rl.rates() {
            if per_minute > 0 && burst == 0 {
                return Err(ConfigError::Invalid(format!(
                    "rate_limits.{name}_burst must be at least 1 (or set {name}_per_minute = 0 to turn the limit off)"
                )));
            }
        }
        if rl.max_keys == 0 {
            return Err(ConfigError::Invalid("rate_limits.max_keys must be positive".into()));
        }
        for p in &rl.trusted_proxies {
            if crate::net::Cidr::parse(p).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "rate_limits.trusted_proxies: {p:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"
                )));
            }
        }
        if self.keys.publish_ahead < 0 {
            return Err(ConfigError::Invalid("keys.publish_ahead must not be negative".into()));
        }
        let tm = &self.telemetry;
        if !(0.0..=1.0).contains(&tm.sample_ratio) {
            return Err(ConfigError::Invalid("telemetry.sample_ratio must be between 0.0 and 1.0".into()));
        }
        if tm.service_name.trim().is_empty() {
            return Err(ConfigError::Invalid("telemetry.service_name must not be empty".into()));
        }
        if let Some(e) = &tm.otlp_endpoint {
            match url::Url::parse(e) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "telemetry.otlp_endpoint {e:?} is not an http(s) URL (e.g. http://otel-collector:4318)"
                    )))
                }
            }
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid("database_url must be sqlite:... or postgres://...".into()));
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}/fedgate.db?mode=rwc", self.data_dir.display()),
        }
    }

    /// Whether cookies must carry `Secure` (https issuer).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The longest lifetime of anything a signing key signs (a key stays published this long
    /// after it stops signing).
    pub fn max_signed_lifetime(&self) -> i64 {
        self.tokens.access_token_ttl.max(self.tokens.id_token_ttl).max(self.tokens.max_client_access_token_ttl) + 300
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn telemetry_is_off_by_default_and_set_by_the_environment() {
        let c = Config::load(None, &[]).unwrap();
        assert!(c.telemetry.otlp_endpoint.is_none());
        assert_eq!(c.telemetry.service_name, "fedgate");
        let c = Config::load(
            None,
            &env(&[
                ("FEDGATE__TELEMETRY__OTLP_ENDPOINT", "http://collector:4318"),
                ("FEDGATE__TELEMETRY__SAMPLE_RATIO", "0.25"),
                ("FEDGATE__TELEMETRY__SERVICE_NAME", "fedgate-eu"),
            ]),
        )
        .unwrap();
        assert_eq!(c.telemetry.otlp_endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(c.telemetry.sample_ratio, 0.25);
        assert_eq!(c.telemetry.service_name, "fedgate-eu");
        for (k, v) in [
            ("FEDGATE__TELEMETRY__SAMPLE_RATIO", "1.5"),
            ("FEDGATE__TELEMETRY__OTLP_ENDPOINT", "collector:4318"),
            ("FEDGATE__TELEMETRY__SERVICE_NAME", " "),
        ] {
            let e = Config::load(None, &env(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains("telemetry."), "{k}={v}: {e}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn env_overrides_and_nested_keys() {
        let c = Config::load(
            None,
            &env(&[
                ("FEDGATE_LISTEN", "127.0.0.1:9999"),
                ("FEDGATE_DEV_MODE", "1"),
                ("FEDGATE__TOKENS__ACCESS_TOKEN_TTL", "120"),
                ("FEDGATE_SOMETHING_ELSE", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert!(c.dev_mode);
        assert_eq!(c.tokens.access_token_ttl, 120);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::load(None, &env(&[("FEDGATE__TOKENS__ACCESS_TTL", "1")])).unwrap_err();
        assert!(e.to_string().contains("access_ttl"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let e = Config::load(Some(&p), &[]).unwrap_err();
        assert!(e.to_string().contains("listen_port"), "{e}");
    }

    #[test]
    fn insecure_issuer_rejected() {
        let e = Config::load(None, &env(&[("FEDGATE_ISSUER", "http://auth.example.com")])).unwrap_err();
        assert!(e.to_string().contains("https"));
        assert!(Config::load(None, &env(&[("FEDGATE_ISSUER", "https://auth.example.com/")])).is_err());
    }

    #[test]
    fn rate_limit_settings() {
        let c = Config::load(
            None,
            &env(&[
                ("FEDGATE__RATE_LIMITS__TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
                ("FEDGATE__RATE_LIMITS__SCIM_PER_TOKEN_PER_MINUTE", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.rate_limits.trusted_proxies, vec!["10.0.0.0/8".to_string(), "127.0.0.1".to_string()]);
        assert_eq!(c.rate_limits.scim_per_token_per_minute, 60);
        let e = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__TRUSTED_PROXIES", "10.0.0.0/33")])).unwrap_err();
        assert!(e.to_string().contains("trusted_proxies"), "{e}");
        let e = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__ADMIN_PER_KEY_BURST", "0")])).unwrap_err();
        assert!(e.to_string().contains("admin_per_key_burst"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        std::fs::write(&p, "[rate_limits]\ntrusted_proxies = [\"::1\", \"192.168.0.0/16\"]\n").unwrap();
        assert_eq!(Config::load(Some(&p), &[]).unwrap().rate_limits.trusted_proxies.len(), 2);
    }

    #[test]
    fn master_key_is_redacted() {
        let c = Config::load(None, &env(&[("FEDGATE_MASTER_KEY", "c2VjcmV0")])).unwrap();
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fedgate.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    /// The bug this loader fixed: a numeric-looking value for a string setting failed to load
    /// ("invalid type: integer, expected a string"). A variable's text is the string.
    #[test]
    fn numeric_looking_values_for_string_settings() {
        let c = Config::load(
            None,
            &env(&[
                ("FEDGATE__METRICS__TOKEN", "12345678"),
                ("FEDGATE__DATA_DIR", "2024"),
                ("FEDGATE__DATABASE_URL", "sqlite://1.50?mode=rwc"),
            ]),
        )
        .unwrap();
        assert_eq!(c.metrics.token, Some(SecretString("12345678".into())));
        assert_eq!(c.data_dir, PathBuf::from("2024"));
        // Text stays exactly as written: not re-printed from a number, not unquoted, not a
        // boolean or a list.
        for v in ["1.50", "007", "-3", "true", "\"quoted\"", "[a, b]", "{k = 1}", "1e3"] {
            let c = Config::load(None, &env(&[("FEDGATE__METRICS__TOKEN", v)])).unwrap();
            assert_eq!(c.metrics.token.unwrap().0, v);
            let c = Config::load(None, &env(&[("FEDGATE_METRICS_TOKEN", v)])).unwrap();
            assert_eq!(c.metrics.token.unwrap().0, v);
        }
        let c = Config::load(None, &env(&[("FEDGATE__MASTER_KEY", "12345678")])).unwrap();
        assert_eq!(c.master_key.unwrap().0, "12345678");
        // In the file, TOML's types apply: a number where text is wanted is still a mistake
        // (quote it), reported with the file's name and the key.
        let (_d, p) = file("[metrics]\ntoken = 12345678\n");
        let e = Config::load(Some(&p), &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }) && e.to_string().contains("metrics.token"), "{e}");
        let (_d, p) = file("[metrics]\ntoken = \"12345678\"\n");
        assert_eq!(Config::load(Some(&p), &[]).unwrap().metrics.token.unwrap().0, "12345678");
    }

    #[test]
    fn booleans() {
        for (v, want) in [("1", true), ("true", true), ("yes", true), ("ON", true), (" on ", true)] {
            assert_eq!(Config::load(None, &env(&[("FEDGATE_DEV_MODE", v)])).unwrap().dev_mode, want, "{v:?}");
        }
        for v in ["0", "false", "no", "off", ""] {
            assert!(!Config::load(None, &env(&[("FEDGATE_DEV_MODE", v)])).unwrap().dev_mode, "{v:?}");
        }
        let e = Config::load(None, &env(&[("FEDGATE_ALLOW_PRIVATE_NETWORK", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("FEDGATE_ALLOW_PRIVATE_NETWORK"), "{e}");
        for (v, want) in [("false", false), ("true", true), ("0", false), ("yes", true)] {
            let c = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__ENABLED", v)])).unwrap();
            assert_eq!(c.rate_limits.enabled, want, "{v:?}");
        }
        let c = Config::load(None, &env(&[("FEDGATE__BACKGROUND_TASKS", "false")])).unwrap();
        assert!(!c.background_tasks);
        let e = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__ENABLED", "sometimes")])).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Env { var, .. } if var == "FEDGATE__RATE_LIMITS__ENABLED")
                && e.to_string().contains("rate_limits.enabled"),
            "{e}"
        );
        let (_d, p) = file("dev_mode = true\n[rate_limits]\nenabled = false\n");
        let c = Config::load(Some(&p), &[]).unwrap();
        assert!(c.dev_mode && !c.rate_limits.enabled);
    }

    #[test]
    fn integers() {
        let c = Config::load(
            None,
            &env(&[
                ("FEDGATE__DATABASE__MAX_CONNECTIONS", "4"),
                ("FEDGATE__LIMITS__ADMIN_BODY", "2048"),
                ("FEDGATE__SAML__DECRYPTION_FAILURE_FLOOR_MS", "0"),
                ("FEDGATE__KEYS__PUBLISH_AHEAD", "0"),
            ]),
        )
        .unwrap();
        assert_eq!((c.database.max_connections, c.limits.admin_body), (4, 2048));
        assert_eq!((c.saml.decryption_failure_floor_ms, c.keys.publish_ahead), (0, 0));
        for (var, v) in [
            ("FEDGATE__DATABASE__MAX_CONNECTIONS", "many"),
            ("FEDGATE__DATABASE__MAX_CONNECTIONS", "-1"),
            ("FEDGATE__TOKENS__ACCESS_TOKEN_TTL", "1.5"),
            ("FEDGATE__WEBHOOKS__POLL_INTERVAL_MS", "99999999999999999999999"),
        ] {
            let e = Config::load(None, &env(&[(var, v)])).unwrap_err();
            assert!(matches!(&e, ConfigError::Env { var: named, .. } if named == var), "{var}={v}: {e}");
        }
        // Validation still applies to what the environment set.
        let e = Config::load(None, &env(&[("FEDGATE__TOKENS__ACCESS_TOKEN_TTL", "-5")])).unwrap_err();
        assert!(e.to_string().contains("tokens.access_token_ttl must be positive"), "{e}");
        let (_d, p) = file("[tokens]\naccess_token_ttl = \"600\"\n");
        assert!(matches!(Config::load(Some(&p), &[]).unwrap_err(), ConfigError::Parse { .. }));
    }

    #[test]
    fn lists_from_toml_or_a_comma_separated_string() {
        let (_d, p) = file("[rate_limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n");
        assert_eq!(Config::load(Some(&p), &[]).unwrap().rate_limits.trusted_proxies, ["10.0.0.0/8", "::1"]);
        let (_d, p) = file("[rate_limits]\ntrusted_proxies = \"10.0.0.0/8, ::1,\"\n");
        assert_eq!(Config::load(Some(&p), &[]).unwrap().rate_limits.trusted_proxies, ["10.0.0.0/8", "::1"]);
        let c = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__TRUSTED_PROXIES", "192.168.1.5")])).unwrap();
        assert_eq!(c.rate_limits.trusted_proxies, ["192.168.1.5"]);
        let c = Config::load(None, &env(&[("FEDGATE__RATE_LIMITS__TRUSTED_PROXIES", "")])).unwrap();
        assert!(c.rate_limits.trusted_proxies.is_empty());
    }

    #[test]
    fn environment_overrides_the_file_and_later_layers_win() {
        let (_d, p) = file("listen = \"127.0.0.1:1111\"\n[tokens]\naccess_token_ttl = 300\nid_token_ttl = 900\n");
        let c = Config::load(
            Some(&p),
            &env(&[("FEDGATE_LISTEN", "127.0.0.1:2222"), ("FEDGATE__TOKENS__ACCESS_TOKEN_TTL", "120")]),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:2222");
        assert_eq!((c.tokens.access_token_ttl, c.tokens.id_token_ttl), (120, 900), "sections merge key by key");
        assert_eq!(c.tokens.code_ttl, 60, "defaults fill the rest");
        let e = Config::load(Some(&PathBuf::from("/nonexistent/fedgate.toml")), &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        let (_d, p) = file("listen = \"127.0.0.1:1\"\n[tokens\n");
        assert!(matches!(Config::load(Some(&p), &[]).unwrap_err(), ConfigError::Parse { .. }));
        let e = Config::load(None, &env(&[("FEDGATE__TOKENS____X", "1")])).unwrap_err();
        assert!(e.to_string().contains("empty key segment"), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_key_and_where_it_came_from() {
        let e = Config::load(None, &env(&[("FEDGATE__TOKENS__ACCESS_TTL", "1")])).unwrap_err();
        assert!(matches!(&e, ConfigError::Env { var, .. } if var == "FEDGATE__TOKENS__ACCESS_TTL"), "{e}");
        assert!(e.to_string().contains("unknown field") && e.to_string().contains("`access_ttl`"), "{e}");
        let e = Config::load(None, &env(&[("FEDGATE__NO_SUCH_SECTION__X", "1")])).unwrap_err();
        assert!(e.to_string().contains("no_such_section"), "{e}");
        let (_d, p) = file("[saml]\nverify_worker = 2\n");
        let e = Config::load(Some(&p), &[]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&p.display().to_string()) && text.contains("`verify_worker`"), "{text}");
        // Other FEDGATE_ variables are not settings.
        assert!(Config::load(None, &env(&[("FEDGATE_LOG", "debug"), ("FEDGATE_X", "1")])).is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::load(
            None,
            &env(&[("FEDGATE_MASTER_KEY", "bWFzdGVyLWtleQ"), ("FEDGATE__METRICS__TOKEN", "metrics-token-9")]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("bWFzdGVyLWtleQ") && !shown.contains("metrics-token-9"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn every_documented_setting_loads_from_its_variable() {
        let doc = include_str!("../docs/configuration.md");
        let mut vars = 0;
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(var) = cells.get(2).and_then(|c| c.split('`').nth(1)) else { continue };
            if !var.starts_with("FEDGATE_") {
                continue;
            }
            vars += 1;
            let e = Config::load(None, &env(&[(var, "not a valid value for anything 🙂")]));
            // Strings load; numbers, booleans and validated strings refuse, naming the variable
            // or the setting, never "unknown field".
            if let Err(e) = e {
                assert!(!e.to_string().contains("unknown field"), "{var}: {e}");
            }
        }
        assert!(vars >= 40, "{vars} variables in docs/configuration.md");
    }
}
