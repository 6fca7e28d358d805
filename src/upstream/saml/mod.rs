//! SAML 2.0 connections: fedgate is the service provider of each connection (its own entity ID,
//! ACS URL and key pair). samael (with xmlsec) verifies signatures; everything it does not do —
//! metadata without certificates, SHA-1, required Audience, strict InResponseTo, replay,
//! decryption with any AES mode, 128-bit request IDs, escaped forms — is done here.
//!
//! The protocol core (the XML gate, response validation, decryption, metadata) is the crate
//! `fedgate-saml` (crates/saml), re-exported here under its old paths.
pub mod refresh;
pub use fedgate_saml::{decrypt, metadata, validate, xml};

use super::{
    CallbackPayload, Completed, Connector, ConnectorState, LoginAction, LoginContext, LoginStart, OneTimeUse,
    UpstreamError,
};
use super::{StepLog, UpstreamCtx, UpstreamIdentity};
use crate::claims::mfa::MfaOverride;
use crate::claims::oidc::Policy;
use crate::claims::saml::{AttributeMapping, SamlAssertionView, SamlPreset};
use crate::clock::Clock;
use crate::error_code::ErrorCode;
use crate::validation::Invalid;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use validate::{Expectations, ExpectedRequest, SamlError, ValidatedAssertion};

/// How the AuthnRequest travels to the IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestBinding {
    Redirect,
    Post,
}

/// IdP-initiated sign-in: off unless enabled, and then only towards one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpInitiated {
    #[serde(default)]
    pub enabled: bool,
    /// The app (OIDC client) whose sign-in fedgate starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The app's login-initiation URL (OIDC Core §4): fedgate sends the browser there with
    /// `iss`, and the app starts a normal authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
}

/// Which form of the SP URLs (ACS URL, SP entity ID = SP metadata URL) a connection uses.
/// The IdP checks them verbatim (Audience, Recipient, Destination), so a connection keeps the
/// form it was set up with; new connections get [`SpUrlForm::Hyphen`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpUrlForm {
    /// `/sso/saml/conn_…/acs`: connections created before the hyphen form. Okta's SAML wizard
    /// refuses it (no underscore in the Single sign-on URL).
    #[default]
    Underscore,
    /// `/sso/saml/conn-…/acs`: lowercase letters, digits, `-` and `/` only.
    Hyphen,
}

impl SpUrlForm {
    fn is_underscore(&self) -> bool {
        *self == SpUrlForm::Underscore
    }
}

fn default_true() -> bool {
    true
}
fn default_skew() -> i64 {
    120
}

/// What an administrator writes (the admin API input); `metadata_xml` is read once and not kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlInput {
    pub metadata_xml: Option<String>,
    pub metadata_url: Option<String>,
    pub idp_entity_id: Option<String>,
    pub sso_url_redirect: Option<String>,
    pub sso_url_post: Option<String>,
    pub idp_certificates: Option<Vec<String>>,
    pub preset: Option<SamlPreset>,
    pub attribute_mapping: Option<AttributeMapping>,
    pub request_binding: Option<RequestBinding>,
    pub sign_requests: Option<bool>,
    pub allow_sha1: Option<bool>,
    pub clock_skew_secs: Option<i64>,
    pub require_encrypted_assertions: Option<bool>,
    pub require_aes_gcm: Option<bool>,
    pub trusted_email_domains: Option<Vec<String>>,
    pub allowed_tenant_ids: Option<Vec<String>>,
    pub idp_initiated: Option<IdpInitiated>,
    /// Move an existing connection to the other URL form (the IdP must be updated too).
    pub sp_url_form: Option<SpUrlForm>,
    pub mfa: Option<MfaOverride>,
    pub mfa_enforced_by_idp: Option<bool>,
    pub mfa_authn_contexts: Option<Vec<String>>,
}

/// A certificate that left the IdP's metadata: still trusted for a day, so a response signed
/// just before a refresh still verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredCert {
    pub pem: String,
    pub until: i64,
}

/// The stored configuration of a SAML connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    pub idp_entity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_url_redirect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_url_post: Option<String>,
    /// Trusted signing certificates (PEM).
    pub idp_certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_certificates: Vec<RetiredCert>,
    #[serde(default)]
    pub preset: SamlPreset,
    #[serde(default)]
    pub attribute_mapping: AttributeMapping,
    pub request_binding: RequestBinding,
    #[serde(default = "default_true")]
    pub sign_requests: bool,
    #[serde(default)]
    pub allow_sha1: bool,
    #[serde(default = "default_skew")]
    pub clock_skew_secs: i64,
    #[serde(default)]
    pub require_encrypted_assertions: bool,
    /// Accept encrypted assertions only with AES-GCM (authenticated encryption); AES-CBC, which
    /// Okta and AD FS use by default, is refused.
    #[serde(default)]
    pub require_aes_gcm: bool,
    #[serde(default)]
    pub trusted_email_domains: Vec<String>,
    #[serde(default)]
    pub allowed_tenant_ids: Vec<String>,
    #[serde(default)]
    pub idp_initiated: IdpInitiated,
    /// The SP certificate (public; the key is sealed with the connection's secrets).
    pub sp_certificate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_refreshed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_refresh_error: Option<String>,
    /// Certificates already announced as expiring (fingerprints), so the event fires once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiry_warned: Vec<String>,
    /// The form of this connection's SP URLs (absent in connections stored before it existed,
    /// which keep the underscore form).
    #[serde(default, skip_serializing_if = "SpUrlForm::is_underscore")]
    pub sp_url_form: SpUrlForm,
    /// MFA for logins through this connection: the tenant's policy (`inherit`), `off` or
    /// `required` (docs/tokens.md#mfa).
    #[serde(default, skip_serializing_if = "MfaOverride::is_inherit")]
    pub mfa: MfaOverride,
    /// The operator's word that the IdP enforces MFA for this app although its assertions do not
    /// show it (Google Workspace).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enforced_by_idp: bool,
    /// The `AuthnContextClassRef`s requested when MFA is required, replacing the preset's; an
    /// assertion naming one of them counts as MFA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mfa_authn_contexts: Vec<String>,
}

