//! Pure functions: the claims of a verified upstream ID token (plus userinfo) become an
//! [`UpstreamIdentity`], following a vendor preset and the connection's custom rules. No I/O.
use super::UpstreamIdentity;
use crate::error_code::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Vendor presets: where each vendor puts the subject, email and groups, and its own checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    #[default]
    Generic,
    Okta,
    /// Microsoft Entra ID: subject `tid:oid`, groups overage detected, `tid` checked.
    Entra,
    /// Google Workspace: `hd` must be one of the connection's hosted domains.
    Google,
    Keycloak,
    Auth0,
    /// Social sign-in with any Microsoft account, personal or work (multi-tenant issuer
    /// `common` / `organizations` / `consumers`): subject `tid:oid`, `iss` checked against the
    /// templated issuer with the token's own `tid`, email verified only with `xms_edov`.
    Microsoft,
    /// Social sign-in with any Google account (Gmail or Workspace): no `hd` requirement,
    /// `email_verified` trusted, `hd` kept as an attribute.
    #[serde(rename = "google_any")]
    GoogleAny,
    /// Sign in with Apple: `response_mode=form_post`, a client secret signed by fedgate (ES256,
    /// the team's key), the name only in the first login's `user` form field, `email_verified`
    /// and `is_private_email` as strings.
    Apple,
}

/// The `tid` of every personal Microsoft account (MSA) token.
pub const MICROSOFT_PERSONAL_TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

impl Preset {
    /// The issuer a social preset uses when the connection does not name one.
    pub fn default_issuer(&self) -> Option<&'static str> {
        match self {
            Preset::Microsoft => Some("https://login.microsoftonline.com/common/v2.0"),
            Preset::GoogleAny => Some("https://accounts.google.com"),
            Preset::Apple => Some("https://appleid.apple.com"),
            _ => None,
        }
    }

    /// Microsoft's directory-based presets (subject `tid:oid`, `tid` checks).
    pub fn is_microsoft(&self) -> bool {
        matches!(self, Preset::Entra | Preset::Microsoft)
    }
}

/// Fields a custom rule can fill.
pub const MAPPABLE: [&str; 7] = ["subject", "email", "email_verified", "name", "given_name", "family_name", "groups"];

/// What the connection says about trust, beyond the claims.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Emails in these domains count as verified even without `email_verified: true`.
    pub trusted_email_domains: Vec<String>,
    /// Google `hd` values accepted (empty: `hd` must be present).
    pub hosted_domains: Vec<String>,
    /// Entra directory (tenant) ids accepted (empty: any, when the issuer is not `common`).
    pub allowed_tenant_ids: Vec<String>,
}

/// Why the claims were refused. `code` is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub code: crate::error_code::ErrorCode,
    pub detail: String,
    pub fix: String,
}

/// The mapped identity and what we noticed on the way.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub identity: UpstreamIdentity,
    /// Non-fatal observations for the login trace (e.g. Entra groups overage).
    pub notes: Vec<String>,
}

/// Looks up a dotted path (`realm_access.roles`) in a JSON object. A key containing dots (as in
/// Auth0's namespaced claims) is tried whole first.
pub fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut cur = claims;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn as_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `true`, `"true"`, `1` or `"1"` (Microsoft sends `xms_edov` as a boolean or a number).
fn as_bool_or_one(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) if s == "1" => true,
        other => as_bool(other),
    }
}

fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| as_string(Some(x))).collect(),
        Some(Value::String(s)) => s.split([',', ' ']).filter(|x| !x.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn default_path(preset: Preset, field: &str) -> &'static str {
    match (preset, field) {
        (_, "subject") => "sub",
        (Preset::Entra, "email") => "email",
        (_, "email") => "email",
        (_, "email_verified") => "email_verified",
        (_, "name") => "name",
        (_, "given_name") => "given_name",
        (_, "family_name") => "family_name",
        (_, "groups") => "groups",
        _ => "",
    }
}

