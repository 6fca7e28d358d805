//! The live provisioning check's narration: one SCIM request-log row -> what it means, in words
//! an IT admin understands ("Entra ID's connection test succeeded", "a group push failed: ...").
//! Pure: no database, no clock. The texts are catalogue entries (`scim_live.*`), chosen here by
//! key and printed by `portal_scim_feed.html`.
use crate::store::entities::scim_request;
use serde::Serialize;

/// The provisioning system the admin picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    Okta,
    Entra,
    Jumpcloud,
    Onelogin,
    Generic,
}

impl Vendor {
    pub const ALL: [Vendor; 5] = [Vendor::Okta, Vendor::Entra, Vendor::Jumpcloud, Vendor::Onelogin, Vendor::Generic];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Okta => "okta",
            Vendor::Entra => "entra",
            Vendor::Jumpcloud => "jumpcloud",
            Vendor::Onelogin => "onelogin",
            Vendor::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The product's name, as its admins know it.
    pub fn display(self) -> &'static str {
        match self {
            Vendor::Okta => "Okta",
            Vendor::Entra => "Entra ID",
            Vendor::Jumpcloud => "JumpCloud",
            Vendor::Onelogin => "OneLogin",
            Vendor::Generic => "Your identity provider",
        }
    }
}

/// How a line looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Ok,
    Info,
    Warn,
    Fail,
}

/// One narrated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The log row's id (the feed's cursor).
    pub id: String,
    pub at: i64,
    pub tone: Tone,
    /// What happened: `scim_live.<key>` (placeholders `who`, and `subject` for the keys that
    /// name one).
    pub key: &'static str,
    /// Who sent it (the vendor's display name).
    pub who: &'static str,
    /// The user or group the request named, when the request line shows it.
    pub subject: Option<String>,
    /// What to do about it: `scim_live.fix_<fix>` (no placeholders).
    pub fix: Option<&'static str>,
    /// The request as it arrived, without the base URL: `GET /Users?filter=...` (decoded).
    pub request: String,
    pub status: i32,
    pub code: Option<String>,
}

/// The resource part of a logged path (`/scim/v2/<tenant>/Users/abc?x` -> `/Users/abc?x`).
fn relative(path: &str) -> &str {
    let mut slashes = 0;
    for (i, c) in path.char_indices() {
        if c == '/' {
            slashes += 1;
            if slashes == 4 {
                return &path[i..];
            }
        }
    }
    "/"
}

/// `eq "value"` of a `userName` / `displayName` / `externalId` filter.
fn filtered_value(filter: &str) -> Option<(String, String)> {
    let lower = filter.to_ascii_lowercase();
    let eq = lower.find(" eq ")?;
    let attr = filter[..eq].trim().to_string();
    let value = filter[eq + 4..].trim().trim_matches('"').to_string();
    Some((attr, value))
}

/// Whether a looked-up value looks made up for a connection test (a GUID, or random hex).
fn looks_random(v: &str) -> bool {
    let local = v.split('@').next().unwrap_or(v);
    let hexish = local.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').count();
    local.len() >= 16 && hexish * 10 >= local.len() * 9
}

