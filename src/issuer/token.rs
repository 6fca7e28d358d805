//! `/oauth2/token`: authorization_code (with PKCE), refresh_token (rotating, with reuse
//! detection) and client_credentials (machine tokens). RFC 6749 §5 responses,
//! `Cache-Control: no-store`.
use super::clients::{allows_grant, authenticate, scopes_of, web_origins_of, GrantType};
use super::tokens::{load_subject, sign_client_token, sign_tokens, subject_of, Subject, TraceOf};
use crate::error_code::ErrorCode;
use crate::http::error::OAuthError;
use crate::http::form_params;
use crate::http::AppState;
use crate::ids::GrantId;
use crate::keys::{constant_time_eq, new_token, sha256_b64url, sha256_hex};
use crate::store::conn::{Conn, DbErr};
use crate::store::entities::{auth_code, client, grant};
use crate::store::{codes, grants, refresh_tokens, write_tx};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

pub const REFRESH_PREFIX: &str = "fgrt_";

#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
}

fn ok(body: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

#[tracing::instrument(name = "login.token", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty, grant_type = tracing::field::Empty))]
pub async fn token(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body).map_err(OAuthError::invalid_request)?;
    let endpoint = format!("{}/oauth2/token", st.config.issuer.trim_end_matches('/'));
    let (client, _method) = authenticate(&st, &req, &params, &endpoint).await?;
    if let Some(g) =
        params.get("grant_type").filter(|g| matches!(*g, "authorization_code" | "refresh_token" | "client_credentials"))
    {
        tracing::Span::current().record("grant_type", g);
    }
    // CORS on this endpoint answers only the authenticated client's own web origins.
    {
        use actix_web::HttpMessage;
        req.extensions_mut().insert(super::cors::ClientOrigins(web_origins_of(&client)));
    }
    match params.get("grant_type") {
        Some("authorization_code") => {
            if !allows_grant(&client, GrantType::AuthorizationCode) {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "this client may not use authorization_code",
                ));
            }
            code_grant(&st, &client, &params).await
        }
        Some("refresh_token") => {
            if !allows_grant(&client, GrantType::RefreshToken) {
                return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use refresh_token"));
            }
            refresh_grant(&st, &client, &params).await
        }
        Some("client_credentials") => {
            if client.client_type != "confidential" {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "client_credentials is for confidential clients only",
                ));
            }
            if !allows_grant(&client, GrantType::ClientCredentials) {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "this client may not use client_credentials",
                ));
            }
            client_credentials(&st, &client, &params).await
        }
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported: authorization_code, refresh_token, client_credentials",
        )),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
    }
}

/// `client_credentials` (RFC 6749 §4.4): a machine token for the client itself, with the
/// requested scopes (a subset of the client's registered scopes; all of them when `scope` is
/// absent) and, for a client bound to a tenant, that tenant's `org_id`. No refresh token, no ID
/// token. An `org_id` parameter, when sent, must name the client's own tenant.
async fn client_credentials(
    st: &AppState,
    client: &client::Model,
    p: &crate::http::Params,
) -> Result<HttpResponse, OAuthError> {
    let registered = scopes_of(client);
    let scope = match p.get("scope") {
        Some(s) => {
            let mut requested: Vec<&str> = Vec::new();
            for x in s.split(' ').filter(|x| !x.is_empty()) {
                if !registered.iter().any(|r| r == x) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        format!("scope {x:?} is not registered for this client"),
                    ));
                }
                if !requested.contains(&x) {
                    requested.push(x);
                }
            }
            requested.join(" ")
        }
        None => registered.join(" "),
    };
    let org_id = match &client.tenant_id {
        Some(t) => {
            let tenant = crate::tenant::get(&st.db, t).await?.ok_or_else(|| {
                OAuthError::new(ErrorCode::UnauthorizedClient, "the client's tenant no longer exists")
            })?;
            if let Some(asked) = p.get("org_id") {
                if asked != tenant.id && asked != tenant.slug {
                    return Err(OAuthError::new(
                        ErrorCode::UnauthorizedClient,
                        "this client may obtain tokens only for the tenant it is bound to",
                    ));
                }
            }
            Some(tenant.id)
        }
        None => {
            if p.get("org_id").is_some() {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "this client is not bound to a tenant; its tokens carry no org_id",
                ));
            }
            None
        }
    };
    let (access_token, expires_in) = sign_client_token(st, client, &scope, org_id)?;
    st.metrics.inc("fedgate_tokens_issued_total", &[("grant", "client_credentials")]);
    tracing::info!(client = %client.id, "client_credentials token issued");
    Ok(ok(TokenResponse { access_token, token_type: "Bearer", expires_in, id_token: None, refresh_token: None, scope }))
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

