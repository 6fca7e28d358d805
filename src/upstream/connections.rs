//! Connection configuration: a closed, tagged set of types, validated at the boundary and
//! opened into connectors. Secrets (none yet for `dev`) are encrypted at rest and never returned.
use super::dev::{DevConfig, DevConnector};
use super::Connector;
use crate::error::ApiError;
use crate::store::entities::connection;
use crate::util::rfc3339;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    Dev,
    Oidc,
    Saml,
}

impl ConnectionType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dev" => Some(Self::Dev),
            "oidc" => Some(Self::Oidc),
            "saml" => Some(Self::Saml),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Oidc => "oidc",
            Self::Saml => "saml",
        }
    }
}

/// A validated, type-specific configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionConfig {
    Dev(DevConfig),
}

impl ConnectionConfig {
    pub fn kind(&self) -> ConnectionType {
        match self {
            Self::Dev(_) => ConnectionType::Dev,
        }
    }

    /// Parses the type-specific fields of a request body (everything but `type`, `name`,
    /// `enabled`), refusing unknown fields by name.
    pub fn from_fields(kind: ConnectionType, fields: Map<String, Value>, dev_mode: bool) -> Result<Self, ApiError> {
        match kind {
            ConnectionType::Dev => {
                if !dev_mode {
                    return Err(ApiError::invalid(
                        "type",
                        "dev_mode_disabled",
                        "dev connections need dev mode (dev_mode = true or FEDGATE_DEV_MODE=1); never enable it in production",
                    ));
                }
                let c: DevConfig = serde_json::from_value(Value::Object(fields))
                    .map_err(|e| ApiError::invalid("config", "invalid_config", e.to_string()))?;
                if let Some(e) = &c.default_email {
                    if crate::claims::normalize_email(e).is_none() {
                        return Err(ApiError::invalid(
                            "default_email",
                            "invalid_email",
                            "default_email is not an email address",
                        ));
                    }
                }
                if c.groups.len() > 100 || c.groups.iter().any(|g| g.trim().is_empty() || g.len() > 256) {
                    return Err(ApiError::invalid(
                        "groups",
                        "invalid_groups",
                        "groups must be at most 100 non-empty names",
                    ));
                }
                Ok(Self::Dev(c))
            }
            ConnectionType::Oidc | ConnectionType::Saml => Err(ApiError::invalid(
                "type",
                "unsupported_connection_type",
                format!("{} connections are not available in this version yet", kind.as_str()),
            )),
        }
    }

    pub fn to_fields(&self) -> Map<String, Value> {
        let v = match self {
            Self::Dev(c) => serde_json::to_value(c),
        };
        match v {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    pub fn from_row(row: &connection::Model) -> Result<Self, String> {
        match row.conn_type.as_str() {
            "dev" => serde_json::from_str(&row.config).map(Self::Dev).map_err(|e| e.to_string()),
            other => Err(format!("unknown connection type {other}")),
        }
    }

    /// Opens the configuration into a connector.
    pub fn open(&self, dev_mode: bool) -> Box<dyn Connector> {
        match self {
            Self::Dev(c) => Box::new(DevConnector { config: c.clone(), dev_mode }),
        }
    }
}

/// A connection as the admin API shows it: common fields plus the type's own fields.
pub fn view(row: &connection::Model) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), row.id.clone().into());
    m.insert("tenant_id".into(), row.tenant_id.clone().into());
    m.insert("type".into(), row.conn_type.clone().into());
    m.insert("name".into(), row.name.clone().into());
    m.insert("enabled".into(), row.enabled.into());
    m.insert("version".into(), row.version.into());
    m.insert("created_at".into(), rfc3339(row.created_at).into());
    m.insert("updated_at".into(), rfc3339(row.updated_at).into());
    if let Ok(cfg) = ConnectionConfig::from_row(row) {
        for (k, v) in cfg.to_fields() {
            m.entry(k).or_insert(v);
        }
    }
    Value::Object(m)
}