/// The secret field holding a SAML connection's SP private key.
pub const SP_KEY_FIELD: &str = "sp_private_key";

/// The connection's path segment in its SP URLs: the id itself (`conn_…`), or with a hyphen
/// (`conn-…`: ids are lowercase Crockford base32, so the rest is `[0-9a-z]`).
pub fn url_segment(connection_id: &str, form: SpUrlForm) -> String {
    match form {
        SpUrlForm::Underscore => connection_id.to_string(),
        SpUrlForm::Hyphen => connection_id.replacen("conn_", "conn-", 1),
    }
}

/// The connection id for a path segment of either form (`conn_…` or `conn-…`).
pub fn connection_id_of_segment(segment: &str) -> String {
    match segment.strip_prefix("conn-") {
        Some(rest) => format!("conn_{rest}"),
        None => segment.to_string(),
    }
}

/// The SP entity ID (also the SP metadata URL) of a connection.
pub fn sp_entity_id(issuer: &str, connection_id: &str, form: SpUrlForm) -> String {
    format!("{issuer}/sso/saml/{}/metadata", url_segment(connection_id, form))
}
/// The ACS URL of a connection.
pub fn acs_url(issuer: &str, connection_id: &str, form: SpUrlForm) -> String {
    format!("{issuer}/sso/saml/{}/acs", url_segment(connection_id, form))
}

fn invalid(field: &str, code: crate::error_code::ErrorCode, msg: impl Into<String>) -> Invalid {
    Invalid::field(field, code, msg)
}

fn check_url(field: &str, u: &str, dev_mode: bool) -> Result<String, Invalid> {
    metadata::check_idp_url(u, dev_mode).map_err(|m| invalid(field, ErrorCode::InvalidUrl, format!("{field} {m}")))
}

fn domains(field: &str, v: Vec<String>) -> Result<Vec<String>, Invalid> {
    if v.len() > 100 {
        return Err(invalid(field, ErrorCode::TooMany, format!("{field} has more than 100 entries")));
    }
    v.into_iter()
        .map(|d| {
            let d = d.trim().to_ascii_lowercase();
            if d.is_empty() || d.len() > 253 || d.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
                Err(invalid(field, ErrorCode::InvalidDomain, format!("{field} holds an invalid entry")))
            } else {
                Ok(d)
            }
        })
        .collect()
}

impl SamlConfig {
    /// This connection's SP entity ID (and SP metadata URL), in its URL form.
    pub fn sp_entity_id(&self, issuer: &str, connection_id: &str) -> String {
        sp_entity_id(issuer, connection_id, self.sp_url_form)
    }

    /// This connection's ACS URL, in its URL form.
    pub fn acs_url(&self, issuer: &str, connection_id: &str) -> String {
        acs_url(issuer, connection_id, self.sp_url_form)
    }

