//! Opened connectors, cached per (connection, version), after Dex's `connectors.Cache`: a
//! connection row is parsed, its secrets decrypted and its keys opened once, not on every
//! request; any change to the row bumps its version and the next request opens it afresh.
use super::connections::ConnectionConfig;
use super::dev::DevConnector;
use super::oidc::connector::OidcConnector;
use super::saml::SamlConnector;
use super::{Connector, UpstreamCtx, UpstreamError};
use crate::store::entities::connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An opened connection.
#[derive(Clone)]
pub enum Opened {
    Dev(Arc<DevConnector>),
    Oidc(Arc<OidcConnector>),
    Github(Arc<super::github::GithubConnector>),
    Saml(Arc<SamlConnector>),
}

impl Opened {
    /// The connection behind the common trait.
    pub fn connector(&self) -> &dyn Connector {
        match self {
            Opened::Dev(c) => c.as_ref(),
            Opened::Oidc(c) => c.as_ref(),
            Opened::Github(c) => c.as_ref(),
            Opened::Saml(c) => c.as_ref(),
        }
    }

    /// The SAML connector (its ACS has steps the trait does not cover: the correlation of an
    /// answer with its login, and IdP-initiated sign-in).
    pub fn saml(&self) -> Option<&Arc<SamlConnector>> {
        match self {
            Opened::Saml(c) => Some(c),
            _ => None,
        }
    }
}

/// The cache. At most [`Connectors::MAX`] entries; past that it starts afresh.
pub struct Connectors {
    ctx: Arc<UpstreamCtx>,
    cache: Mutex<HashMap<String, (i64, Opened)>>,
}

impl Connectors {
    pub const MAX: usize = 10_000;

    pub fn new(ctx: Arc<UpstreamCtx>) -> Self {
        Self { ctx, cache: Mutex::new(HashMap::new()) }
    }

    /// The shared upstream context (HTTP client, master key, clock...).
    pub fn ctx(&self) -> &Arc<UpstreamCtx> {
        &self.ctx
    }

    /// The opened connector of `row`, from the cache when the row's version is the cached one.
    pub fn open(&self, row: &connection::Model) -> Result<Opened, UpstreamError> {
        if let Some((v, c)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&row.id) {
            if *v == row.version {
                return Ok(c.clone());
            }
        }
        let config = ConnectionConfig::from_row(row).map_err(|e| {
            tracing::error!(connection = %row.id, error = %e, "stored connection config is corrupt");
            UpstreamError::Misconfigured("the stored configuration cannot be read".into())
        })?;
        let opened = config.open(&self.ctx, row)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= Self::MAX {
            cache.clear();
        }
        cache.insert(row.id.clone(), (row.version, opened.clone()));
        Ok(opened)
    }
}