/// Maps verified claims to an upstream identity.
pub fn map_claims(
    preset: Preset,
    rules: &BTreeMap<String, String>,
    claims: &Value,
    policy: &Policy,
) -> Result<Mapped, Rejected> {
    let path = |field: &str| rules.get(field).map(String::as_str).unwrap_or_else(|| default_path(preset, field));
    let get = |field: &str| lookup(claims, path(field));
    let mut notes = Vec::new();
    let mut subject = as_string(get("subject")).unwrap_or_default();
    let mut email = as_string(get("email"));
    let mut groups = as_list(get("groups"));
    // Microsoft's `email` is not verified by Microsoft for work accounts: it is vouched for only
    // when the token says the domain owner verified it (`xms_edov`, an optional claim).
    let mut ms_email_vouched = false;
    match preset {
        Preset::Entra | Preset::Microsoft => {
            ms_email_vouched = email.is_some() && as_bool_or_one(claims.get("xms_edov"));
            let tid = as_string(claims.get("tid"));
            let oid = as_string(claims.get("oid"));
            match (&tid, &oid) {
                (Some(t), Some(o)) if !rules.contains_key("subject") => subject = format!("{t}:{o}"),
                (None, _) => {
                    return Err(Rejected {
                        code: ErrorCode::EntraTidMissing,
                        detail: "the Entra ID token has no tid claim".into(),
                        fix: "Use the v2.0 endpoint (issuer https://login.microsoftonline.com/{tenant}/v2.0)".into(),
                    })
                }
                _ => {}
            }
            if let Some(t) = &tid {
                if !policy.allowed_tenant_ids.is_empty() && !policy.allowed_tenant_ids.iter().any(|a| a == t) {
                    return Err(Rejected {
                        code: ErrorCode::EntraTenantNotAllowed,
                        detail: format!("the token comes from Entra directory {t}, which is not allowed"),
                        fix: format!("Add {t} to allowed_tenant_ids on the connection if this directory is trusted"),
                    });
                }
            }
            if email.is_none() && !rules.contains_key("email") {
                email = as_string(claims.get("preferred_username")).filter(|e| e.contains('@'));
            }
            let overage = claims.get("_claim_names").and_then(|c| c.get("groups")).is_some()
                || claims.get("hasgroups").is_some_and(|v| as_bool(Some(v)));
            if overage {
                notes.push("groups_overage: Entra sent a reference to Microsoft Graph instead of the groups (more than 200 groups); groups were not imported — configure group filtering (\"Groups assigned to the application\") on the app registration".into());
            }
        }
        Preset::Google => {
            let hd = as_string(claims.get("hd"));
            let ok = match &hd {
                Some(h) => {
                    policy.hosted_domains.is_empty() || policy.hosted_domains.iter().any(|d| d.eq_ignore_ascii_case(h))
                }
                None => false,
            };
            if !ok {
                return Err(Rejected {
                    code: ErrorCode::GoogleHdMismatch,
                    detail: format!("the Google account's hosted domain (hd) is {}", hd.as_deref().unwrap_or("missing (a consumer account)")),
                    fix: "Sign in with a Workspace account of the organization, or add its domain to hosted_domains on the connection".into(),
                });
            }
        }
        Preset::GoogleAny | Preset::Apple => {}
        Preset::Keycloak if groups.is_empty() && !rules.contains_key("groups") => {
            groups = as_list(lookup(claims, "realm_access.roles"));
        }
        _ => {}
    }
    if preset == Preset::Keycloak {
        groups = groups.into_iter().map(|g| g.trim_start_matches('/').to_string()).collect();
    }
    if subject.trim().is_empty() {
        return Err(Rejected {
            code: ErrorCode::SubjectMissing,
            detail: format!("the claim {} is missing or empty", path("subject")),
            fix: "Check the subject mapping rule of the connection".into(),
        });
    }
    let email = email.map(|e| e.trim().to_lowercase());
    let domain = email.as_deref().and_then(crate::claims::email_domain);
    let trusted =
        domain.as_ref().is_some_and(|d| policy.trusted_email_domains.iter().any(|t| t.eq_ignore_ascii_case(d)));
    // Microsoft sends no `email_verified`; with the `microsoft` preset only `xms_edov` (or a
    // custom rule) vouches for the address.
    let said = if preset == Preset::Microsoft && !rules.contains_key("email_verified") {
        false
    } else {
        as_bool(get("email_verified"))
    };
    let email_verified = trusted || ms_email_vouched || said;
    let mut attributes = Map::new();
    for k in ["iss", "acr", "amr", "tid", "hd", "idp", "preferred_username", "locale", "is_private_email"] {
        if let Some(v) = claims.get(k) {
            attributes.insert(k.into(), v.clone());
        }
    }
    let amr = as_list(claims.get("amr"));
    Ok(Mapped {
        identity: UpstreamIdentity {
            subject,
            email,
            email_verified,
            name: as_string(get("name")),
            given_name: as_string(get("given_name")),
            family_name: as_string(get("family_name")),
            groups,
            amr: if amr.is_empty() { vec!["fed".into()] } else { amr },
            attributes: Value::Object(attributes),
            // Set by the connector from the verified ID token (never from userinfo).
            auth_time: None,
        },
        notes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generic_and_custom_rules() {
        let c =
            json!({"sub": "s1", "email": "A@X.com", "email_verified": true, "groups": ["g1"], "org": {"team": ["t"]}});
        let m = map_claims(Preset::Generic, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.subject, "s1");
        assert_eq!(m.identity.email.as_deref(), Some("a@x.com"));
        assert!(m.identity.email_verified);
        assert_eq!(m.identity.groups, vec!["g1"]);
        let rules = BTreeMap::from([("groups".to_string(), "org.team".to_string())]);
        let m = map_claims(Preset::Generic, &rules, &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.groups, vec!["t"]);
    }

    #[test]
    fn email_unverified_unless_said_or_trusted() {
        let c = json!({"sub": "s1", "email": "a@x.com"});
        assert!(!map_claims(Preset::Okta, &BTreeMap::new(), &c, &Policy::default()).unwrap().identity.email_verified);
        let p = Policy { trusted_email_domains: vec!["x.com".into()], ..Policy::default() };
        assert!(map_claims(Preset::Okta, &BTreeMap::new(), &c, &p).unwrap().identity.email_verified);
    }

    #[test]
    fn entra_subject_overage_and_tenant() {
        let c = json!({"sub": "pairwise", "tid": "t1", "oid": "o1", "preferred_username": "bob@x.com",
                       "_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}});
        let m = map_claims(Preset::Entra, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.subject, "t1:o1");
        assert_eq!(m.identity.email.as_deref(), Some("bob@x.com"));
        assert!(m.notes[0].starts_with("groups_overage"));
        let p = Policy { allowed_tenant_ids: vec!["t2".into()], ..Policy::default() };
        assert_eq!(map_claims(Preset::Entra, &BTreeMap::new(), &c, &p).unwrap_err().code, "entra_tenant_not_allowed");
    }

    #[test]
    fn microsoft_social_email_trust_and_tenants() {
        let c = json!({"sub": "p", "tid": MICROSOFT_PERSONAL_TID, "oid": "o1", "email": "Bob@Outlook.com", "email_verified": true});
        let m = map_claims(Preset::Microsoft, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.subject, format!("{MICROSOFT_PERSONAL_TID}:o1"));
        assert!(!m.identity.email_verified, "Microsoft's email is not verified without xms_edov");
        let c = json!({"sub": "p", "tid": "t1", "oid": "o1", "email": "bob@x.com", "xms_edov": 1});
        assert!(
            map_claims(Preset::Microsoft, &BTreeMap::new(), &c, &Policy::default()).unwrap().identity.email_verified
        );
        let c = json!({"sub": "p", "tid": "t1", "oid": "o1", "preferred_username": "bob@x.com", "xms_edov": true});
        let m = map_claims(Preset::Microsoft, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.email.as_deref(), Some("bob@x.com"));
        assert!(!m.identity.email_verified, "xms_edov speaks of the email claim, not preferred_username");
        let p = Policy { allowed_tenant_ids: vec!["t2".into()], ..Policy::default() };
        assert_eq!(
            map_claims(Preset::Microsoft, &BTreeMap::new(), &c, &p).unwrap_err().code,
            "entra_tenant_not_allowed"
        );
        let c = json!({"sub": "1", "email": "a@gmail.com", "email_verified": "true"});
        let m = map_claims(Preset::GoogleAny, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert!(m.identity.email_verified);
    }

    #[test]
    fn google_hd_and_keycloak_roles() {
        let c = json!({"sub": "1", "email": "a@x.com", "hd": "x.com"});
        let p = Policy { hosted_domains: vec!["y.com".into()], ..Policy::default() };
        assert_eq!(map_claims(Preset::Google, &BTreeMap::new(), &c, &p).unwrap_err().code, "google_hd_mismatch");
        let p = Policy { hosted_domains: vec!["x.com".into()], ..Policy::default() };
        assert!(map_claims(Preset::Google, &BTreeMap::new(), &c, &p).is_ok());
        let c = json!({"sub": "1", "realm_access": {"roles": ["admin"]}});
        let m = map_claims(Preset::Keycloak, &BTreeMap::new(), &c, &Policy::default()).unwrap();
        assert_eq!(m.identity.groups, vec!["admin"]);
        let c = json!({"sub": "1", "groups": ["/eng"], "https://x.com/roles": ["r"]});
        assert_eq!(
            map_claims(Preset::Keycloak, &BTreeMap::new(), &c, &Policy::default()).unwrap().identity.groups,
            vec!["eng"]
        );
        let rules = BTreeMap::from([("groups".to_string(), "https://x.com/roles".to_string())]);
        assert_eq!(map_claims(Preset::Auth0, &rules, &c, &Policy::default()).unwrap().identity.groups, vec!["r"]);
    }
}