    /// The fields an administrator set, as they would be written again (for PATCH merging).
    pub fn input_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(u) = &self.metadata_url {
            m.insert("metadata_url".into(), u.clone().into());
        } else {
            m.insert("idp_entity_id".into(), self.idp_entity_id.clone().into());
            if let Some(u) = &self.sso_url_redirect {
                m.insert("sso_url_redirect".into(), u.clone().into());
            }
            if let Some(u) = &self.sso_url_post {
                m.insert("sso_url_post".into(), u.clone().into());
            }
            m.insert("idp_certificates".into(), serde_json::json!(self.idp_certificates));
        }
        m.insert("preset".into(), serde_json::json!(self.preset));
        m.insert("attribute_mapping".into(), serde_json::json!(self.attribute_mapping));
        m.insert("request_binding".into(), serde_json::json!(self.request_binding));
        m.insert("sign_requests".into(), self.sign_requests.into());
        m.insert("allow_sha1".into(), self.allow_sha1.into());
        m.insert("clock_skew_secs".into(), self.clock_skew_secs.into());
        m.insert("require_encrypted_assertions".into(), self.require_encrypted_assertions.into());
        m.insert("require_aes_gcm".into(), self.require_aes_gcm.into());
        m.insert("trusted_email_domains".into(), serde_json::json!(self.trusted_email_domains));
        m.insert("allowed_tenant_ids".into(), serde_json::json!(self.allowed_tenant_ids));
        m.insert("idp_initiated".into(), serde_json::json!(self.idp_initiated));
        m.insert("mfa".into(), serde_json::json!(self.mfa));
        m.insert("mfa_enforced_by_idp".into(), self.mfa_enforced_by_idp.into());
        m.insert("mfa_authn_contexts".into(), serde_json::json!(self.mfa_authn_contexts));
        m
    }

    /// Every certificate trusted now: the current ones and recently retired ones.
    pub fn trusted_certs_der(&self, now: i64) -> Vec<Vec<u8>> {
        self.idp_certificates
            .iter()
            .map(String::as_str)
            .chain(self.retired_certificates.iter().filter(|r| r.until > now).map(|r| r.pem.as_str()))
            .filter_map(|p| metadata::cert_der(p).ok())
            .collect()
    }

    /// Replaces the IdP settings with fresh metadata, keeping certificates that left it trusted
    /// for a day. Returns whether anything changed.
    pub fn apply_metadata(&mut self, md: metadata::IdpMetadata, now: i64) -> bool {
        let before = (
            self.idp_entity_id.clone(),
            self.sso_url_redirect.clone(),
            self.sso_url_post.clone(),
            self.idp_certificates.clone(),
        );
        for old in &self.idp_certificates {
            if !md.certificates.contains(old) && !self.retired_certificates.iter().any(|r| &r.pem == old) {
                self.retired_certificates.push(RetiredCert { pem: old.clone(), until: now + 86_400 });
            }
        }
        self.retired_certificates.retain(|r| r.until > now && !md.certificates.contains(&r.pem));
        self.idp_entity_id = md.entity_id;
        self.sso_url_redirect = md.sso_url_redirect;
        self.sso_url_post = md.sso_url_post;
        self.idp_certificates = md.certificates;
        if self.request_binding == RequestBinding::Redirect && self.sso_url_redirect.is_none() {
            self.request_binding = RequestBinding::Post;
        }
        before
            != (
                self.idp_entity_id.clone(),
                self.sso_url_redirect.clone(),
                self.sso_url_post.clone(),
                self.idp_certificates.clone(),
            )
    }

    /// Warnings an administrator should see: certificates expiring within 30 days, a failing
    /// metadata refresh.
    pub fn warnings(&self, now: i64) -> Vec<String> {
        let mut w = Vec::new();
        for pem in &self.idp_certificates {
            if let Ok(info) = metadata::cert_info(pem) {
                if info.not_after <= now {
                    w.push(format!(
                        "the IdP signing certificate {} expired at {}",
                        info.fingerprint_sha256,
                        crate::util::rfc3339(info.not_after)
                    ));
                } else if info.not_after - now < 30 * 86_400 {
                    w.push(format!(
                        "the IdP signing certificate {} expires at {}",
                        info.fingerprint_sha256,
                        crate::util::rfc3339(info.not_after)
                    ));
                }
            }
        }
        if let Some(e) = &self.metadata_refresh_error {
            w.push(format!("the metadata refresh failed: {e}"));
        }
        w
    }

    /// The shape the admin API shows (computed values included).
    pub fn view_fields(&self, issuer: &str, connection_id: &str, now: i64) -> Map<String, Value> {
        let mut m = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        m.remove("retired_certificates");
        m.remove("expiry_warned");
        m.insert("sp_entity_id".into(), self.sp_entity_id(issuer, connection_id).into());
        m.insert("acs_url".into(), self.acs_url(issuer, connection_id).into());
        m.insert("sp_metadata_url".into(), self.sp_entity_id(issuer, connection_id).into());
        m.insert("sp_url_form".into(), serde_json::json!(self.sp_url_form));
        let certs: Vec<Value> = self
            .idp_certificates
            .iter()
            .filter_map(|p| metadata::cert_info(p).ok())
            .map(|c| serde_json::json!({"pem": c.pem, "subject": c.subject, "not_after": crate::util::rfc3339(c.not_after), "fingerprint_sha256": c.fingerprint_sha256}))
            .collect();
        m.insert("idp_certificates".into(), Value::Array(certs));
        m.insert("warnings".into(), serde_json::json!(self.warnings(now)));
        m
    }
}

