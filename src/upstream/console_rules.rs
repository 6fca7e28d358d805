//! What identity provider admin consoles accept: the rules Okta, Entra ID, Google Workspace,
//! AD FS, OneLogin, JumpCloud and Ping enforce on the values fedgate hands an administrator to
//! paste (ACS URL, SP entity ID, SP metadata URL, OIDC redirect URI, SCIM base URL) and on the
//! protocol values fedgate sends (RelayState, AuthnRequest ID, NameIDPolicy), one table with the
//! source of each rule. Tests hold every value fedgate produces to the table; the admin API shows
//! a warning when a connection's values break a rule (a connection still on the underscore URL
//! form, an issuer whose host breaks one). docs/connections/saml.md explains the rules for admins.
use roxmltree::Document;

/// A kind of value an IdP admin (or the IdP itself) receives from fedgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    AcsUrl,
    SpEntityId,
    SpMetadataUrl,
    OidcRedirectUri,
    ScimBaseUrl,
    RelayState,
    AuthnRequestId,
}

impl Value {
    /// The admin API field name.
    pub fn field(self) -> &'static str {
        match self {
            Value::AcsUrl => "acs_url",
            Value::SpEntityId => "sp_entity_id",
            Value::SpMetadataUrl => "sp_metadata_url",
            Value::OidcRedirectUri => "redirect_uri",
            Value::ScimBaseUrl => "scim_base_url",
            Value::RelayState => "RelayState",
            Value::AuthnRequestId => "AuthnRequest ID",
        }
    }
}

/// One rule of one or more consoles (or of a specification).
pub struct Rule {
    pub id: &'static str,
    /// What the rule says.
    pub says: &'static str,
    /// Where it is written (confidence as in the research notes: documented unless marked).
    pub source: &'static str,
    pub applies_to: &'static [Value],
    /// Whether a value follows the rule.
    pub check: fn(&str) -> bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish_non_exhaustive()
    }
}

const URLS: &[Value] =
    &[Value::AcsUrl, Value::SpEntityId, Value::SpMetadataUrl, Value::OidcRedirectUri, Value::ScimBaseUrl];

fn parsed(v: &str) -> Option<url::Url> {
    url::Url::parse(v).ok()
}

fn https(v: &str) -> bool {
    v.starts_with("https://") && parsed(v).is_some_and(|u| u.scheme() == "https")
}

fn no_query_or_fragment(v: &str) -> bool {
    !v.contains('?') && !v.contains('#')
}

fn plain_ascii(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_graphic()) && !v.contains('%')
}

fn lowercase_path(v: &str) -> bool {
    parsed(v).is_some_and(|u| {
        u.path().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'/')
    })
}

fn host_is_dns_name(v: &str) -> bool {
    match parsed(v).as_ref().and_then(url::Url::host) {
        Some(url::Host::Domain(d)) => {
            !d.is_empty()
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
        }
        _ => false,
    }
}

