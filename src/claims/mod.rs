//! Pure functions: an upstream identity becomes fedgate's normalized identity. No I/O here.
pub mod hook;
pub mod mfa;
pub mod oidc;
pub mod rules;
pub mod saml;
pub mod social;

use std::collections::BTreeMap;

/// The upstream's statement about the person, before normalization. Serializable: a SAML login
/// keeps it on the pending login row between the ACS and the browser's return.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    /// Non-secret upstream claims kept on the identity (issuer, acr, tid, hd...).
    pub attributes: serde_json::Value,
    /// When the person last authenticated at the upstream (unix seconds): the OIDC ID token's
    /// `auth_time`, the SAML `AuthnInstant`. Checked against `prompt=login` / `max_age` and used
    /// as the session's `auth_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

const MAX_GROUPS: usize = 500;
const MAX_FIELD: usize = 256;

/// The protocol-neutral person that every connector produces after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedIdentity {
    /// Stable upstream subject, unique within the connection.
    pub subject: String,
    /// Lower-cased email.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Group names, de-duplicated, in first-seen order.
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    /// Non-secret upstream claims worth keeping (an object, or null).
    pub attributes: serde_json::Value,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().chars().take(MAX_FIELD).collect::<String>()).filter(|s| !s.is_empty())
}

/// Lower-cases and sanity-checks an email address; anything that is not `local@domain` is dropped.
pub fn normalize_email(e: &str) -> Option<String> {
    let e = e.trim().to_lowercase();
    let (local, domain) = e.rsplit_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || e.len() > 320
        || e.chars().any(char::is_whitespace)
    {
        return None;
    }
    Some(e)
}

/// The domain part of an email address, lower-cased.
pub fn email_domain(e: &str) -> Option<String> {
    normalize_email(e).and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_string()))
}

pub fn normalize(u: UpstreamIdentity) -> Result<NormalizedIdentity, &'static str> {
    let subject = u.subject.trim().to_string();
    if subject.is_empty() || subject.len() > 512 {
        return Err("the upstream identity has no usable subject");
    }
    let email = u.email.as_deref().and_then(normalize_email);
    let mut groups: Vec<String> = Vec::new();
    for g in u.groups {
        let g = g.trim().chars().take(MAX_FIELD).collect::<String>();
        if !g.is_empty() && !groups.contains(&g) && groups.len() < MAX_GROUPS {
            groups.push(g);
        }
    }
    Ok(NormalizedIdentity {
        subject,
        email_verified: email.is_some() && u.email_verified,
        email,
        name: clean(u.name),
        given_name: clean(u.given_name),
        family_name: clean(u.family_name),
        groups,
        amr: u.amr,
        attributes: u.attributes,
    })
}

/// Whether the upstream's authentication satisfies what the app asked for, in one place for every
/// connection type: with `prompt=login` the person must have authenticated after the login
/// started (`login_started`, minus `skew`); with `max_age` no longer than `max_age` (plus `skew`)
/// before `now`. `upstream_auth_time` is the ID token's `auth_time` or the SAML `AuthnInstant`;
/// when the app asked for either and the upstream does not say when the person authenticated,
/// the login fails too. `Err` holds the cause for the login trace.
pub fn check_reauthentication(
    prompt: Option<&str>,
    max_age: Option<i64>,
    login_started: i64,
    upstream_auth_time: Option<i64>,
    skew: i64,
    now: i64,
) -> Result<(), String> {
    let prompt_login = prompt.is_some_and(|p| p.split(' ').any(|x| x == "login"));
    if !prompt_login && max_age.is_none() {
        return Ok(());
    }
    let asked = match (prompt_login, max_age) {
        (true, Some(m)) => format!("prompt=login and max_age={m}"),
        (true, None) => "prompt=login".to_string(),
        (false, Some(m)) => format!("max_age={m}"),
        (false, None) => String::new(),
    };
    let Some(at) = upstream_auth_time else {
        return Err(format!(
            "The application asked for {asked}, but the identity provider's answer does not say when the person              authenticated (no auth_time in the ID token, no AuthnInstant in the assertion)."
        ));
    };
    let shown = crate::util::rfc3339(at);
    if prompt_login && at < login_started - skew {
        return Err(format!(
            "The application asked for {asked}, but the identity provider reused an earlier sign-in: the person              authenticated at {shown}, before this login started at {} (clock skew allowed: {skew} s).",
            crate::util::rfc3339(login_started)
        ));
    }
    if let Some(m) = max_age {
        if now - at > m + skew {
            return Err(format!(
                "The application asked for {asked}, but the person authenticated at the identity provider at {shown},                  {} s ago (clock skew allowed: {skew} s).",
                now - at
            ));
        }
    }
    Ok(())
}