/// Builds a connection's configuration from admin input: parses metadata (XML given, or fetched
/// from `metadata_url` with the guarded client) or manual fields, validates every option, and
/// keeps `previous`'s SP certificate and refresh state. The SP key is generated by the caller.
pub async fn prepare(
    fields: Map<String, Value>,
    previous: Option<&SamlConfig>,
    sp_certificate: String,
    ctx: &UpstreamCtx,
    dev_mode: bool,
    now: i64,
) -> Result<SamlConfig, Invalid> {
    let input: SamlInput = serde_json::from_value(Value::Object(fields))
        .map_err(|e| invalid("config", ErrorCode::InvalidConfig, e.to_string()))?;
    let manual = input.idp_certificates.is_some() || input.sso_url_redirect.is_some() || input.sso_url_post.is_some();
    let sources = [input.metadata_xml.is_some(), input.metadata_url.is_some(), manual].iter().filter(|x| **x).count();
    if sources != 1 {
        return Err(invalid(
            "metadata_xml",
            ErrorCode::InvalidConfig,
            "give exactly one of metadata_xml, metadata_url, or the manual fields (idp_entity_id, sso_url_redirect and/or sso_url_post, idp_certificates)",
        ));
    }
    let mut cfg = SamlConfig {
        metadata_url: None,
        idp_entity_id: String::new(),
        sso_url_redirect: None,
        sso_url_post: None,
        idp_certificates: vec![],
        retired_certificates: previous.map(|p| p.retired_certificates.clone()).unwrap_or_default(),
        preset: input.preset.unwrap_or_default(),
        attribute_mapping: input.attribute_mapping.unwrap_or_default(),
        request_binding: input.request_binding.unwrap_or(RequestBinding::Redirect),
        sign_requests: input.sign_requests.unwrap_or(true),
        allow_sha1: input.allow_sha1.unwrap_or(false),
        clock_skew_secs: input.clock_skew_secs.unwrap_or(120),
        require_encrypted_assertions: input.require_encrypted_assertions.unwrap_or(false),
        require_aes_gcm: input.require_aes_gcm.unwrap_or(false),
        trusted_email_domains: domains("trusted_email_domains", input.trusted_email_domains.unwrap_or_default())?,
        allowed_tenant_ids: input.allowed_tenant_ids.unwrap_or_default(),
        idp_initiated: input.idp_initiated.unwrap_or_default(),
        sp_certificate,
        metadata_refreshed_at: None,
        metadata_refresh_error: None,
        expiry_warned: previous.map(|p| p.expiry_warned.clone()).unwrap_or_default(),
        // A connection keeps its URL form (the IdP has it); new ones get the hyphen form.
        sp_url_form: input.sp_url_form.or(previous.map(|p| p.sp_url_form)).unwrap_or(SpUrlForm::Hyphen),
        mfa: input.mfa.unwrap_or_default(),
        mfa_enforced_by_idp: input.mfa_enforced_by_idp.unwrap_or(false),
        mfa_authn_contexts: input.mfa_authn_contexts.unwrap_or_default(),
    };
    if cfg.mfa_authn_contexts.len() > 10
        || cfg.mfa_authn_contexts.iter().any(|a| a.trim().is_empty() || a.len() > 256 || a.contains(['<', '>', '&']))
    {
        return Err(invalid(
            "mfa_authn_contexts",
            ErrorCode::InvalidConfig,
            "mfa_authn_contexts must be at most 10 URIs",
        ));
    }
    let vendor = crate::claims::mfa::saml_vendor(cfg.preset, &cfg.mfa_authn_contexts);
    if cfg.mfa == MfaOverride::Required && !vendor.has_signal && !cfg.mfa_enforced_by_idp {
        return Err(invalid(
            "mfa",
            ErrorCode::MfaUnverifiable,
            "this preset's assertions never show MFA (Google Workspace), so fedgate cannot check it: enforce MFA at the identity provider and set mfa_enforced_by_idp: true, or set mfa_authn_contexts if the provider names an MFA class",
        ));
    }
    cfg.attribute_mapping.validate().map_err(|m| invalid("attribute_mapping", ErrorCode::InvalidMapping, m))?;
    if !(0..=validate::MAX_SKEW_SECS).contains(&cfg.clock_skew_secs) {
        return Err(invalid("clock_skew_secs", ErrorCode::OutOfRange, "clock_skew_secs must be between 0 and 600"));
    }
    if cfg.allowed_tenant_ids.len() > 50 || cfg.allowed_tenant_ids.iter().any(|t| t.is_empty() || t.len() > 64) {
        return Err(invalid(
            "allowed_tenant_ids",
            ErrorCode::InvalidConfig,
            "allowed_tenant_ids holds invalid entries",
        ));
    }
    if cfg.idp_initiated.enabled {
        let (Some(c), Some(u)) = (&cfg.idp_initiated.client_id, &cfg.idp_initiated.initiate_login_uri) else {
            return Err(invalid(
                "idp_initiated",
                ErrorCode::InvalidConfig,
                "IdP-initiated sign-in needs client_id (the app) and initiate_login_uri (where the app starts its sign-in)",
            ));
        };
        if c.is_empty() || c.len() > 128 {
            return Err(invalid("idp_initiated.client_id", ErrorCode::InvalidConfig, "client_id is invalid"));
        }
        let u = check_url("idp_initiated.initiate_login_uri", u, dev_mode)?;
        cfg.idp_initiated.initiate_login_uri = Some(u);
    }
    let md = if let Some(xml) = input.metadata_xml {
        metadata::parse_idp_metadata(&xml, input.idp_entity_id.as_deref())
            .map_err(|m| invalid("metadata_xml", ErrorCode::InvalidMetadata, m))?
    } else if let (Some(u), Some(p)) = (&input.metadata_url, previous.filter(|p| p.metadata_url == input.metadata_url))
    {
        // Same metadata URL as before: keep what the last fetch found (refresh has its own
        // schedule and endpoint), so editing an option never depends on the IdP being up.
        cfg.metadata_url = Some(u.clone());
        cfg.metadata_refreshed_at = p.metadata_refreshed_at;
        cfg.metadata_refresh_error = p.metadata_refresh_error.clone();
        cfg.retired_certificates = p.retired_certificates.clone();
        metadata::IdpMetadata {
            entity_id: p.idp_entity_id.clone(),
            sso_url_redirect: p.sso_url_redirect.clone(),
            sso_url_post: p.sso_url_post.clone(),
            certificates: p.idp_certificates.clone(),
            valid_until: None,
        }
    } else if let Some(u) = input.metadata_url {
        let u = check_url("metadata_url", &u, dev_mode)?;
        let xml =
            refresh::fetch(ctx, &u).await.map_err(|m| invalid("metadata_url", ErrorCode::MetadataUnreachable, m))?;
        cfg.metadata_url = Some(u);
        cfg.metadata_refreshed_at = Some(now);
        metadata::parse_idp_metadata(&xml, input.idp_entity_id.as_deref())
            .map_err(|m| invalid("metadata_url", ErrorCode::InvalidMetadata, m))?
    } else {
        let entity_id =
            input.idp_entity_id.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s.len() <= 1024).ok_or_else(
                || invalid("idp_entity_id", ErrorCode::MissingField, "idp_entity_id is required with manual settings"),
            )?;
        let certs = input.idp_certificates.unwrap_or_default();
        if certs.is_empty() || certs.len() > 10 {
            return Err(invalid(
                "idp_certificates",
                ErrorCode::MissingField,
                "give between 1 and 10 IdP signing certificates (PEM): fedgate never accepts unsigned assertions",
            ));
        }
        let certificates = certs
            .iter()
            .map(|c| metadata::normalize_cert(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| invalid("idp_certificates", ErrorCode::InvalidCertificate, m))?;
        let r = input.sso_url_redirect.map(|u| check_url("sso_url_redirect", &u, dev_mode)).transpose()?;
        let p = input.sso_url_post.map(|u| check_url("sso_url_post", &u, dev_mode)).transpose()?;
        metadata::IdpMetadata { entity_id, sso_url_redirect: r, sso_url_post: p, certificates, valid_until: None }
    };
    if md.sso_url_redirect.is_none() && md.sso_url_post.is_none() {
        return Err(invalid(
            "sso_url_redirect",
            ErrorCode::MissingField,
            "an SSO URL (sso_url_redirect or sso_url_post) is required",
        ));
    }
    for (f, u) in [("sso_url_redirect", &md.sso_url_redirect), ("sso_url_post", &md.sso_url_post)] {
        if let Some(u) = u {
            check_url(f, u, dev_mode)?;
        }
    }
    let explicit_binding = input.request_binding;
    cfg.apply_metadata(md, now);
    match explicit_binding {
        Some(RequestBinding::Redirect) if cfg.sso_url_redirect.is_none() => {
            return Err(invalid("request_binding", ErrorCode::InvalidConfig, "the IdP has no HTTP-Redirect SSO URL"))
        }
        Some(RequestBinding::Post) if cfg.sso_url_post.is_none() => {
            return Err(invalid("request_binding", ErrorCode::InvalidConfig, "the IdP has no HTTP-POST SSO URL"))
        }
        _ => {}
    }
    Ok(cfg)
}

