//! TEMPORARY STUB (replaced by the saml-claims branch): SAML attributes -> UpstreamIdentity.
use super::oidc::{Mapped, Policy, Rejected};
use crate::upstream::UpstreamIdentity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SamlPreset {
    #[default]
    Generic,
    Okta,
    Entra,
    Google,
    Adfs,
    Onelogin,
    Ping,
    Jumpcloud,
    Keycloak,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

impl AttributeMapping {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

pub struct SamlAssertionView<'a> {
    pub issuer: &'a str,
    pub name_id: Option<&'a str>,
    pub name_id_format: Option<&'a str>,
    pub attributes: &'a BTreeMap<String, Vec<String>>,
    pub authn_context: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

pub fn map(a: &SamlAssertionView, _p: SamlPreset, _c: &AttributeMapping, policy: &Policy) -> Result<Mapped, Rejected> {
    let first = |k: &str| a.attributes.get(k).and_then(|v| v.first()).cloned();
    let email = first("email");
    let verified =
        email.as_deref().and_then(super::email_domain).is_some_and(|d| policy.trusted_email_domains.contains(&d));
    Ok(Mapped {
        identity: UpstreamIdentity {
            subject: a.name_id.unwrap_or_default().to_string(),
            email,
            email_verified: verified,
            name: first("name"),
            given_name: first("givenName"),
            family_name: first("sn"),
            groups: a.attributes.get("groups").cloned().unwrap_or_default(),
            amr: vec![],
            attributes: serde_json::json!({"issuer": a.issuer}),
        },
        notes: vec![],
    })
}
