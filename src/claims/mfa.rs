//! Multi-factor authentication, pure: the tenant's and connection's policy, what fedgate asks
//! each vendor for (OIDC `acr_values` / `claims`, SAML `RequestedAuthnContext`), how it reads
//! the vendor's answer (OIDC `amr` / `acr`, SAML `AuthnContextClassRef` and Microsoft's
//! `authnmethodsreferences`, already normalized to RFC 8176 `amr` values), and the `acr` values
//! fedgate issues to the app. Sources for every vendor value: docs/tokens.md#mfa.
use super::oidc::Preset;
use super::saml::SamlPreset;
use serde::{Deserialize, Serialize};

/// A tenant's MFA policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// fedgate neither asks for nor checks MFA (the app may still ask with `acr_values`).
    #[default]
    Off,
    /// Every login must show MFA in the IdP's verified answer.
    Required,
}

/// A connection's MFA setting: the tenant's policy, or its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaOverride {
    #[default]
    Inherit,
    Off,
    Required,
}

impl MfaOverride {
    pub fn is_inherit(&self) -> bool {
        *self == MfaOverride::Inherit
    }

    /// Whether MFA is required for a login through this connection of a tenant with `tenant`.
    pub fn required(self, tenant: MfaPolicy) -> bool {
        match self {
            MfaOverride::Inherit => tenant == MfaPolicy::Required,
            MfaOverride::Off => false,
            MfaOverride::Required => true,
        }
    }
}

/// The `acr` fedgate issues when the IdP's verified answer shows MFA.
pub const ACR_MFA: &str = "urn:fedgate:acr:mfa";
/// The `acr` fedgate issues when the IdP's answer shows no MFA, but the operator marked the
/// connection `mfa_enforced_by_idp` (the IdP enforces MFA and does not say so).
pub const ACR_MFA_IDP: &str = "urn:fedgate:acr:mfa-idp-enforced";
/// The `acr` of any other login: one verified sign-in at the IdP, factors unknown or single.
pub const ACR_BASIC: &str = "urn:fedgate:acr:basic";
/// `acr_values_supported` in discovery, weakest first.
pub const ACR_VALUES: [&str; 3] = [ACR_BASIC, ACR_MFA_IDP, ACR_MFA];

/// What a login achieved, ordered: a request for a level is met by it or a stronger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Basic,
    IdpEnforced,
    Mfa,
}

impl Level {
    pub fn acr(self) -> &'static str {
        match self {
            Level::Basic => ACR_BASIC,
            Level::IdpEnforced => ACR_MFA_IDP,
            Level::Mfa => ACR_MFA,
        }
    }

    pub fn from_acr(s: &str) -> Option<Level> {
        match s {
            ACR_BASIC => Some(Level::Basic),
            ACR_MFA_IDP => Some(Level::IdpEnforced),
            ACR_MFA => Some(Level::Mfa),
            _ => None,
        }
    }
}

/// The app's `acr_values` (space-separated, order of preference): the weakest level it accepts.
/// Every value must be one of [`ACR_VALUES`]: an unknown value is refused (`invalid_request`)
/// rather than silently ignored, so an app never believes it asked for something fedgate does
/// not know.
pub fn parse_acr_values(s: &str) -> Result<Option<Level>, String> {
    let mut min: Option<Level> = None;
    for v in s.split(' ').filter(|v| !v.is_empty()) {
        let l = Level::from_acr(v)
            .ok_or_else(|| format!("unsupported acr value {}; supported: {}", short(v), ACR_VALUES.join(" ")))?;
        min = Some(min.map_or(l, |m| m.min(l)));
    }
    Ok(min)
}

fn short(v: &str) -> String {
    v.chars().take(80).collect()
}

/// RFC 8176 `amr` values, by the kind of factor they are (knowledge, possession, inherence).
fn factor(amr: &str) -> Option<u8> {
    match amr {
        "pwd" | "pin" | "kba" => Some(0),
        "otp" | "hwk" | "swk" | "sms" | "tel" | "sc" | "pop" | "mca" | "rsa" | "fido" => Some(1),
        "fpt" | "face" | "iris" | "retina" | "vbm" | "bio" => Some(2),
        _ => None,
    }
}