/// Parsed key material of a connection. Parsing the PEM key (and setting up RSA blinding for a
/// fresh key) cost more than the signature itself, so opened keys are cached per connection
/// and reused until the row changes.
pub struct SamlKeys {
    /// The SP key (request signing, assertion decryption).
    pub sp_key: Option<openssl::pkey::PKey<openssl::pkey::Private>>,
    /// The same key as PEM (the validator's decryption input) and DER (xmlsec signing).
    sp_key_pem: Option<String>,
    sp_key_der: Option<Vec<u8>>,
    /// Trusted IdP certificates (DER), each with the time it stops being trusted (retired ones).
    certs: Vec<(Vec<u8>, Option<i64>)>,
}

impl SamlKeys {
    fn new(config: &SamlConfig, sp_key_pem: Option<String>) -> Self {
        let sp_key = sp_key_pem.as_deref().and_then(|p| openssl::pkey::PKey::private_key_from_pem(p.as_bytes()).ok());
        let sp_key_der = sp_key.as_ref().and_then(|k| k.private_key_to_der().ok());
        let certs = config
            .idp_certificates
            .iter()
            .filter_map(|p| metadata::cert_der(p).ok().map(|d| (d, None)))
            .chain(
                config
                    .retired_certificates
                    .iter()
                    .filter_map(|r| metadata::cert_der(&r.pem).ok().map(|d| (d, Some(r.until)))),
            )
            .collect();
        Self { sp_key, sp_key_pem, sp_key_der, certs }
    }

