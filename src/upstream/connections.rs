//! Connection configuration: a closed, tagged set of types, validated at the boundary and
//! opened into connectors. Secrets (none yet for `dev`) are encrypted at rest and never returned.
use super::dev::{DevConfig, DevConnector};
use super::oidc::connector::OidcConnector;
use super::oidc::OidcConfig;
use super::registry::Opened;
use super::UpstreamCtx;
use super::UpstreamError;
use crate::claims::oidc::Preset;
use crate::error_code::ErrorCode;
use crate::store::entities::connection;
use crate::util::rfc3339;
use crate::validation::Invalid;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    Dev,
    Oidc,
    Saml,
    /// GitHub sign-in (OAuth 2.0 and the REST API; no OpenID Connect).
    Github,
}

impl ConnectionType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dev" => Some(Self::Dev),
            "oidc" => Some(Self::Oidc),
            "saml" => Some(Self::Saml),
            "github" => Some(Self::Github),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Oidc => "oidc",
            Self::Saml => "saml",
            Self::Github => "github",
        }
    }
}

/// A validated, type-specific configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionConfig {
    Dev(DevConfig),
    Oidc(Box<OidcConfig>),
    Saml(Box<super::saml::SamlConfig>),
    Github(Box<super::github::GithubConfig>),
}

/// The write-only secret fields of a connection type (stored sealed in `secrets_enc`).
pub fn secret_fields(kind: ConnectionType) -> &'static [&'static str] {
    match kind {
        ConnectionType::Oidc | ConnectionType::Github => &["client_secret"],
        _ => &[],
    }
}

/// The associated data binding a connection's sealed secrets to its id.
pub fn secrets_aad(connection_id: &str) -> String {
    format!("connection-secrets:{connection_id}")
}