/// Whether RFC 8176 `amr` values show MFA: `mfa` itself (or Entra's `ngcmfa`, its equivalent),
/// or methods of two kinds of factor.
pub fn amr_shows_mfa(amr: &[String]) -> bool {
    if amr.iter().any(|a| a == "mfa" || a == "ngcmfa") {
        return true;
    }
    let mut kinds: Vec<u8> = amr.iter().filter_map(|a| factor(a)).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.len() >= 2
}

/// What a protocol's preset asks the IdP for, and which answers it reads as MFA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VendorMfa {
    /// OIDC: `acr_values` sent upstream when MFA is required.
    pub acr_values: Vec<String>,
    /// OIDC: send `claims={"id_token":{"amr":{"essential":true}}}` (OpenID Connect Core §5.5).
    pub claims_amr: bool,
    /// SAML: `AuthnContextClassRef`s of the `RequestedAuthnContext` (Comparison `exact`: any of
    /// them), empty: none sent.
    pub class_refs: Vec<String>,
    /// Upstream `acr` / `AuthnContextClassRef` values that mean MFA (beyond `amr` values).
    pub mfa_acrs: Vec<String>,
    /// Whether the IdP gives any MFA signal at all: without one, a login that must show MFA fails
    /// unless the operator marks the connection `mfa_enforced_by_idp`.
    pub has_signal: bool,
}

const MS_MULTIPLEAUTHN: &str = "http://schemas.microsoft.com/claims/multipleauthn";
const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
const OKTA_2FA: &str = "urn:okta:loa:2fa:any";
const PAPE_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

fn v(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// The OIDC preset's MFA request and signals. `custom` (the connection's `mfa_acr_values`)
/// replaces the preset's `acr_values` and is also read as MFA.
pub fn oidc_vendor(preset: Preset, custom: &[String]) -> VendorMfa {
    let mut m = match preset {
        // Okta: acr_values urn:okta:loa:2fa:any (or phr / phrh), amr in the ID token.
        Preset::Okta => VendorMfa {
            acr_values: v(&[OKTA_2FA]),
            claims_amr: false,
            class_refs: vec![],
            mfa_acrs: v(&[OKTA_2FA, "phr", "phrh"]),
            has_signal: true,
        },
        // Entra ID: MFA is enforced by Conditional Access, not by acr_values; the v1.0 ID token
        // carries amr ("mfa"), the v2.0 token only when the app's optional claims add it. We ask
        // for amr as an essential claim and check it.
        Preset::Entra => VendorMfa { claims_amr: true, has_signal: true, ..Default::default() },
        // Microsoft (personal and work accounts, multi-tenant): as Entra ID for work accounts;
        // a personal account's amr says what it says.
        Preset::Microsoft => VendorMfa { claims_amr: true, has_signal: true, ..Default::default() },
        // Google (Workspace or any account) and Apple: no MFA request parameter, no amr/acr in
        // the ID token.
        Preset::Google | Preset::GoogleAny | Preset::Apple => VendorMfa::default(),
        // Auth0: the documented MFA policy URI as acr_values; amr ["mfa"] in the ID token.
        Preset::Auth0 => {
            VendorMfa { acr_values: v(&[PAPE_MFA]), mfa_acrs: v(&[PAPE_MFA]), has_signal: true, ..Default::default() }
        }
        // Keycloak and generic OpenID Providers: amr asked for as an essential claim; acr values
        // are site-specific (set mfa_acr_values).
        Preset::Keycloak | Preset::Generic => {
            VendorMfa { claims_amr: true, mfa_acrs: v(&[REFEDS_MFA, PAPE_MFA]), has_signal: true, ..Default::default() }
        }
    };
    if !custom.is_empty() {
        m.acr_values = custom.to_vec();
        m.mfa_acrs.extend(custom.iter().cloned());
        m.has_signal = true;
    }
    m
}

/// The SAML preset's MFA request and signals. `custom` (the connection's
/// `mfa_authn_contexts`) replaces the preset's class refs and is also read as MFA.
pub fn saml_vendor(preset: SamlPreset, custom: &[String]) -> VendorMfa {
    let mut m = match preset {
        // AD FS: multipleauthn in the RequestedAuthnContext triggers its additional
        // authentication; the assertion's AuthnContextClassRef / authnmethodsreferences say it.
        SamlPreset::Adfs => VendorMfa {
            class_refs: v(&[MS_MULTIPLEAUTHN]),
            mfa_acrs: v(&[MS_MULTIPLEAUTHN]),
            has_signal: true,
            ..Default::default()
        },
        // Entra ID: MFA comes from Conditional Access (RequestedAuthnContext cannot ask for it);
        // the assertion says multipleauthn in authnmethodsreferences.
        SamlPreset::Entra => VendorMfa { mfa_acrs: v(&[MS_MULTIPLEAUTHN]), has_signal: true, ..Default::default() },
        // Okta: its step-up ACR values work in the SAML RequestedAuthnContext and come back as
        // the AuthnContextClassRef.
        SamlPreset::Okta => VendorMfa {
            class_refs: v(&[OKTA_2FA]),
            mfa_acrs: v(&[OKTA_2FA, "phr", "phrh", MS_MULTIPLEAUTHN, REFEDS_MFA]),
            has_signal: true,
            ..Default::default()
        },
        // Google Workspace SAML: always PasswordProtectedTransport / unspecified; no signal.
        SamlPreset::Google => VendorMfa::default(),
        // Others: the REFEDS MFA profile, the de-facto standard class for MFA.
        _ => VendorMfa {
            class_refs: v(&[REFEDS_MFA]),
            mfa_acrs: v(&[REFEDS_MFA, MS_MULTIPLEAUTHN]),
            has_signal: true,
            ..Default::default()
        },
    };
    if !custom.is_empty() {
        m.class_refs = custom.to_vec();
        m.mfa_acrs.extend(custom.iter().cloned());
        m.has_signal = true;
    }
    m
}

/// The verdict on one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub level: Level,
    /// What the IdP's verified answer said (for the trace): amr and acr as received.
    pub evidence: String,
}

