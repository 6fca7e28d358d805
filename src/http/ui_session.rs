//! Browser sessions of fedgate's own pages for people who are not signing in to an app: the
//! setup portal (the customer's IT admin, opened by a setup link) and the console (the vendor's
//! operator). Shared by both so they are built one way:
//!
//! - the session lives in the database (`ui_sessions`, any instance serves it); the browser
//!   holds a random cookie whose SHA-256 is the key — `__Host-` prefixed with an https issuer,
//!   `HttpOnly`, `SameSite=Strict`, `Path=/`;
//! - an absolute lifetime and an idle timeout (activity pushes it, written at most once a
//!   minute);
//! - a CSRF token for every form, derived from the cookie (`SHA-256("csrf:" + cookie)`,
//!   base64url): nothing to store, unknowable without the cookie, checked in constant time on
//!   every POST ([`UiSession::check_csrf`]).
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{cookie, cookie_name, AppState};
use crate::keys::{constant_time_eq, new_token, sha256_hex};
use crate::store::entities::ui_session::{Model, UiKind};
use actix_web::http::StatusCode;
use base64::Engine;

/// Activity is written at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// The cookie's base name for a kind of session.
pub fn cookie_base(kind: UiKind) -> &'static str {
    match kind {
        UiKind::Portal => "fedgate_portal",
        UiKind::Console => "fedgate_console",
    }
}

/// A live session, as a request sees it.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub row: Model,
    /// The form token of this session (see [`UiSession::check_csrf`]).
    pub csrf: String,
}

fn csrf_of(cookie_value: &str) -> String {
    use aws_lc_rs::digest::{digest, SHA256};
    let d = digest(&SHA256, format!("csrf:{cookie_value}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// How long a session lives, and how long it may sit idle (seconds).
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub ttl: i64,
    pub idle: i64,
}

/// Opens a session and returns it with the cookie to set.
pub async fn open(
    st: &AppState,
    kind: UiKind,
    subject: &str,
    tenant_id: Option<&str>,
    grants: serde_json::Value,
    life: Lifetime,
) -> Result<(UiSession, actix_web::cookie::Cookie<'static>), crate::store::conn::DbErr> {
    let secret = new_token("fgu_", &*st.rng);
    let row = crate::store::ui_sessions::insert(
        &st.db,
        crate::store::ui_sessions::NewUiSession {
            id: format!("uis_{}", crate::ids::random128(&*st.rng)),
            kind,
            cookie_hash: sha256_hex(&secret),
            subject: subject.to_string(),
            tenant_id: tenant_id.map(str::to_string),
            grants: grants.to_string(),
            now: st.clock.now(),
            idle_secs: life.idle,
            ttl_secs: life.ttl,
        },
    )
    .await?;
    let secure = st.config.secure_cookies();
    let c = actix_web::cookie::Cookie::build(cookie_name(cookie_base(kind), secure), secret.clone())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(life.ttl))
        .finish();
    Ok((UiSession { row, csrf: csrf_of(&secret) }, c))
}

/// The live session of `kind` this browser holds, if any (activity recorded).
pub async fn current(
    st: &AppState,
    req: &actix_web::HttpRequest,
    kind: UiKind,
    idle_secs: i64,
) -> Result<Option<UiSession>, crate::store::conn::DbErr> {
    let Some(secret) = cookie(req, cookie_base(kind), st.config.secure_cookies()) else { return Ok(None) };
    let now = st.clock.now();
    let Some(row) = crate::store::ui_sessions::live(&st.db, kind, &sha256_hex(&secret), now).await? else {
        return Ok(None);
    };
    if now - row.last_seen_at >= TOUCH_EVERY {
        crate::store::ui_sessions::touch(&st.db, &row.id, now, idle_secs).await?;
    }
    Ok(Some(UiSession { row, csrf: csrf_of(&secret) }))
}

impl UiSession {
    /// Checks a form's CSRF token (field `csrf`); every state-changing POST calls this.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), PageError> {
        match given {
            Some(g) if constant_time_eq(g, &self.csrf) => Ok(()),
            _ => Err(PageError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::CsrfTokenInvalid,
                "This form has expired",
                "The page you sent this form from is too old or did not come from fedgate. Reload the page and try again.",
            )),
        }
    }

    /// The session's grants (JSON).
    pub fn grants(&self) -> serde_json::Value {
        serde_json::from_str(&self.row.grants).unwrap_or(serde_json::Value::Null)
    }
}

/// Ends a session; returns the cookie that clears it in the browser.
pub async fn end(
    st: &AppState,
    s: &UiSession,
) -> Result<actix_web::cookie::Cookie<'static>, crate::store::conn::DbErr> {
    crate::store::ui_sessions::revoke(&st.db, &s.row.id, st.clock.now()).await?;
    let secure = st.config.secure_cookies();
    Ok(actix_web::cookie::Cookie::build(cookie_name(cookie_base(s.row.kind), secure), String::new())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(0))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_depends_on_the_cookie_only() {
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 43);
    }
}