fn ncname(v: &str) -> bool {
    let mut chars = v.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The rules, with their sources (see docs/connections/saml.md for the research behind them).
pub const RULES: &[Rule] = &[
    Rule {
        id: "https",
        says: "https scheme",
        source: "Entra ID redirect URI (reply URL) restrictions: https only, http for localhost (learn.microsoft.com/entra/identity-platform/reply-url); Google Workspace custom SAML app: the ACS URL must start with https://; Okta OIN: ACS URL and SCIM base URL https (okta-developer-docs, submit-oin-app); AD FS refuses http ACS endpoints (reported)",
        applies_to: URLS,
        check: https,
    },
    Rule {
        id: "no_underscore",
        says: "no underscore anywhere in the URL",
        source: "Okta App Integration Wizard SAML field reference: the Single sign-on URL must not contain underscores (help.okta.com, aiw-saml-reference.htm, Classic and Identity Engine); fedgate applies it to every URL it hands out",
        applies_to: URLS,
        check: |v| !v.contains('_'),
    },
    Rule {
        id: "entra_max_256",
        says: "at most 256 characters",
        source: "Entra ID redirect URI restrictions: 256 characters per URI (learn.microsoft.com/entra/identity-platform/reply-url)",
        applies_to: URLS,
        check: |v| v.chars().count() <= 256,
    },
    Rule {
        id: "okta_max_1024",
        says: "at most 1024 characters",
        source: "Okta OIN: default and indexed ACS URLs and the SCIM base URL at most 1024 characters (okta-developer-docs, submit-oin-app protocol properties)",
        applies_to: &[Value::AcsUrl, Value::ScimBaseUrl],
        check: |v| v.chars().count() <= 1024,
    },
    Rule {
        id: "entra_characters",
        says: "none of ! $ ' ( ) , ;",
        source: "Entra ID redirect URI restrictions: the characters ! $ ' ( ) , ; are not supported (learn.microsoft.com/entra/identity-platform/reply-url)",
        applies_to: URLS,
        check: |v| !v.contains(['!', '$', '\'', '(', ')', ',', ';']),
    },
    Rule {
        id: "no_query_or_fragment",
        says: "no query string and no fragment",
        source: "Entra ID: query strings only in apps for work or school accounts only; Okta OIDC redirect URIs: absolute, no fragment; PingOne redirect URIs: no fragment",
        applies_to: URLS,
        check: no_query_or_fragment,
    },
    Rule {
        id: "no_trailing_slash",
        says: "no trailing slash",
        source: "Entra ID app ID URIs must not end in / (entra-docs, entra-identifier-uri-patterns); Microsoft Graph refuses identifierUris ending in / (reported)",
        applies_to: URLS,
        check: |v| !v.ends_with('/'),
    },
    Rule {
        id: "plain_ascii",
        says: "printable ASCII, no spaces, no percent-encoding",
        source: "RFC 3986; OneLogin's ACS URL Validator is a regular expression the admin writes from the URL (reported): escapes and unusual characters make it fragile",
        applies_to: URLS,
        check: plain_ascii,
    },
    Rule {
        id: "lowercase_path",
        says: "path of lowercase a-z, 0-9, - and / only",
        source: "Entra ID and Google Workspace match URLs and entity IDs case-sensitively; OneLogin's validator regex must escape metacharacters (reported); fedgate's safe format (research notes, table 1)",
        applies_to: URLS,
        check: lowercase_path,
    },
    Rule {
        id: "dns_host",
        says: "host is a lowercase DNS name (letters, digits, hyphens), not an IP address",
        source: "Okta's underscore rule covers the whole URL, host included; case-sensitive matching at Entra ID and Google; fedgate's safe format (research notes, table 1)",
        applies_to: URLS,
        check: host_is_dns_name,
    },
    Rule {
        id: "relay_state_80_bytes",
        says: "RelayState at most 80 bytes",
        source: "SAML 2.0 Bindings §3.4.3 (HTTP-Redirect) and §3.5.3 (HTTP-POST): RelayState MUST NOT exceed 80 bytes; enforced by some IdPs and WAFs (reported)",
        applies_to: &[Value::RelayState],
        check: |v| !v.is_empty() && v.len() <= 80,
    },
    Rule {
        id: "relay_state_opaque",
        says: "RelayState is an opaque token of letters, digits, - and _ (never a URL)",
        source: "SAML 2.0 Bindings §3.4.3: the value should be integrity-protected; the research notes recommend an opaque handle so no encoding changes its size",
        applies_to: &[Value::RelayState],
        check: |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
    },
    Rule {
        id: "xs_id",
        says: "an xs:ID (NCName): a letter or _ first, then letters, digits, . - _",
        source: "SAML 2.0 Core §1.3.4 (ID is xs:ID, XML Schema Part 2 §3.3.8)",
        applies_to: &[Value::AuthnRequestId],
        check: ncname,
    },
    Rule {
        id: "entra_id_not_digit_first",
        says: "the AuthnRequest ID does not start with a digit",
        source: "Entra ID SAML single sign-on protocol: the ID attribute must not begin with a number (learn.microsoft.com/entra/identity-platform/single-sign-on-saml-protocol)",
        applies_to: &[Value::AuthnRequestId],
        check: |v| !v.starts_with(|c: char| c.is_ascii_digit()),
    },
];

/// The rules `value` of kind `kind` breaks.
pub fn violations(kind: Value, value: &str) -> Vec<&'static Rule> {
    RULES.iter().filter(|r| r.applies_to.contains(&kind) && !(r.check)(value)).collect()
}