    /// The certificates trusted at `now`.
    pub fn trusted_certs_der(&self, now: i64) -> Vec<Vec<u8>> {
        self.certs.iter().filter(|(_, until)| until.is_none_or(|u| u > now)).map(|(d, _)| d.clone()).collect()
    }
}

/// Opens a SAML connection row: its SP key decrypted and parsed, the IdP certificates decoded.
/// The connector registry does this once per (connection, version).
pub fn open(
    ctx: &std::sync::Arc<super::UpstreamCtx>,
    row: &crate::store::entities::connection::Model,
    config: SamlConfig,
) -> Result<SamlConnector, UpstreamError> {
    let secrets = super::connections::open_secrets(ctx, row)?;
    let pem = secrets.get(SP_KEY_FIELD).and_then(Value::as_str).map(str::to_string);
    let keys = Arc::new(SamlKeys::new(&config, pem));
    Ok(SamlConnector {
        config: Arc::new(config),
        connection_id: row.id.clone(),
        keys,
        clock: ctx.clock.clone(),
        pool: ctx.saml_pool.clone(),
        decryption_floor: std::time::Duration::from_millis(ctx.decryption_failure_floor_ms),
    })
}

/// An opened SAML connection. Cheap to clone (everything heavy is shared).
#[derive(Clone)]
pub struct SamlConnector {
    pub config: Arc<SamlConfig>,
    pub connection_id: String,
    pub keys: Arc<SamlKeys>,
    pub clock: Arc<dyn Clock>,
    /// Decoding, parsing, verification and decryption run here, never on the async workers.
    pub pool: Arc<crate::blocking::BlockingPool>,
    /// Every failure to decrypt and verify unauthenticated ciphertext takes at least this long.
    pub decryption_floor: std::time::Duration,
}

impl std::fmt::Debug for SamlConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlConnector").field("connection_id", &self.connection_id).finish_non_exhaustive()
    }
}

fn saml_instant(secs: i64) -> String {
    crate::util::rfc3339(secs)
}

impl SamlConnector {
    /// The AuthnRequest for a login (our LoginId is its ID).
    pub fn authn_request(&self, login: &LoginContext, destination: &str) -> String {
        let esc = crate::html::escape;
        format!(
            "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" ProtocolBinding=\"{}\"{}><saml:Issuer>{}</saml:Issuer><samlp:NameIDPolicy AllowCreate=\"true\"/>{}</samlp:AuthnRequest>",
            esc(login.login_id.as_str()),
            saml_instant(self.clock.now()),
            esc(destination),
            esc(&self.config.acs_url(&login.issuer, &self.connection_id)),
            metadata::BINDING_POST,
            if login.force_authn { " ForceAuthn=\"true\"" } else { "" },
            esc(&self.config.sp_entity_id(&login.issuer, &self.connection_id)),
            self.requested_authn_context(login),
        )
    }

    /// The `RequestedAuthnContext` asking for MFA (when the login requires it and the preset can
    /// ask: Comparison `exact`, any of the class refs), after `NameIDPolicy` as the schema orders.
    fn requested_authn_context(&self, login: &LoginContext) -> String {
        if !login.require_mfa {
            return String::new();
        }
        let vendor = crate::claims::mfa::saml_vendor(self.config.preset, &self.config.mfa_authn_contexts);
        if vendor.class_refs.is_empty() {
            return String::new();
        }
        let refs: String = vendor
            .class_refs
            .iter()
            .map(|r| format!("<saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>", crate::html::escape(r)))
            .collect();
        format!("<samlp:RequestedAuthnContext Comparison=\"exact\">{refs}</samlp:RequestedAuthnContext>")
    }

