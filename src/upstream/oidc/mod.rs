//! Upstream OpenID Connect connections (`type: oidc`): configuration, discovery/JWKS cache, the
//! connector (authorization code + PKCE S256 + state + nonce, through the `openidconnect` crate)
//! and the one callback route, `/sso/oidc/callback`.
pub mod connector;
pub mod jwk;
pub mod metadata;

use crate::claims::mfa::MfaOverride;
use crate::claims::oidc::{Preset, MAPPABLE};
use crate::error_code::ErrorCode;
use crate::validation::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// ID token algorithms accepted by default: asymmetric only (never `none`, never HMAC).
pub const DEFAULT_ALGS: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// Authorization parameters fedgate sets itself; `extra_auth_params` cannot override them.
const RESERVED_PARAMS: [&str; 12] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "prompt",
    "max_age",
    "response_mode",
];

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_skew() -> i64 {
    60
}

/// How fedgate authenticates at the IdP's token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// The `oidc` connection's configuration (the client secret is kept apart, encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The IdP's issuer identifier; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Explicit endpoints: when `authorization_endpoint`, `token_endpoint` and `jwks_uri` are all
    /// set, discovery is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub token_endpoint_auth_method: TokenAuth,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// `prompt` sent upstream (unless the app asked for re-authentication: then `login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Additional authorization request parameters (e.g. `{"acr_values": "mfa"}`).
    #[serde(default)]
    pub extra_auth_params: BTreeMap<String, String>,
    /// Vendor preset: `generic`, `okta`, `entra`, `google`, `keycloak`, `auth0`; social sign-in:
    /// `microsoft` (any Microsoft account), `google_any` (any Google account).
    #[serde(default)]
    pub preset: Preset,
    /// Custom rules: our field (`subject`, `email`, `email_verified`, `name`, `given_name`,
    /// `family_name`, `groups`) -> upstream claim (dotted path).
    #[serde(default)]
    pub claim_mapping: BTreeMap<String, String>,
    /// Merge the userinfo endpoint's claims into the ID token's.
    #[serde(default)]
    pub fetch_userinfo: bool,
    /// Accepted ID token algorithms (a subset of the asymmetric ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_algs: Option<Vec<String>>,
    /// Emails in these domains count as verified even if the IdP does not say so.
    #[serde(default)]
    pub trusted_email_domains: Vec<String>,
    /// `google` preset: accepted `hd` values.
    #[serde(default)]
    pub hosted_domains: Vec<String>,
    /// `entra` preset: accepted directory (tenant) ids; required with a `common` or
    /// `organizations` issuer.
    #[serde(default)]
    pub allowed_tenant_ids: Vec<String>,
    /// `apple` preset: the Apple developer team id (the client secret's `iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apple_team_id: Option<String>,
    /// `apple` preset: the id of the Sign in with Apple key (the client secret's `kid`); the
    /// key itself (the `.p8` file's PEM) is the connection's `client_secret`, sealed at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apple_key_id: Option<String>,
    /// Seconds of clock skew tolerated on `exp`, `iat` and `nbf` (0 to 300, default 60).
    #[serde(default = "default_skew")]
    pub clock_skew: i64,
    /// MFA for logins through this connection: the tenant's policy (`inherit`), `off` or
    /// `required` (docs/tokens.md#mfa).
    #[serde(default, skip_serializing_if = "MfaOverride::is_inherit")]
    pub mfa: MfaOverride,
    /// The operator's word that the IdP enforces MFA for this app although its answer does not
    /// show it (Google): such logins meet an MFA requirement with `acr`
    /// `urn:fedgate:acr:mfa-idp-enforced`, never `urn:fedgate:acr:mfa`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enforced_by_idp: bool,
    /// `acr_values` sent upstream when MFA is required, replacing the preset's; an ID token
    /// `acr` equal to one of them counts as MFA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mfa_acr_values: Vec<String>,
}

impl OidcConfig {
    /// Whether the issuer is Entra's multi-tenant endpoint (`common` / `organizations`) on the
    /// `entra` preset (which then needs an allow-list of directories).
    pub fn entra_multi_tenant(&self) -> bool {
        self.preset == Preset::Entra && (self.issuer.contains("/common/") || self.issuer.contains("/organizations/"))
    }

    /// Whether the issuer is one of Microsoft's multi-tenant endpoints (`common`,
    /// `organizations`, `consumers`) on a Microsoft preset: discovery publishes a templated
    /// issuer (`.../{tenantid}/v2.0`, or the personal-accounts directory for `consumers`), and
    /// each ID token's `iss` is checked against it with the token's own `tid`.
    pub fn microsoft_multi_tenant(&self) -> bool {
        self.preset.is_microsoft()
            && ["/common/", "/organizations/", "/consumers/"].iter().any(|p| self.issuer.contains(p))
    }