/// One readable line per broken rule of each value, e.g. for an admin API warning.
pub fn describe(values: &[(Value, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, v) in values {
        for r in violations(*kind, v) {
            out.push(format!("{} {v} breaks an identity provider console rule: {} ({})", kind.field(), r.says, r.id));
        }
    }
    out
}

/// Each connection needs its own SP entity ID: Entra ID (a second app instance cannot reuse an
/// identifier), Google Workspace (400 duplicate entity id), AD FS (no two relying-party trusts
/// share an identifier), PingOne (spEntityId unique in an environment).
pub fn entity_ids_distinct(ids: &[&str]) -> bool {
    let set: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    set.len() == ids.len()
}

/// The NameIDPolicy formats Entra ID accepts in a request (any other is an error).
pub const ENTRA_NAMEID_FORMATS: [&str; 4] = [
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
];

/// Checks an AuthnRequest (XML) the way Entra ID, Okta and Google read it: its ID follows the
/// [`Value::AuthnRequestId`] rules; a NameIDPolicy carries no Format or one of
/// [`ENTRA_NAMEID_FORMATS`] (Entra ID; Okta requires a sent Format to match the app's); no
/// `Subject` (Entra ID refuses it); the Issuer is exactly `sp_entity_id` (Entra ID, Google: case-
/// sensitive match with the configured identifier); the AssertionConsumerServiceURL is exactly
/// `acs_url`. Returns the problems found.
pub fn authn_request_problems(xml: &str, sp_entity_id: &str, acs_url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(doc) = Document::parse(xml) else {
        return vec!["the AuthnRequest is not XML".into()];
    };
    let root = doc.root_element();
    if root.tag_name().name() != "AuthnRequest" {
        out.push("the root is not an AuthnRequest".into());
    }
    let id = root.attribute("ID").unwrap_or_default();
    for r in violations(Value::AuthnRequestId, id) {
        out.push(format!("ID {id}: {}", r.says));
    }
    if root.attribute("AssertionConsumerServiceURL") != Some(acs_url) {
        out.push(format!("AssertionConsumerServiceURL is not {acs_url}"));
    }
    let issuer = root.children().find(|n| n.tag_name().name() == "Issuer").and_then(|n| n.text());
    if issuer != Some(sp_entity_id) {
        out.push(format!("Issuer is {issuer:?}, not exactly {sp_entity_id}"));
    }
    if root.descendants().any(|n| n.tag_name().name() == "Subject") {
        out.push("the request has a Subject (Entra ID refuses it)".into());
    }
    for p in root.children().filter(|n| n.tag_name().name() == "NameIDPolicy") {
        if let Some(f) = p.attribute("Format") {
            if !ENTRA_NAMEID_FORMATS.contains(&f) {
                out.push(format!("NameIDPolicy Format {f} is not one Entra ID accepts"));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::SystemRng;
    use crate::ids::{ConnectionId, LoginId};
    use crate::upstream::saml::{acs_url, sp_entity_id, SpUrlForm};
    use proptest::prelude::*;

    const ISSUER: &str = "https://sso.example.com";

    fn all_values(issuer: &str, conn: &str, login: &str) -> Vec<(Value, String)> {
        vec![
            (Value::AcsUrl, acs_url(issuer, conn, SpUrlForm::Hyphen)),
            (Value::SpEntityId, sp_entity_id(issuer, conn, SpUrlForm::Hyphen)),
            (Value::SpMetadataUrl, sp_entity_id(issuer, conn, SpUrlForm::Hyphen)),
            (Value::OidcRedirectUri, crate::upstream::oidc::connector::callback_url(issuer)),
            // The AuthnRequest ID and the RelayState are the login id.
            (Value::RelayState, login.to_string()),
            (Value::AuthnRequestId, login.to_string()),
        ]
    }

    #[test]
    fn every_value_fedgate_hands_out_passes_every_rule() {
        let conn = ConnectionId::new(1_767_225_600_000, &SystemRng).to_string();
        let login = LoginId::new(&SystemRng).to_string();
        for (kind, v) in all_values(ISSUER, &conn, &login) {
            let broken: Vec<&str> = violations(kind, &v).iter().map(|r| r.id).collect();
            assert!(broken.is_empty(), "{} {v} breaks {broken:?}", kind.field());
        }
        assert_eq!(acs_url(ISSUER, &conn, SpUrlForm::Hyphen), format!("{ISSUER}/sso/saml/conn-{}/acs", &conn[5..]));
    }

    #[test]
    fn the_underscore_form_is_what_okta_refuses() {
        let conn = ConnectionId::new(1_767_225_600_000, &SystemRng).to_string();
        let legacy = acs_url(ISSUER, &conn, SpUrlForm::Underscore);
        let broken: Vec<&str> = violations(Value::AcsUrl, &legacy).iter().map(|r| r.id).collect();
        assert_eq!(broken, vec!["no_underscore", "lowercase_path"]);
        assert_eq!(describe(&[(Value::AcsUrl, &legacy)]).len(), 2);
    }

    #[test]
    fn the_rules_catch_what_they_say() {
        let bad = [
            (Value::AcsUrl, "http://sso.example.com/acs", "https"),
            (Value::AcsUrl, "https://sso.example.com/a_b", "no_underscore"),
            (Value::OidcRedirectUri, &*format!("https://sso.example.com/{}", "a".repeat(260)), "entra_max_256"),
            (Value::AcsUrl, "https://sso.example.com/a(b)", "entra_characters"),
            (Value::AcsUrl, "https://sso.example.com/acs?x=1", "no_query_or_fragment"),
            (Value::SpEntityId, "https://sso.example.com/md/", "no_trailing_slash"),
            (Value::AcsUrl, "https://sso.example.com/a%20b", "plain_ascii"),
            (Value::AcsUrl, "https://sso.example.com/Acs", "lowercase_path"),
            (Value::AcsUrl, "https://SSO_host.example.com/acs", "dns_host"),
            (Value::AcsUrl, "https://10.0.0.1/acs", "dns_host"),
            (Value::RelayState, &*"r".repeat(81), "relay_state_80_bytes"),
            (Value::RelayState, "https://app/x", "relay_state_opaque"),
            (Value::AuthnRequestId, "1abc", "xs_id"),
            (Value::AuthnRequestId, "1abc", "entra_id_not_digit_first"),
        ];
        for (kind, v, rule) in bad {
            let broken: Vec<&str> = violations(kind, v).iter().map(|r| r.id).collect();
            assert!(broken.contains(&rule), "{v}: {broken:?} lacks {rule}");
        }
        assert!(entity_ids_distinct(&["a", "b"]));
        assert!(!entity_ids_distinct(&["a", "a"]));
    }

    #[test]
    fn authn_request_checks() {
        let ok = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="lgn_x" AssertionConsumerServiceURL="https://s/acs"><saml:Issuer>https://s/md</saml:Issuer><samlp:NameIDPolicy AllowCreate="true"/></samlp:AuthnRequest>"#;
        assert!(authn_request_problems(ok, "https://s/md", "https://s/acs").is_empty());
        let bad = ok
            .replace("ID=\"lgn_x\"", "ID=\"9x\"")
            .replace("AllowCreate=\"true\"", "Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos\"");
        assert_eq!(authn_request_problems(&bad, "https://s/md", "https://s/acs").len(), 3);
        assert_eq!(authn_request_problems(ok, "https://S/md", "https://s/acs").len(), 1, "case-sensitive issuer");
    }

    proptest! {
        #[test]
        fn any_connection_and_login_id_pass(ms in 0i64..(1i64 << 47), seed in any::<u64>()) {
            struct Fixed(u64);
            impl crate::clock::Rng for Fixed {
                fn fill(&self, buf: &mut [u8]) {
                    let mut x = self.0;
                    for b in buf.iter_mut() {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        *b = (x >> 33) as u8;
                    }
                }
            }
            let conn = ConnectionId::new(ms, &Fixed(seed)).to_string();
            let login = LoginId::new(&Fixed(seed ^ 0x5555)).to_string();
            for (kind, v) in all_values(ISSUER, &conn, &login) {
                prop_assert!(violations(kind, &v).is_empty(), "{} {}", kind.field(), v);
            }
        }
    }
}