/// Removes the type's secret fields from a request body. `Ok(None)`: none was sent.
pub fn take_secrets(
    kind: ConnectionType,
    fields: &mut Map<String, Value>,
) -> Result<Option<Map<String, Value>>, Invalid> {
    let mut out = Map::new();
    for f in secret_fields(kind) {
        match fields.remove(*f) {
            None => {}
            Some(Value::String(v)) if !v.is_empty() && v.len() <= 4096 => {
                out.insert((*f).to_string(), Value::String(v));
            }
            Some(Value::Null) => {
                out.insert((*f).to_string(), Value::Null);
            }
            Some(_) => {
                return Err(Invalid::field(f, ErrorCode::InvalidSecret, format!("{f} must be a non-empty string")))
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Seals secrets for the `secrets_enc` column (`None` when nothing is left).
pub fn seal_secrets(ctx: &UpstreamCtx, connection_id: &str, secrets: &Map<String, Value>) -> Option<String> {
    let kept: Map<String, Value> =
        secrets.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    if kept.is_empty() {
        return None;
    }
    let plain = Value::Object(kept).to_string();
    Some(ctx.master.seal(plain.as_bytes(), &secrets_aad(connection_id), &*ctx.rng))
}

impl ConnectionConfig {
    pub fn kind(&self) -> ConnectionType {
        match self {
            Self::Dev(_) => ConnectionType::Dev,
            Self::Oidc(_) => ConnectionType::Oidc,
            Self::Saml(_) => ConnectionType::Saml,
            Self::Github(_) => ConnectionType::Github,
        }
    }

    /// Parses the type-specific fields of a request body (everything but `type`, `name`,
    /// `enabled`), refusing unknown fields by name.
    pub fn from_fields(kind: ConnectionType, fields: Map<String, Value>, dev_mode: bool) -> Result<Self, Invalid> {
        match kind {
            ConnectionType::Dev => {
                if !dev_mode {
                    return Err(Invalid::field(
                        "type",
                        ErrorCode::DevModeDisabled,
                        "dev connections need dev mode (dev_mode = true or FEDGATE_DEV_MODE=1); never enable it in production",
                    ));
                }
                let c: DevConfig = serde_json::from_value(Value::Object(fields))
                    .map_err(|e| Invalid::field("config", ErrorCode::InvalidConfig, e.to_string()))?;
                if let Some(e) = &c.default_email {
                    if crate::claims::normalize_email(e).is_none() {
                        return Err(Invalid::field(
                            "default_email",
                            ErrorCode::InvalidEmail,
                            "default_email is not an email address",
                        ));
                    }
                }
                if c.groups.len() > 100 || c.groups.iter().any(|g| g.trim().is_empty() || g.len() > 256) {
                    return Err(Invalid::field(
                        "groups",
                        ErrorCode::InvalidGroups,
                        "groups must be at most 100 non-empty names",
                    ));
                }
                if c.amr.len() > 10 || c.amr.iter().any(|a| a.trim().is_empty() || a.len() > 32) {
                    return Err(Invalid::field("amr", ErrorCode::InvalidConfig, "amr must be at most 10 short values"));
                }
                Ok(Self::Dev(c))
            }
            ConnectionType::Oidc => {
                let mut fields = fields;
                // Social presets know their provider's issuer.
                if !fields.contains_key("issuer") {
                    let preset = fields.get("preset").cloned().and_then(|p| serde_json::from_value::<Preset>(p).ok());
                    if let Some(issuer) = preset.as_ref().and_then(Preset::default_issuer) {
                        fields.insert("issuer".into(), Value::String(issuer.into()));
                    }
                }
                if !fields.contains_key("scopes") && fields.get("preset") == Some(&Value::String("apple".into())) {
                    // Apple knows `name` and `email`, not `profile`.
                    fields.insert("scopes".into(), serde_json::json!(["openid", "name", "email"]));
                }
                let c: OidcConfig = serde_json::from_value(Value::Object(fields))
                    .map_err(|e| Invalid::field("config", ErrorCode::InvalidConfig, e.to_string()))?;
                c.validate(dev_mode)?;
                Ok(Self::Oidc(Box::new(c)))
            }
            ConnectionType::Github => {
                let c: super::github::GithubConfig = serde_json::from_value(Value::Object(fields))
                    .map_err(|e| Invalid::field("config", ErrorCode::InvalidConfig, e.to_string()))?;
                c.validate(dev_mode)?;
                Ok(Self::Github(Box::new(c)))
            }
            // SAML input needs metadata parsing (and maybe a fetch): see `saml::prepare`.
            ConnectionType::Saml => serde_json::from_value(Value::Object(fields))
                .map(|c| Self::Saml(Box::new(c)))
                .map_err(|e| Invalid::field("config", ErrorCode::InvalidConfig, e.to_string())),
        }
    }

    /// The connection's MFA settings: its override, whether the operator vouches that the IdP
    /// enforces MFA, and what its preset asks for and reads as MFA.
    pub fn mfa(&self) -> (crate::claims::mfa::MfaOverride, bool, crate::claims::mfa::VendorMfa) {
        use crate::claims::mfa::{oidc_vendor, saml_vendor, VendorMfa};
        match self {
            // The dev page asserts its configured amr: a signal, never an acr.
            Self::Dev(c) => (c.mfa, false, VendorMfa { has_signal: true, ..Default::default() }),
            Self::Oidc(c) => (c.mfa, c.mfa_enforced_by_idp, oidc_vendor(c.preset, &c.mfa_acr_values)),
            Self::Saml(c) => (c.mfa, c.mfa_enforced_by_idp, saml_vendor(c.preset, &c.mfa_authn_contexts)),
            // GitHub's OAuth answers say nothing about how the person signed in: no signal, so
            // a login that must show MFA fails closed.
            Self::Github(_) => (crate::claims::mfa::MfaOverride::Inherit, false, VendorMfa::default()),
        }
    }

    /// The preset's name (for fixes), `dev` for the dev connector.
    pub fn preset_name(&self) -> String {
        let name = match self {
            Self::Dev(_) => return "dev".into(),
            Self::Oidc(c) => serde_json::to_value(c.preset),
            Self::Saml(c) => serde_json::to_value(c.preset),
            Self::Github(_) => return "github".into(),
        };
        name.ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    pub fn to_fields(&self) -> Map<String, Value> {
        let v = match self {
            Self::Dev(c) => serde_json::to_value(c),
            Self::Oidc(c) => serde_json::to_value(c),
            Self::Saml(c) => serde_json::to_value(c),
            Self::Github(c) => serde_json::to_value(c),
        };
        match v {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    pub fn from_row(row: &connection::Model) -> Result<Self, String> {
        match row.conn_type.as_str() {
            "dev" => serde_json::from_str(&row.config).map(Self::Dev).map_err(|e| e.to_string()),
            "oidc" => serde_json::from_str(&row.config).map(|c| Self::Oidc(Box::new(c))).map_err(|e| e.to_string()),
            "saml" => serde_json::from_str(&row.config).map(|c| Self::Saml(Box::new(c))).map_err(|e| e.to_string()),
            "github" => serde_json::from_str(&row.config).map(|c| Self::Github(Box::new(c))).map_err(|e| e.to_string()),
            other => Err(format!("unknown connection type {other}")),
        }
    }

    /// Opens the configuration of `row` into a connector (decrypting its secrets).
    /// Use [`super::registry::Connectors`], which caches the result per version.
    pub fn open(&self, ctx: &Arc<UpstreamCtx>, row: &connection::Model) -> Result<Opened, UpstreamError> {
        match self {
            Self::Dev(c) => Ok(Opened::Dev(Arc::new(DevConnector { config: c.clone(), dev_mode: ctx.dev_mode }))),
            Self::Oidc(c) => {
                let secrets = open_secrets(ctx, row)?;
                Ok(Opened::Oidc(Arc::new(OidcConnector {
                    config: (**c).clone(),
                    client_secret: secrets.get("client_secret").and_then(Value::as_str).map(str::to_string),
                    connection_id: row.id.clone(),
                    version: row.version,
                    ctx: ctx.clone(),
                    clock: ctx.clock.clone(),
                    rng: ctx.rng.clone(),
                })))
            }
            Self::Github(c) => {
                let secrets = open_secrets(ctx, row)?;
                Ok(Opened::Github(Arc::new(super::github::GithubConnector {
                    config: (**c).clone(),
                    client_secret: secrets.get("client_secret").and_then(Value::as_str).map(str::to_string),
                    version: row.version,
                    ctx: ctx.clone(),
                })))
            }
            Self::Saml(c) => Ok(Opened::Saml(Arc::new(super::saml::open(ctx, row, (**c).clone())?))),
        }
    }
}

/// Decrypts a connection's secrets (an empty object when it has none).
pub fn open_secrets(ctx: &UpstreamCtx, row: &connection::Model) -> Result<Map<String, Value>, UpstreamError> {
    let Some(sealed) = &row.secrets_enc else {
        return Ok(Map::new());
    };
    let plain = ctx.master.open(sealed, &secrets_aad(&row.id)).map_err(|e| {
        tracing::error!(connection = %row.id, error = %e, "cannot decrypt connection secrets");
        UpstreamError::Misconfigured("the connection's secrets cannot be decrypted (wrong master key?)".into())
    })?;
    match serde_json::from_slice(&plain) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(UpstreamError::Misconfigured("the connection's secrets are corrupt".into())),
    }
}

/// A connection as the admin API shows it: common fields plus the type's own fields.
pub fn view(row: &connection::Model, issuer: &str, now: i64) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), row.id.clone().into());
    m.insert("tenant_id".into(), row.tenant_id.clone().into());
    m.insert("type".into(), row.conn_type.clone().into());
    m.insert("name".into(), row.name.clone().into());
    m.insert("enabled".into(), row.enabled.into());
    m.insert("version".into(), row.version.into());
    if let Some(kind) = ConnectionType::parse(&row.conn_type) {
        for f in secret_fields(kind) {
            // Secrets are write-only: only their presence is shown.
            m.insert(format!("has_{f}"), row.secrets_enc.is_some().into());
        }
        if kind == ConnectionType::Saml {
            m.insert("has_sp_private_key".into(), row.secrets_enc.is_some().into());
        }
    }
    m.insert("created_at".into(), rfc3339(row.created_at).into());
    m.insert("updated_at".into(), rfc3339(row.updated_at).into());
    if let Ok(ConnectionConfig::Saml(c)) = ConnectionConfig::from_row(row) {
        // Public SAML values (SP entity ID, ACS, certificates) and warnings, computed.
        for (k, v) in c.view_fields(issuer, &row.id, now) {
            m.entry(k).or_insert(v);
        }
    } else if let Ok(cfg) = ConnectionConfig::from_row(row) {
        for (k, v) in cfg.to_fields() {
            m.entry(k).or_insert(v);
        }
    }
    Value::Object(m)
}

/// The social provider a connection signs in with (a social preset, or GitHub): what the login
/// pages offer as "Continue with ...". Enterprise connections (SAML, OIDC with another preset,
/// the dev connector) are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Social {
    Google,
    Microsoft,
    Apple,
    Github,
}

impl Social {
    pub fn of(row: &connection::Model) -> Option<Social> {
        match row.conn_type.as_str() {
            "github" => Some(Social::Github),
            "oidc" => {
                let config: Value = serde_json::from_str(&row.config).ok()?;
                match serde_json::from_value::<Preset>(config.get("preset")?.clone()).ok()? {
                    Preset::GoogleAny => Some(Social::Google),
                    Preset::Microsoft => Some(Social::Microsoft),
                    Preset::Apple => Some(Social::Apple),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A stable key (CSS class, tests).
    pub fn key(self) -> &'static str {
        match self {
            Social::Google => "google",
            Social::Microsoft => "microsoft",
            Social::Apple => "apple",
            Social::Github => "github",
        }
    }

    /// The provider's name as it presents itself.
    pub fn label(self) -> &'static str {
        match self {
            Social::Google => "Google",
            Social::Microsoft => "Microsoft",
            Social::Apple => "Apple",
            Social::Github => "GitHub",
        }
    }
}