/// Reads the IdP's verified answer: `amr` (normalized RFC 8176 values) and its `acr` /
/// `AuthnContextClassRef`. `idp_enforced`: the operator marked the connection
/// `mfa_enforced_by_idp` (a login without a signal then reaches [`Level::IdpEnforced`]).
pub fn assess(vendor: &VendorMfa, amr: &[String], upstream_acr: Option<&str>, idp_enforced: bool) -> Assessment {
    let acr_mfa = upstream_acr.is_some_and(|a| vendor.mfa_acrs.iter().any(|m| m == a));
    let level = if amr_shows_mfa(amr) || acr_mfa {
        Level::Mfa
    } else if idp_enforced {
        Level::IdpEnforced
    } else {
        Level::Basic
    };
    let evidence =
        format!("amr [{}], acr {}", amr.join(", "), upstream_acr.map(short).unwrap_or_else(|| "(none)".into()));
    Assessment { level, evidence }
}

/// The fix for a login that had to show MFA and did not.
pub fn fix(vendor: &VendorMfa, kind: &str, preset: &str, conn: &str) -> String {
    if !vendor.has_signal {
        return format!(
            "The {preset} preset gives fedgate no way to see MFA ({kind}). Enforce MFA for this app at the identity provider (Google Workspace: 2-Step Verification enforcement), then mark connection {conn} mfa_enforced_by_idp: true; or set its mfa to off. See docs/tokens.md#mfa."
        );
    }
    let asked = if !vendor.acr_values.is_empty() {
        format!("fedgate asked for acr_values {}", vendor.acr_values.join(" "))
    } else if !vendor.class_refs.is_empty() {
        format!("fedgate asked for the AuthnContextClassRef {}", vendor.class_refs.join(" or "))
    } else if vendor.claims_amr {
        "fedgate asked for the amr claim".to_string()
    } else {
        "fedgate asked for MFA".to_string()
    };
    let vendor_fix = match preset {
        "entra" => " Entra ID: require MFA with a Conditional Access policy for this app; OIDC: add the optional claim amr to the ID token (or use the v1.0 token); SAML: the assertion carries authnmethodsreferences.",
        "okta" => " Okta: require MFA in the app's authentication policy; OIDC tokens carry amr by default.",
        "adfs" => " AD FS: enable an additional authentication method and an access control policy requiring MFA for this relying party.",
        _ => "",
    };
    format!(
        "Require MFA for this application at the identity provider of connection {conn} ({asked}; the answer must show it: amr mfa, or one of {}).{vendor_fix} If the tenant does not need MFA for this connection, set the connection's mfa to off.",
        if vendor.mfa_acrs.is_empty() { "the preset's values".to_string() } else { vendor.mfa_acrs.join(", ") }
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(xs: &[&str]) -> Vec<String> {
        v(xs)
    }

    /// Every captured vendor shape (idp-fixtures/mfa/shapes.json) gets the `acr` it documents.
    #[test]
    fn vendor_shapes() {
        let shapes: serde_json::Value =
            serde_json::from_str(include_str!("../../idp-fixtures/mfa/shapes.json")).unwrap();
        for s in shapes.as_array().unwrap() {
            let preset = s["preset"].clone();
            let got = if s["protocol"] == "oidc" {
                let preset: Preset = serde_json::from_value(preset).unwrap();
                let amr: Vec<String> = serde_json::from_value(s["answer"]["amr"].clone()).unwrap_or_default();
                assess(&oidc_vendor(preset, &[]), &amr, s["answer"]["acr"].as_str(), false)
            } else {
                let preset: SamlPreset = serde_json::from_value(preset).unwrap();
                let attrs: std::collections::BTreeMap<String, Vec<String>> =
                    serde_json::from_value(s["attributes"].clone()).unwrap();
                let view = crate::claims::saml::SamlAssertionView {
                    issuer: "https://idp.test",
                    name_id: Some("u1"),
                    name_id_format: None,
                    attributes: &attrs,
                    authn_context: s["authn_context"].as_str(),
                    session_index: None,
                };
                let amr = crate::claims::saml::amr(&view);
                assess(&saml_vendor(preset, &[]), &amr, s["authn_context"].as_str(), false)
            };
            assert_eq!(got.level.acr(), s["expect"].as_str().unwrap(), "{s} -> {got:?}");
        }
    }

    #[test]
    fn overrides() {
        assert!(MfaOverride::Inherit.required(MfaPolicy::Required));
        assert!(!MfaOverride::Inherit.required(MfaPolicy::Off));
        assert!(!MfaOverride::Off.required(MfaPolicy::Required));
        assert!(MfaOverride::Required.required(MfaPolicy::Off));
    }

    #[test]
    fn acr_values_are_parsed_strictly() {
        assert_eq!(parse_acr_values("").unwrap(), None);
        assert_eq!(parse_acr_values(ACR_MFA).unwrap(), Some(Level::Mfa));
        assert_eq!(parse_acr_values(&format!("{ACR_MFA} {ACR_MFA_IDP}")).unwrap(), Some(Level::IdpEnforced));
        assert!(parse_acr_values("mfa").unwrap_err().contains("unsupported acr value mfa"));
        assert!(Level::Mfa > Level::IdpEnforced && Level::IdpEnforced > Level::Basic);
    }

    #[test]
    fn amr_mfa() {
        assert!(amr_shows_mfa(&s(&["pwd", "mfa"])));
        assert!(amr_shows_mfa(&s(&["pwd", "otp"])));
        assert!(amr_shows_mfa(&s(&["hwk", "fpt"])));
        assert!(!amr_shows_mfa(&s(&["pwd"])));
        assert!(!amr_shows_mfa(&s(&["otp", "sms"])));
        assert!(!amr_shows_mfa(&s(&["fed"])));
    }

    #[test]
    fn vendor_signals() {
        let okta = oidc_vendor(Preset::Okta, &[]);
        assert_eq!(okta.acr_values, s(&["urn:okta:loa:2fa:any"]));
        assert_eq!(assess(&okta, &s(&["pwd"]), Some("urn:okta:loa:2fa:any"), false).level, Level::Mfa);
        assert_eq!(assess(&okta, &s(&["pwd"]), Some("urn:okta:loa:1fa:any"), false).level, Level::Basic);
        let google = oidc_vendor(Preset::Google, &[]);
        assert!(!google.has_signal);
        assert_eq!(assess(&google, &[], None, true).level, Level::IdpEnforced);
        // A real signal wins over the operator's word.
        assert_eq!(assess(&google, &s(&["mfa"]), None, true).level, Level::Mfa);
        let adfs = saml_vendor(SamlPreset::Adfs, &[]);
        assert_eq!(adfs.class_refs, s(&[MS_MULTIPLEAUTHN]));
        assert!(saml_vendor(SamlPreset::Entra, &[]).class_refs.is_empty());
        let custom = oidc_vendor(Preset::Keycloak, &s(&["gold"]));
        assert_eq!(custom.acr_values, s(&["gold"]));
        assert_eq!(assess(&custom, &[], Some("gold"), false).level, Level::Mfa);
        assert!(fix(&google, "oidc", "google", "c").contains("mfa_enforced_by_idp"));
    }
}