/// Narrates one request of the log. `vendor`: what the admin picked; a request carrying Entra's
/// `aadOptscim062020` flag is Entra's whatever the pick.
pub fn narrate(row: &scim_request::Model, vendor: Vendor) -> Line {
    let rel = relative(&row.path);
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let vendor =
        if params.iter().any(|(k, _)| k.eq_ignore_ascii_case("aadOptscim062020")) { Vendor::Entra } else { vendor };
    let param = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let decoded = if query.is_empty() {
        format!("{} {path}", row.method)
    } else {
        let q: Vec<String> =
            params.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect();
        format!("{} {path}?{}", row.method, q.join("&"))
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let resource = segments.first().copied().unwrap_or("");
    let has_id = segments.len() >= 2 && segments[1] != ".search";
    let is_users = resource.eq_ignore_ascii_case("Users");
    let is_groups = resource.eq_ignore_ascii_case("Groups");
    let status = row.status;
    let code = row.error_code.clone();
    let filter = param("filter").and_then(filtered_value);
    let mut subject = None;

    let (tone, key, fix): (Tone, &'static str, Option<&'static str>) = match (row.method.as_str(), status) {
        (_, 401) => (Tone::Fail, "unauthorized", Some("token")),
        (_, 403) => (Tone::Fail, "forbidden", Some("token")),
        (_, 429) => (Tone::Warn, "rate_limited", Some("rate")),
        (_, s) if s >= 500 => (Tone::Fail, "server_error", Some("server")),
        ("GET", 200..=299) if ["ServiceProviderConfig", "Schemas", "ResourceTypes"].contains(&resource) => {
            (Tone::Ok, "discovery", None)
        }
        ("GET", 200..=299) if is_users && !has_id => match &filter {
            Some((_, v)) if looks_random(v) => (Tone::Ok, "test_ok", None),
            Some((_, v)) => {
                subject = Some(v.clone());
                (Tone::Info, "user_lookup", None)
            }
            None if vendor == Vendor::Okta || param("count") == Some("1") || param("count") == Some("2") => {
                (Tone::Ok, "test_ok", None)
            }
            None => (Tone::Info, "users_listed", None),
        },
        ("GET", 200..=299) if is_groups && !has_id => match &filter {
            Some((_, v)) => {
                subject = Some(v.clone());
                (Tone::Info, "group_lookup", None)
            }
            None => (Tone::Info, "groups_listed", None),
        },
        ("GET", 200..=299) if is_users => (Tone::Info, "user_read", None),
        ("GET", 200..=299) if is_groups => (Tone::Info, "group_read", None),
        ("GET", 304) => (Tone::Info, "unchanged", None),
        ("POST", 201) if is_users => (Tone::Ok, "user_created", None),
        ("POST", 201) if is_groups => (Tone::Ok, "group_created", None),
        ("POST", 200..=299) => (Tone::Info, "searched", None),
        ("PUT" | "PATCH", 200..=299) if is_users => (Tone::Ok, "user_updated", None),
        ("PUT" | "PATCH", 200..=299) if is_groups => (Tone::Ok, "group_updated", None),
        ("DELETE", 200..=299) if is_users => (Tone::Ok, "user_deleted", None),
        ("DELETE", 200..=299) if is_groups => (Tone::Ok, "group_deleted", None),
        (_, 409) if is_users => (Tone::Warn, "user_conflict", Some("uniqueness")),
        (_, 409) => (Tone::Warn, "group_conflict", Some("uniqueness")),
        (_, 404) if is_users => (Tone::Warn, "user_not_found", Some("not_found")),
        (_, 404) if is_groups => (Tone::Warn, "group_not_found", Some("not_found")),
        (_, 412) => (Tone::Warn, "conflict_version", Some("version")),
        (_, 400..=499) => {
            let fix = match code.as_deref() {
                Some("invalidValue") if is_groups => "group_member",
                Some("invalidValue") => "value",
                Some("invalidFilter") => "filter",
                Some("invalidPath" | "noTarget") => "path",
                Some("invalidSyntax") => "syntax",
                Some("mutability") => "mutability",
                Some("uniqueness") => "uniqueness",
                _ => "generic",
            };
            let key = if is_groups {
                "group_failed"
            } else if is_users {
                "user_failed"
            } else {
                "request_failed"
            };
            (Tone::Fail, key, Some(fix))
        }
        _ => (Tone::Info, "other", None),
    };
    Line {
        id: row.id.clone(),
        at: row.created_at,
        tone,
        key,
        who: vendor.display(),
        subject,
        fix,
        request: decoded,
        status,
        code,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(method: &str, path: &str, status: i32, code: Option<&str>) -> scim_request::Model {
        scim_request::Model {
            id: "scr_1".into(),
            tenant_id: "org_1".into(),
            method: method.into(),
            path: format!("/scim/v2/acme{path}"),
            status,
            duration_us: 100,
            error_code: code.map(str::to_string),
            created_at: 1,
        }
    }

    fn said(
        method: &str,
        path: &str,
        status: i32,
        code: Option<&str>,
        v: Vendor,
    ) -> (Tone, &'static str, &'static str, Option<&'static str>) {
        let l = narrate(&row(method, path, status, code), v);
        (l.tone, l.key, l.who, l.fix)
    }

    #[test]
    fn entra_connection_test() {
        // Entra's "Test Connection": a filter on a random userName, with the aadOptscim flag.
        let l = narrate(
            &row(
                "GET",
                "/Users?aadOptscim062020&filter=userName+eq+%2254b1c2a9-4ef2-4c4d-9d07-6b4c0f1b2f0e%22",
                200,
                None,
            ),
            Vendor::Generic,
        );
        assert_eq!((l.tone, l.key, l.who), (Tone::Ok, "test_ok", "Entra ID"));
        assert_eq!(
            l.request,
            "GET /Users?aadOptscim062020&filter=userName eq \"54b1c2a9-4ef2-4c4d-9d07-6b4c0f1b2f0e\""
        );
        assert_eq!(l.subject, None);
    }

    #[test]
    fn okta_connection_test_and_lookups() {
        assert_eq!(
            said("GET", "/Users?startIndex=1&count=2", 200, None, Vendor::Okta),
            (Tone::Ok, "test_ok", "Okta", None)
        );
        let l = narrate(&row("GET", "/Users?filter=userName%20eq%20%22jane%40acme.com%22", 200, None), Vendor::Okta);
        assert_eq!((l.key, l.subject.as_deref()), ("user_lookup", Some("jane@acme.com")));
        assert_eq!(said("GET", "/ServiceProviderConfig", 200, None, Vendor::Onelogin).1, "discovery");
    }

    #[test]
    fn writes() {
        assert_eq!(said("POST", "/Users", 201, None, Vendor::Okta).1, "user_created");
        assert_eq!(said("POST", "/Groups", 201, None, Vendor::Okta).1, "group_created");
        assert_eq!(said("PATCH", "/Users/usr_1", 200, None, Vendor::Entra).1, "user_updated");
        assert_eq!(said("PUT", "/Groups/grp_1", 200, None, Vendor::Okta).1, "group_updated");
        assert_eq!(said("DELETE", "/Users/usr_1", 204, None, Vendor::Entra).1, "user_deleted");
        assert_eq!(said("POST", "/Users/.search", 200, None, Vendor::Generic).1, "searched");
    }

    #[test]
    fn failures_say_what_to_fix() {
        assert_eq!(
            said("PATCH", "/Groups/grp_1", 400, Some("invalidValue"), Vendor::Okta),
            (Tone::Fail, "group_failed", "Okta", Some("group_member"))
        );
        assert_eq!(said("POST", "/Users", 409, Some("uniqueness"), Vendor::Okta).3, Some("uniqueness"));
        assert_eq!(said("POST", "/Users", 400, Some("invalidSyntax"), Vendor::Okta).3, Some("syntax"));
        assert_eq!(said("GET", "/Users?filter=bad", 400, Some("invalidFilter"), Vendor::Okta).3, Some("filter"));
        assert_eq!(
            said("GET", "/Users", 401, Some("401"), Vendor::Entra),
            (Tone::Fail, "unauthorized", "Entra ID", Some("token"))
        );
        assert_eq!(said("GET", "/Users/usr_x", 404, Some("404"), Vendor::Okta).1, "user_not_found");
        assert_eq!(said("GET", "/Users", 500, Some("500"), Vendor::Okta).3, Some("server"));
        assert_eq!(said("PATCH", "/Users/u", 412, Some("412"), Vendor::Okta).1, "conflict_version");
    }

    #[test]
    fn helpers() {
        assert_eq!(relative("/scim/v2/acme/Users?x=1"), "/Users?x=1");
        assert_eq!(relative("/scim/v2/acme"), "/");
        assert!(looks_random("54b1c2a9-4ef2-4c4d-9d07-6b4c0f1b2f0e"));
        assert!(looks_random("d2e8f1a0b3c4d5e6@contoso.test"));
        assert!(!looks_random("jane@acme.com"));
        assert_eq!(Vendor::parse("entra"), Some(Vendor::Entra));
        assert_eq!(Vendor::parse("x"), None);
    }
}