async fn code_grant(
    st: &AppState,
    client: &client::Model,
    p: &crate::http::Params,
) -> Result<HttpResponse, OAuthError> {
    let code = p.get("code").ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let redirect_uri = p.get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("redirect_uri is missing"))?;
    let x = exchange_code(st, client, code, redirect_uri, p.get("code_verifier")).await?;
    crate::telemetry::record_login(Some(&x.grant.tenant_id), None);
    // Sign after commit: no database connection or lock is held while signing.
    let issued = sign_tokens(st, client, &x.grant, &x.subject, x.nonce.clone(), TraceOf::Login(&x.login_id)).await?;
    Ok(ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        id_token: Some(issued.id_token),
        refresh_token: x.refresh,
        scope: x.grant.scope,
    }))
}

/// An authorization code redeemed: the grant it opened, who signed in, the refresh token (when
/// the client may refresh) and the nonce of the authorization request.
pub struct Exchanged {
    pub grant: grant::Model,
    pub subject: Subject,
    pub refresh: Option<String>,
    pub nonce: Option<String>,
    /// The login (and its trace) that issued the code.
    pub login_id: String,
}

/// Redeems an authorization code for an authenticated `client`: single use (a replay revokes
/// what the first exchange issued), not expired, issued to this client for this redirect_uri,
/// PKCE verified; opens the grant. The token endpoint signs tokens for it; fedgate's own
/// console (a relying party of this issuer, in the same process) reads the subject directly.
pub async fn exchange_code(
    st: &AppState,
    client: &client::Model,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<Exchanged, OAuthError> {
    let now = st.clock.now();
    let hash = sha256_hex(code);
    let grant_id = GrantId::new(&*st.rng);
    // PostgreSQL: the whole exchange in one statement when every check passes (the usual case).
    if let Some(done) = redeem_at_once(st, client, &hash, redirect_uri, code_verifier, &grant_id, now).await? {
        st.metrics.inc("fedgate_tokens_issued_total", &[("grant", "authorization_code")]);
        return Ok(done);
    }
    let tx = write_tx(&st.db).await?;
    // Claim the code first (single use, atomic), with the subject it was issued for: one
    // statement on the happy path (PostgreSQL). Any check that fails below rolls the claim back
    // by dropping the transaction.
    let claimed = codes::claim_with_subject(&tx, &hash, now, &grant_id.to_string(), &client.id).await?;
    let Some((row, found)) = claimed else {
        let existing = codes::get(&tx, &hash).await?;
        return match existing {
            Some(used) if used.client_id == client.id => {
                // A replayed code: revoke what the first exchange issued (RFC 6749 §4.1.2).
                if let Some(g) = &used.grant_id {
                    grants::revoke(&tx, g, "code_replay", now).await?;
                }
                tx.commit().await?;
                tracing::warn!(client = %client.id, "authorization code replayed; its grant was revoked");
                Err(OAuthError::invalid_grant("the authorization code was already used"))
            }
            Some(_) => Err(OAuthError::invalid_grant("the authorization code was issued to another client")),
            None => Err(OAuthError::invalid_grant("the authorization code is invalid")),
        };
    };
    check_code(&row, client, redirect_uri, code_verifier, now)?;
    let subject =
        found.and_then(subject_of).ok_or_else(|| OAuthError::invalid_grant("the user or session no longer exists"))?;
    check_subject(&subject)?;
    let g = grant::Model {
        id: grant_id.to_string(),
        client_id: client.id.clone(),
        user_id: row.user_id.clone(),
        tenant_id: subject.tenant.id.clone(),
        session_id: row.session_id.clone(),
        scope: row.scope.clone(),
        auth_time: row.auth_time,
        created_at: now,
        expires_at: now + st.config.tokens.refresh_token_ttl,
        revoked_at: None,
        revoked_reason: None,
    };
    // The grant and its first refresh token: one statement on PostgreSQL.
    let refresh = allows_grant(client, GrantType::RefreshToken).then(|| new_token(REFRESH_PREFIX, &*st.rng));
    grants::insert_with_refresh(&tx, &g, refresh.as_deref().map(sha256_hex).as_deref(), now).await?;
    tx.commit().await?;
    st.metrics.inc("fedgate_tokens_issued_total", &[("grant", "authorization_code")]);
    Ok(Exchanged { grant: g, subject, refresh, nonce: row.nonce, login_id: row.login_id })
}

/// The checks a code must pass to be redeemed by `client` (besides being unused): issued to
/// this client, for this redirect_uri, unexpired, and its PKCE challenge met.
fn check_code(
    row: &auth_code::Model,
    client: &client::Model,
    redirect_uri: &str,
    code_verifier: Option<&str>,
    now: i64,
) -> Result<(), OAuthError> {
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant("the authorization code was issued to another client"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code has expired"));
    }
    if redirect_uri != row.redirect_uri {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    match (&row.code_challenge, code_verifier) {
        (Some(ch), Some(v)) => {
            if !valid_verifier(v) || !constant_time_eq(&sha256_b64url(v.as_bytes()), ch) {
                return Err(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => return Err(OAuthError::invalid_grant("code_verifier sent but no code_challenge was used")),
        (None, None) => {}
    }
    Ok(())
}

/// A code exchange in one statement ([`codes::redeem`], PostgreSQL): `None` when it did not
/// redeem the code (on SQLite, or when a check fails), and the transactional path then decides
/// and says why. What the statement returns is checked again here, with the same checks as that
/// path; a row they refuse (the statement and this code disagreeing) has its grant revoked and
/// is refused.
async fn redeem_at_once(
    st: &AppState,
    client: &client::Model,
    hash: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
    grant_id: &GrantId,
    now: i64,
) -> Result<Option<Exchanged>, OAuthError> {
    if !crate::store::writes_in_one_statement(&st.db) {
        return Ok(None);
    }
    let challenge = match code_verifier {
        Some(v) if valid_verifier(v) => Some(sha256_b64url(v.as_bytes())),
        // A malformed verifier: the transactional path refuses it.
        Some(_) => return Ok(None),
        None => None,
    };
    let refresh = allows_grant(client, GrantType::RefreshToken).then(|| new_token(REFRESH_PREFIX, &*st.rng));
    let refresh_hash = refresh.as_deref().map(sha256_hex);
    let grant_id = grant_id.to_string();
    let ask = codes::Redeem {
        code_hash: hash,
        client_id: &client.id,
        redirect_uri,
        challenge: challenge.as_deref(),
        now,
        grant_id: &grant_id,
        grant_expires_at: now + st.config.tokens.refresh_token_ttl,
        refresh_hash: refresh_hash.as_deref(),
    };
    let Some(r) = codes::redeem(&st.db, &ask).await? else { return Ok(None) };
    let checked = check_code(&r.code, client, redirect_uri, code_verifier, now)
        .and_then(|()| {
            subject_of(r.subject).ok_or_else(|| OAuthError::invalid_grant("the user or session no longer exists"))
        })
        .and_then(|s| check_subject(&s).map(|()| s));
    match checked {
        Ok(subject) => {
            Ok(Some(Exchanged { grant: r.grant, subject, refresh, nonce: r.code.nonce, login_id: r.code.login_id }))
        }
        Err(e) => {
            tracing::error!(client = %client.id, "a code redeemed in one statement fails its checks; its grant is revoked");
            grants::revoke(&st.db, &r.grant.id, "redeem_check_failed", now).await?;
            Err(e)
        }
    }
}

fn check_subject(s: &Subject) -> Result<(), OAuthError> {
    if !s.user.active || s.user.deleted_at.is_some() {
        return Err(OAuthError::invalid_grant("the user is deactivated"));
    }
    if s.session.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the session was ended"));
    }
    Ok(())
}

async fn insert_refresh(tx: &impl Conn, st: &AppState, g: &grant::Model, now: i64) -> Result<String, DbErr> {
    let token = new_token(REFRESH_PREFIX, &*st.rng);
    refresh_tokens::insert(tx, &sha256_hex(&token), &g.id, now, g.expires_at).await?;
    Ok(token)
}

async fn refresh_grant(
    st: &AppState,
    client: &client::Model,
    p: &crate::http::Params,
) -> Result<HttpResponse, OAuthError> {
    let token = p.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let now = st.clock.now();
    let hash = sha256_hex(token);
    // PostgreSQL: the whole rotation in one statement when every check passes (the usual case;
    // a narrowed scope takes the transactional path, which checks it before the claim commits).
    if p.get("scope").is_none() {
        if let Some(done) = rotate_at_once(st, client, &hash, now).await? {
            return Ok(done);
        }
    }
    let tx = write_tx(&st.db).await?;
    // Claim (rotate) first; checks that fail below roll the claim back.
    let claimed = refresh_tokens::claim(&tx, &hash, now).await?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid or revoked");
    let row = match claimed {
        Some(r) => r,
        None => {
            let Some(used) = refresh_tokens::get(&tx, &hash).await? else { return Err(invalid()) };
            let g = grants::get(&tx, &used.grant_id).await?.ok_or_else(invalid)?;
            if g.client_id != client.id {
                return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
            }
            // Reuse of a rotated token: treat as theft and revoke the whole family.
            grants::revoke(&tx, &g.id, "refresh_token_reuse", now).await?;
            tx.commit().await?;
            tracing::warn!(client = %client.id, grant = %g.id, "refresh token reused; the token family was revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; all tokens of this grant are revoked",
            ));
        }
    };
    let mut g = grants::get(&tx, &row.grant_id).await?.ok_or_else(invalid)?;
    if g.client_id != client.id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if g.revoked_at.is_some() {
        return Err(invalid());
    }
    if row.expires_at <= now || g.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if let Some(scope) = p.get("scope") {
        let requested: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        if requested.iter().any(|s| !super::tokens::has_scope(&g.scope, s)) {
            return Err(OAuthError::new(ErrorCode::InvalidScope, "the requested scope exceeds the original grant"));
        }
        g.scope = requested.join(" ");
    }
    let subject = load_subject(&tx, &g.user_id, &g.session_id, &client.id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    if !subject.user.active || subject.user.deleted_at.is_some() {
        return Err(OAuthError::invalid_grant("the user is deactivated"));
    }
    let new_refresh = insert_refresh(&tx, st, &g, now).await?;
    tx.commit().await?;
    refreshed(st, client, g, subject, new_refresh).await
}

/// The answer to a refresh whose rotation committed.
async fn refreshed(
    st: &AppState,
    client: &client::Model,
    g: grant::Model,
    subject: Subject,
    new_refresh: String,
) -> Result<HttpResponse, OAuthError> {
    st.metrics.inc("fedgate_tokens_issued_total", &[("grant", "refresh_token")]);
    let issued = sign_tokens(st, client, &g, &subject, None, TraceOf::Refresh).await?;
    Ok(ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        id_token: Some(issued.id_token),
        refresh_token: Some(new_refresh),
        scope: g.scope,
    }))
}

/// A refresh in one statement ([`refresh_tokens::rotate`], PostgreSQL): `None` when it rotated
/// nothing (on SQLite, or when a check fails), and the transactional path then decides and says
/// why. What the statement returns is checked again here with that path's checks; a row they
/// refuse has its grant revoked and is refused.
async fn rotate_at_once(
    st: &AppState,
    client: &client::Model,
    hash: &str,
    now: i64,
) -> Result<Option<HttpResponse>, OAuthError> {
    if !crate::store::writes_in_one_statement(&st.db) {
        return Ok(None);
    }
    let next = new_token(REFRESH_PREFIX, &*st.rng);
    let Some(r) = refresh_tokens::rotate(&st.db, hash, &client.id, &sha256_hex(&next), now).await? else {
        return Ok(None);
    };
    let g = r.grant;
    let live = g.client_id == client.id && g.revoked_at.is_none() && r.token.expires_at > now && g.expires_at > now;
    let subject = subject_of(r.subject).filter(|s| s.user.active && s.user.deleted_at.is_none());
    match subject {
        Some(subject) if live => refreshed(st, client, g, subject, next).await.map(Some),
        _ => {
            tracing::error!(client = %client.id, grant = %g.id, "a refresh rotated in one statement fails its checks; its grant is revoked");
            grants::revoke(&st.db, &g.id, "rotate_check_failed", now).await?;
            Err(OAuthError::invalid_grant("the refresh token is invalid or revoked"))
        }
    }
}
