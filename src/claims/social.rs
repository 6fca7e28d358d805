//! Pure functions for the social providers that are not (only) OpenID Connect: GitHub's REST
//! answers and Apple's first-login `user` form field become an [`UpstreamIdentity`]. No I/O.
use super::oidc::{Mapped, Rejected};
use super::UpstreamIdentity;
use crate::error_code::ErrorCode;
use serde_json::{Map, Value};

/// GitHub: `GET /user` and `GET /user/emails`. The subject is the numeric user id (stable; the
/// login name can be changed and then taken by someone else). The email is the primary address
/// only when GitHub says it is verified; without one the login is refused.
pub fn github(user: &Value, emails: &Value) -> Result<Mapped, Rejected> {
    let id = match user.get("id") {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        _ => {
            return Err(Rejected {
                code: ErrorCode::SubjectMissing,
                detail: "GitHub's /user answer has no numeric id".into(),
                fix: "Check the API base URL of the connection (it must be GitHub's REST API)".into(),
            })
        }
    };
    let primary = emails.as_array().and_then(|a| a.iter().find(|e| e.get("primary") == Some(&Value::Bool(true))));
    let email = match primary {
        Some(e) if e.get("verified") == Some(&Value::Bool(true)) => e.get("email").and_then(Value::as_str),
        _ => None,
    };
    let Some(email) = email else {
        return Err(Rejected {
            code: ErrorCode::GithubEmailUnverified,
            detail: "the GitHub account has no verified primary email address".into(),
            fix: "The person verifies their primary email address at github.com/settings/emails and signs in again (the connection needs the user:email scope)".into(),
        });
    };
    let login = user.get("login").and_then(Value::as_str).map(str::to_string);
    let name = user.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()).map(str::to_string);
    let mut attributes = Map::new();
    if let Some(l) = &login {
        attributes.insert("login".into(), Value::String(l.clone()));
    }
    Ok(Mapped {
        identity: UpstreamIdentity {
            subject: id,
            email: Some(email.trim().to_lowercase()),
            email_verified: true,
            name: name.or(login),
            groups: Vec::new(),
            amr: vec!["fed".into()],
            attributes: Value::Object(attributes),
            ..UpstreamIdentity::default()
        },
        notes: Vec::new(),
    })
}

/// Apple sends the person's name only once, on the first authorization, as the `user` form
/// field (`{"name": {"firstName", "lastName"}, "email"}`) — unsigned, so it fills only the name,
/// never the email or the subject (those come from the verified ID token). Later logins carry
/// no name and leave the stored one alone.
pub fn apple_user(identity: &mut UpstreamIdentity, user_field: Option<&str>) {
    let Some(user) = user_field.and_then(|u| serde_json::from_str::<Value>(u).ok()) else {
        return;
    };
    let part = |k: &str| {
        user.get("name")
            .and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(256).collect::<String>())
    };
    let (given, family) = (part("firstName"), part("lastName"));
    if identity.given_name.is_none() {
        identity.given_name = given.clone();
    }
    if identity.family_name.is_none() {
        identity.family_name = family.clone();
    }
    if identity.name.is_none() {
        let full = [given, family].into_iter().flatten().collect::<Vec<_>>().join(" ");
        identity.name = (!full.is_empty()).then_some(full);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_subject_is_the_id_and_email_must_be_verified() {
        let user = json!({"id": 583231, "login": "octocat", "name": null});
        let emails = json!([{"email": "old@x.test", "primary": false, "verified": true},
                            {"email": "Octo@X.test", "primary": true, "verified": true}]);
        let m = github(&user, &emails).unwrap();
        assert_eq!(m.identity.subject, "583231");
        assert_eq!(m.identity.email.as_deref(), Some("octo@x.test"));
        assert!(m.identity.email_verified);
        assert_eq!(m.identity.name.as_deref(), Some("octocat"));
        let emails = json!([{"email": "octo@x.test", "primary": true, "verified": false},
                            {"email": "other@x.test", "primary": false, "verified": true}]);
        assert_eq!(github(&user, &emails).unwrap_err().code, ErrorCode::GithubEmailUnverified);
        assert_eq!(github(&json!({"login": "octocat"}), &json!([])).unwrap_err().code, ErrorCode::SubjectMissing);
    }

    #[test]
    fn apple_user_fills_the_name_only() {
        let mut i = UpstreamIdentity {
            subject: "s".into(),
            email: Some("a@privaterelay.appleid.com".into()),
            ..Default::default()
        };
        apple_user(&mut i, Some(r#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"evil@x.test"}"#));
        assert_eq!((i.name.as_deref(), i.given_name.as_deref()), (Some("Ada Lovelace"), Some("Ada")));
        assert_eq!(i.email.as_deref(), Some("a@privaterelay.appleid.com"));
        let mut j = UpstreamIdentity::default();
        apple_user(&mut j, Some("not json"));
        apple_user(&mut j, None);
        assert_eq!(j.name, None);
    }
}
