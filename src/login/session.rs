//! fedgate's own browser session (it answers `/oauth2/authorize` without a round trip upstream,
//! and `prompt=none`) and the authorization codes a finished login issues.
use crate::http::{client_redirect_url, cookie, AppState};
use crate::keys::{new_token, sha256_hex};
use crate::store::conn::{Conn, DbErr};
use crate::store::entities::session;

/// Base name of the session cookie (`__Host-fedgate_session` with an https issuer).
pub const SESSION_COOKIE: &str = "fedgate_session";
pub const CODE_PREFIX: &str = "fgac_";

/// fedgate's own browser session from the cookie, if valid now.
pub async fn current(st: &AppState, req: &actix_web::HttpRequest) -> Result<Option<session::Model>, DbErr> {
    let Some(c) = cookie(req, SESSION_COOKIE, st.config.secure_cookies()) else {
        return Ok(None);
    };
    crate::store::sessions::live_by_cookie(&st.db, &sha256_hex(&c), st.clock.now()).await
}

/// What a code is issued for.
pub struct CodeFor<'a> {
    pub login_id: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: i64,
}

/// Issues an authorization code (stored hashed, single use, `tokens.code_ttl` long).
pub async fn issue_code(tx: &impl Conn, st: &AppState, c: CodeFor<'_>) -> Result<String, DbErr> {
    let (code, row) = new_code(st, c);
    crate::store::codes::insert(tx, row).await?;
    Ok(code)
}

/// A new authorization code and the row that stores it (its hash), not yet written.
pub fn new_code(st: &AppState, c: CodeFor<'_>) -> (String, crate::store::codes::NewCode) {
    let now = st.clock.now();
    let code = new_token(CODE_PREFIX, &*st.rng);
    let row = crate::store::codes::NewCode {
        code_hash: sha256_hex(&code),
        login_id: c.login_id.to_string(),
        client_id: c.client_id.to_string(),
        redirect_uri: c.redirect_uri.to_string(),
        user_id: c.user_id.to_string(),
        session_id: c.session_id.to_string(),
        scope: c.scope.to_string(),
        nonce: c.nonce,
        code_challenge: c.code_challenge,
        auth_time: c.auth_time,
        created_at: now,
        expires_at: now + st.config.tokens.code_ttl,
    };
    (code, row)
}

/// The app's redirect with the code (RFC 9207 `iss` included).
pub fn success_url(st: &AppState, redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    client_redirect_url(redirect_uri, &[("code", Some(code)), ("state", state), ("iss", Some(&st.config.issuer))])
}