/// The upstream's `acr` as the verified answer stated it: the OIDC ID token's `acr`, the SAML
/// assertion's `AuthnContextClassRef` (both kept in the identity's attributes).
pub fn upstream_acr(attributes: &serde_json::Value) -> Option<&str> {
    attributes.get("acr").or_else(|| attributes.get("authn_context")).and_then(serde_json::Value::as_str)
}

/// App role names for a person's groups, from a tenant's group -> roles mapping; de-duplicated,
/// in mapping order.
pub fn roles_for(groups: &[String], mapping: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        for r in mapping.get(g).into_iter().flatten() {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up() -> UpstreamIdentity {
        UpstreamIdentity {
            subject: " s1 ".into(),
            email: Some(" Alice@Example.COM ".into()),
            email_verified: true,
            name: Some("  Alice  ".into()),
            given_name: None,
            family_name: Some("".into()),
            groups: vec!["a".into(), "b".into(), "a".into(), " ".into()],
            amr: vec!["pwd".into()],
            attributes: serde_json::Value::Null,
            auth_time: None,
        }
    }

    #[test]
    fn normalizes_case_whitespace_and_duplicates() {
        let n = normalize(up()).unwrap();
        assert_eq!(n.subject, "s1");
        assert_eq!(n.email.as_deref(), Some("alice@example.com"));
        assert_eq!(n.name.as_deref(), Some("Alice"));
        assert_eq!(n.family_name, None);
        assert_eq!(n.groups, vec!["a", "b"]);
    }

    #[test]
    fn unverified_without_email_and_bad_email_dropped() {
        let mut u = up();
        u.email = Some("not-an-email".into());
        let n = normalize(u).unwrap();
        assert_eq!(n.email, None);
        assert!(!n.email_verified);
        let mut u = up();
        u.subject = "  ".into();
        assert!(normalize(u).is_err());
    }

    #[test]
    fn reauthentication_is_checked_against_the_upstream_time() {
        let (started, now, skew) = (10_000, 10_060, 120);
        // Nothing asked: anything goes, even no time at all.
        assert!(check_reauthentication(None, None, started, None, skew, now).is_ok());
        assert!(check_reauthentication(Some("consent"), None, started, Some(1), skew, now).is_ok());
        // prompt=login: after the login started, minus the skew.
        assert!(check_reauthentication(Some("login"), None, started, Some(started + 30), skew, now).is_ok());
        assert!(check_reauthentication(Some("consent login"), None, started, Some(started - skew), skew, now).is_ok());
        let e = check_reauthentication(Some("login"), None, started, Some(started - skew - 1), skew, now).unwrap_err();
        assert!(e.contains("reused an earlier sign-in"), "{e}");
        // max_age: no older than max_age plus the skew.
        assert!(check_reauthentication(None, Some(300), started, Some(now - 300 - skew), skew, now).is_ok());
        let e = check_reauthentication(None, Some(300), started, Some(now - 301 - skew), skew, now).unwrap_err();
        assert!(e.contains("max_age=300"), "{e}");
        // max_age=0 with a fresh authentication passes within the skew.
        assert!(check_reauthentication(None, Some(0), started, Some(now - 5), skew, now).is_ok());
        // Both: both must hold.
        let e = check_reauthentication(Some("login"), Some(3600), started, Some(started - 600), skew, now).unwrap_err();
        assert!(e.contains("prompt=login and max_age=3600"), "{e}");
        // Asked, but the upstream does not say when.
        for (p, m) in [(Some("login"), None), (None, Some(60))] {
            let e = check_reauthentication(p, m, started, None, skew, now).unwrap_err();
            assert!(e.contains("does not say when"), "{e}");
        }
    }

    #[test]
    fn roles_from_groups() {
        let m = BTreeMap::from([
            ("eng".to_string(), vec!["dev".to_string(), "user".to_string()]),
            ("ops".to_string(), vec!["user".to_string()]),
        ]);
        assert_eq!(roles_for(&["ops".into(), "eng".into(), "x".into()], &m), vec!["user", "dev"]);
    }

    proptest! {
        #[test]
        fn email_normalization_is_idempotent(s in ".{0,80}") {
            if let Some(e) = normalize_email(&s) {
                prop_assert_eq!(normalize_email(&e), Some(e.clone()));
            }
        }
    }
}