    /// The HTTP-Redirect binding URL: DEFLATE + base64 + URL encoding, signed over the query
    /// (RSA-SHA256) when the connection signs requests.
    pub fn redirect_url(&self, sso_url: &str, request_xml: &str, relay_state: &str) -> Result<String, UpstreamError> {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(request_xml.as_bytes())
            .map_err(|e| UpstreamError::Misconfigured(format!("cannot encode the request: {e}")))?;
        let deflated =
            enc.finish().map_err(|e| UpstreamError::Misconfigured(format!("cannot encode the request: {e}")))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(deflated);
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut query = format!("SAMLRequest={}&RelayState={}", enc(&b64), enc(relay_state));
        if self.config.sign_requests {
            let key =
                self.keys.sp_key.as_ref().ok_or_else(|| {
                    UpstreamError::Misconfigured("the connection has no SP key to sign requests".into())
                })?;
            query.push_str(&format!("&SigAlg={}", enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")));
            let sig = sign_rsa_sha256(key, query.as_bytes())?;
            query.push_str(&format!("&Signature={}", enc(&base64::engine::general_purpose::STANDARD.encode(sig))));
        }
        let sep = if sso_url.contains('?') { '&' } else { '?' };
        Ok(format!("{sso_url}{sep}{query}"))
    }

    /// Signs an AuthnRequest for the HTTP-POST binding: an enveloped XML signature (exclusive
    /// c14n, RSA-SHA256) right after the Issuer, made by xmlsec.
    pub fn sign_enveloped(&self, xml: &str, id: &str) -> Result<String, UpstreamError> {
        use samael::crypto::{Crypto, CryptoProvider};
        let key_der = self
            .keys
            .sp_key_der
            .as_deref()
            .ok_or_else(|| UpstreamError::Misconfigured("the connection has no SP key to sign requests".into()))?;
        let cert_b64: String = self.config.sp_certificate.lines().filter(|l| !l.starts_with("-----")).collect();
        let template = format!(
            "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#{}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
            crate::html::escape(id)
        );
        let at = xml
            .find("</saml:Issuer>")
            .map(|i| i + "</saml:Issuer>".len())
            .ok_or_else(|| UpstreamError::Misconfigured("cannot place the request signature".into()))?;
        let unsigned = format!("{}{}{}", &xml[..at], template, &xml[at..]);
        let signed = Crypto::sign_xml(unsigned.as_bytes(), key_der)
            .map_err(|e| UpstreamError::Misconfigured(format!("cannot sign the request: {e}")))?;
        Ok(validate::strip_xml_declaration(&signed).trim_end().to_string())
    }

    fn expectations<'a>(
        &'a self,
        certs: &'a [Vec<u8>],
        request: ExpectedRequest<'a>,
        sp_entity: &'a str,
        acs: &'a str,
    ) -> Expectations<'a> {
        Expectations {
            idp_entity_id: &self.config.idp_entity_id,
            idp_certs_der: certs,
            sp_entity_id: sp_entity,
            acs_url: acs,
            allow_sha1: self.config.allow_sha1,
            skew_secs: self.config.clock_skew_secs,
            now: self.clock.now(),
            request,
            decryption_key_pem: self.keys.sp_key_pem.as_deref(),
            require_encrypted: self.config.require_encrypted_assertions,
            allow_cbc: !self.config.require_aes_gcm,
        }
    }

    /// Validates a decoded SAMLResponse ([`validate::decode`]) against this connection and
    /// records the step. `request` is our LoginId, or `None` for an IdP-initiated response;
    /// `started_ms` is when the response arrived.
    pub fn validate(
        &self,
        issuer: &str,
        xml: &str,
        request: Option<&str>,
        steps: &StepLog,
        started_ms: i64,
    ) -> Result<ValidatedAssertion, SamlError> {
        let certs = self.keys.trusted_certs_der(self.clock.now());
        let sp = self.config.sp_entity_id(issuer, &self.connection_id);
        let acs = self.config.acs_url(issuer, &self.connection_id);
        let req = match request {
            Some(id) => ExpectedRequest::Id(id),
            None => ExpectedRequest::Unsolicited,
        };
        let a = validate::validate_xml(xml, &self.expectations(&certs, req, &sp, &acs))?;
        let now = self.clock.now_ms();
        steps.push(
            "saml_response_validated",
            now,
            now - started_ms,
            serde_json::json!({"assertion_id": a.assertion_id, "protection": a.protection, "name_id_format": a.name_id_format,
                               "attributes": a.attributes.keys().collect::<Vec<_>>(), "idp_initiated": request.is_none()}),
        );
        Ok(a)
    }

    /// Maps a validated assertion to the upstream identity with the connection's preset.
    pub fn identity(&self, a: &ValidatedAssertion) -> Result<(UpstreamIdentity, Vec<String>), UpstreamError> {
        let view = SamlAssertionView {
            issuer: &a.issuer,
            name_id: a.name_id.as_deref(),
            name_id_format: a.name_id_format.as_deref(),
            attributes: &a.attributes,
            authn_context: a.authn_context.as_deref(),
            session_index: a.session_index.as_deref(),
        };
        let policy = Policy {
            trusted_email_domains: self.config.trusted_email_domains.clone(),
            hosted_domains: vec![],
            allowed_tenant_ids: self.config.allowed_tenant_ids.clone(),
        };
        let mapped = crate::claims::saml::map(&view, self.config.preset, &self.config.attribute_mapping, &policy)
            .map_err(|r| UpstreamError::ClaimsRejected { code: r.code, detail: r.detail, fix: r.fix })?;
        let mut identity = mapped.identity;
        if identity.amr.is_empty() {
            identity.amr = vec!["saml".into()];
        }
        identity.auth_time = a.authn_instant;
        Ok((identity, mapped.notes))
    }
}

/// RSA PKCS#1 v1.5 SHA-256 signature.
pub fn sign_rsa_sha256(
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    data: &[u8],
) -> Result<Vec<u8>, UpstreamError> {
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key)?;
        s.update(data)?;
        s.sign_to_vec()
    };
    run().map_err(|_| UpstreamError::Misconfigured("the SP key cannot sign (corrupt key?)".into()))
}