    /// Which Microsoft accounts the issuer admits: `Some(true)` personal only (`consumers`),
    /// `Some(false)` work and school only (`organizations`), `None` both.
    pub fn microsoft_personal_only(&self) -> Option<bool> {
        if !self.preset.is_microsoft() {
            None
        } else if self.issuer.contains("/consumers/") {
            Some(true)
        } else if self.issuer.contains("/organizations/") {
            Some(false)
        } else {
            None
        }
    }

    /// Whether fedgate checks the ID token's `iss` itself (templated Microsoft issuers) instead
    /// of openidconnect.
    pub fn issuer_checked_by_us(&self) -> bool {
        self.microsoft_multi_tenant()
    }

    /// The ID token algorithms accepted.
    pub fn algs(&self) -> Vec<String> {
        self.id_token_signing_algs.clone().unwrap_or_else(|| DEFAULT_ALGS.iter().map(|s| s.to_string()).collect())
    }

    /// Checks the configuration; `dev_mode` allows plain http URLs.
    pub fn validate(&self, dev_mode: bool) -> Result<(), Invalid> {
        let url_ok = |field: &str, u: &str| -> Result<(), Invalid> {
            match url::Url::parse(u) {
                Ok(p) if p.scheme() == "https" || (dev_mode && p.scheme() == "http") => {
                    if p.fragment().is_some() || !p.username().is_empty() {
                        return Err(Invalid::field(
                            field,
                            ErrorCode::InvalidUrl,
                            format!("{field} must not carry credentials or a fragment"),
                        ));
                    }
                    Ok(())
                }
                _ => Err(Invalid::field(
                    field,
                    ErrorCode::InvalidUrl,
                    format!("{field} must be an https URL (http only in dev mode)"),
                )),
            }
        };
        url_ok("issuer", &self.issuer)?;
        for (f, v) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
            ("userinfo_endpoint", &self.userinfo_endpoint),
        ] {
            if let Some(v) = v {
                url_ok(f, v)?;
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
        for k in self.extra_auth_params.keys() {
            if RESERVED_PARAMS.contains(&k.as_str()) {
                return Err(Invalid::field(
                    "extra_auth_params",
                    ErrorCode::ReservedParameter,
                    format!("{k} is set by fedgate and cannot be overridden"),
                ));
            }
        }
        for k in self.claim_mapping.keys() {
            if !MAPPABLE.contains(&k.as_str()) {
                return Err(Invalid::field(
                    "claim_mapping",
                    ErrorCode::InvalidMapping,
                    format!("{k} cannot be mapped; use one of {}", MAPPABLE.join(", ")),
                ));
            }
        }
        for a in self.algs() {
            if !DEFAULT_ALGS.contains(&a.as_str()) {
                return Err(Invalid::field(
                    "id_token_signing_algs",
                    ErrorCode::AlgNotAllowed,
                    format!("{a} is not allowed; use asymmetric algorithms ({})", DEFAULT_ALGS.join(", ")),
                ));
            }
        }
        if !(0..=300).contains(&self.clock_skew) {
            return Err(Invalid::field(
                "clock_skew",
                ErrorCode::InvalidClockSkew,
                "clock_skew must be 0 to 300 seconds",
            ));
        }
        if self.mfa_acr_values.len() > 10
            || self.mfa_acr_values.iter().any(|a| a.is_empty() || a.contains(' ') || a.len() > 256)
        {
            return Err(Invalid::field(
                "mfa_acr_values",
                ErrorCode::InvalidConfig,
                "mfa_acr_values must be at most 10 single values",
            ));
        }
        let vendor = crate::claims::mfa::oidc_vendor(self.preset, &self.mfa_acr_values);
        if self.mfa == MfaOverride::Required && !vendor.has_signal && !self.mfa_enforced_by_idp {
            return Err(Invalid::field(
                "mfa",
                ErrorCode::MfaUnverifiable,
                "this preset's ID tokens never show MFA (Google: no amr or acr), so fedgate cannot check it: enforce MFA at the identity provider and set mfa_enforced_by_idp: true, or set mfa_acr_values if the provider sends an acr for MFA",
            ));
        }
        if self.preset == Preset::Apple {
            for (field, v) in [("apple_team_id", &self.apple_team_id), ("apple_key_id", &self.apple_key_id)] {
                let ok = v.as_deref().is_some_and(|v| {
                    !v.is_empty()
                        && v.len() <= 64
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                });
                if !ok {
                    return Err(Invalid::field(
                        field,
                        ErrorCode::MissingField,
                        format!("the apple preset needs {field} (from the Apple developer account)"),
                    ));
                }
            }
        }
        if self.entra_multi_tenant() && self.allowed_tenant_ids.is_empty() {
            return Err(Invalid::field(
                "allowed_tenant_ids",
                ErrorCode::MissingField,
                "a multi-tenant Entra issuer (common/organizations) needs allowed_tenant_ids",
            ));
        }
        Ok(())
    }
}