#[async_trait::async_trait]
impl Connector for SamlConnector {
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError> {
        let relay = login.login_id.as_str().to_string();
        let (action, binding) = match self.config.request_binding {
            RequestBinding::Redirect => {
                let sso = self
                    .config
                    .sso_url_redirect
                    .as_deref()
                    .ok_or_else(|| UpstreamError::Misconfigured("no HTTP-Redirect SSO URL".into()))?;
                let xml = self.authn_request(login, sso);
                (LoginAction::Redirect(self.redirect_url(sso, &xml, &relay)?), "redirect")
            }
            RequestBinding::Post => {
                let sso = self
                    .config
                    .sso_url_post
                    .as_deref()
                    .ok_or_else(|| UpstreamError::Misconfigured("no HTTP-POST SSO URL".into()))?;
                let mut xml = self.authn_request(login, sso);
                if self.config.sign_requests {
                    xml = self.sign_enveloped(&xml, login.login_id.as_str())?;
                }
                let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
                (
                    LoginAction::AutoPost {
                        url: sso.to_string(),
                        fields: vec![("SAMLRequest".into(), b64), ("RelayState".into(), relay)],
                    },
                    "post",
                )
            }
        };
        login.steps.push(
            "saml_request_sent",
            self.clock.now_ms(),
            0,
            serde_json::json!({"request_id": login.login_id.as_str(), "binding": binding, "signed": self.config.sign_requests, "idp_entity_id": self.config.idp_entity_id}),
        );
        Ok(LoginStart {
            action,
            state: ConnectorState::Saml { saml_request_id: login.login_id.to_string(), asserted: Vec::new() },
        })
    }

    /// Validates the POSTed SAMLResponse against the request `begin` sent (on the pool) and
    /// maps it; the assertion ID comes back as the use-once key for the replay cache.
    async fn complete(
        &self,
        login: &LoginContext,
        _state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<Completed, UpstreamError> {
        self.complete_response(&login.issuer, payload, Some(login.login_id.to_string()), &login.steps).await
    }
}

impl SamlConnector {
    /// Runs CPU work on a SAML message on the bounded pool.
    async fn pooled<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, UpstreamError> {
        self.pool.run(f).await.map_err(|e| match e {
            crate::blocking::PoolError::Busy => UpstreamError::Busy,
            crate::blocking::PoolError::Failed => {
                UpstreamError::Misconfigured("SAML verification failed unexpectedly".into())
            }
        })
    }

    /// Decodes the base64 `SAMLResponse` field (size, UTF-8, the byte checks) and reads the
    /// unverified InResponseTo that names the login it answers, on the pool.
    pub async fn decode_and_peek(&self, saml_response: String) -> Result<(Arc<str>, Option<String>), UpstreamError> {
        self.pooled(move || {
            let xml = validate::decode(&saml_response)?;
            let irt = validate::peek_in_response_to(&xml)?;
            Ok::<_, SamlError>((Arc::<str>::from(xml), irt))
        })
        .await?
        .map_err(UpstreamError::Saml)
    }

    /// Validates a response for login `request` (or, `None`, an IdP-initiated one) and maps it.
    /// A failure to decrypt and verify unauthenticated ciphertext takes at least
    /// `decryption_floor`, whatever failed inside.
    pub async fn complete_response(
        &self,
        issuer: &str,
        payload: CallbackPayload,
        request: Option<String>,
        steps: &StepLog,
    ) -> Result<Completed, UpstreamError> {
        let started = self.clock.now_ms();
        let began = tokio::time::Instant::now();
        let xml = match payload.decoded {
            Some(x) => x,
            None => {
                let raw = payload.params.get("SAMLResponse").cloned().unwrap_or_default();
                self.decode_and_peek(raw).await?.0
            }
        };
        let (me, issuer, steps2) = (self.clone(), issuer.to_string(), steps.clone());
        let validated = self.pooled(move || me.validate(&issuer, &xml, request.as_deref(), &steps2, started)).await?;
        let a = match validated {
            Ok(a) => a,
            Err(e @ SamlError::Decryption(_)) => {
                tokio::time::sleep_until(began + self.decryption_floor).await;
                return Err(UpstreamError::Saml(e));
            }
            Err(e) => return Err(UpstreamError::Saml(e)),
        };
        let (identity, notes) = self.identity(&a)?;
        Ok(Completed { identity, one_time: Some(OneTimeUse { key: a.assertion_id, until: a.expires_at }), notes })
    }
}

/// (tenant id, connection id, days) for every enabled SAML connection: days until its newest
/// trusted IdP signing certificate expires (negative once expired). For the metrics scrape; a
/// database error yields nothing (the scrape still answers).
pub async fn certificate_expiry_days(db: &crate::store::Db, now: i64) -> Vec<(String, String, f64)> {
    let Ok(rows) = crate::store::connections::all_of_type(db, "saml").await else { return Vec::new() };
    let mut out = Vec::new();
    for row in rows.into_iter().filter(|r| r.enabled) {
        let Ok(crate::upstream::connections::ConnectionConfig::Saml(cfg)) =
            crate::upstream::connections::ConnectionConfig::from_row(&row)
        else {
            continue;
        };
        let newest = cfg.idp_certificates.iter().filter_map(|c| metadata::cert_info(c).ok()).map(|i| i.not_after).max();
        if let Some(not_after) = newest {
            out.push((row.tenant_id.clone(), row.id.clone(), ((not_after - now) as f64 / 86400.0).floor()));
        }
    }
    out
}
