//! `/oauth2/userinfo`, `/oauth2/revoke` (RFC 7009), `/oauth2/introspect` (RFC 7662),
//! `/oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0).
use super::clients::authenticate;
use super::tokens::{profile_claims, verify_access_token, TokenOwner};
use crate::error_code::ErrorCode;
use crate::http::error::{OAuthError, PageError};
use crate::http::AppState;
use crate::http::{client_redirect_url, redirect};
use crate::http::{form_params, Params};
use crate::keys::{constant_time_eq, sha256_hex, UnverifiedJws};
use crate::login::session::SESSION_COOKIE;
use crate::store::conn::DbErr;
use crate::store::sessions::SessionJoin;
use crate::store::{clients, grants, refresh_tokens, sessions, users, write_tx};
use crate::templates::{self, Field};
use crate::util::from_json_list;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
}

/// GET or POST /oauth2/userinfo
pub async fn userinfo(req: HttpRequest, st: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let token = bearer(&req).ok_or_else(|| OAuthError {
        status: StatusCode::UNAUTHORIZED,
        error: ErrorCode::InvalidRequest,
        description: "a bearer access token is required".into(),
        www_authenticate: Some("Bearer".into()),
    })?;
    let v = verify_access_token(&st, &token)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the access token is invalid, expired or revoked"))?;
    let TokenOwner::User { grant, user } = v.owner else {
        return Err(OAuthError::invalid_token("a client_credentials token has no user: userinfo needs a user's token"));
    };
    let (grant, user) = (*grant, *user);
    // Tenant, session, identity, trusted domain, SCIM groups and claim rules: one statement.
    let found = sessions::subject(&st.db, &user.id, &grant.session_id, &grant.client_id, SessionJoin::Optional)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the access token's user no longer exists"))?;
    let verified_email = if found.session.is_some() {
        super::tokens::trusted_email(&found.tenant.id, found.vouched_email, found.vouched_domain.as_slice())
    } else {
        None
    };
    let groups = match &found.session {
        Some(_) => found.groups.as_deref().map(from_json_list).unwrap_or_default(),
        None => Vec::new(),
    };
    let groups = crate::directory::merge_groups(groups, found.scim_groups);
    let mut body = serde_json::json!({ "sub": user.id });
    let profile = profile_claims(&user, verified_email.as_deref(), &grant.scope);
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(profile) {
        for (k, val) in m {
            body[k] = val;
        }
    }
    body["org_id"] = found.tenant.id.into();
    body["org_slug"] = found.tenant.slug.into();
    body["groups"] = groups.clone().into();
    // The same claim rules as the tokens (the tenant's, then the client's), on userinfo's claims.
    let cfg = super::tokens::ClaimConfig::from_rows(&found.claims);
    if let serde_json::Value::Object(m) = &mut body {
        crate::claims::rules::apply(&[&cfg.tenant_rules, &cfg.client_rules], m, &groups);
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body))
}

/// POST /oauth2/revoke. Always 200 for a token the client may not revoke or that is unknown
/// (RFC 7009 §2.2). Revoking a refresh token revokes its whole grant.
pub async fn revoke(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body).map_err(OAuthError::invalid_request)?;
    let endpoint = format!("{}/oauth2/revoke", st.config.issuer.trim_end_matches('/'));
    let (client, _) = authenticate(&st, &req, &params, &endpoint).await?;
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let now = st.clock.now();
    let as_refresh = || async {
        let Some(rt) = refresh_tokens::get(&st.db, &sha256_hex(token)).await? else {
            return Ok::<bool, DbErr>(false);
        };
        let Some(g) = grants::get(&st.db, &rt.grant_id).await? else {
            return Ok(false);
        };
        if g.client_id == client.id {
            let tx = write_tx(&st.db).await?;
            grants::revoke(&tx, &g.id, "revoked_by_client", now).await?;
            tx.commit().await?;
        }
        Ok(true)
    };
    let as_access = || async {
        let Some(v) = verify_access_token(&st, token).await? else {
            return Ok::<bool, DbErr>(false);
        };
        if v.client_id == client.id {
            if let (Some(jti), Some(exp)) = (v.claims["jti"].as_str(), v.claims["exp"].as_i64()) {
                grants::revoke_access_token(&st.db, jti, exp).await?;
            }
        }
        Ok(true)
    };
    if params.get("token_type_hint") == Some("access_token") {
        if !as_access().await? {
            as_refresh().await?;
        }
    } else if !as_refresh().await? {
        as_access().await?;
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish())
}

/// POST /oauth2/introspect. A client sees only its own tokens; anything else is inactive.
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body).map_err(OAuthError::invalid_request)?;
    let endpoint = format!("{}/oauth2/introspect", st.config.issuer.trim_end_matches('/'));
    let (client, _) = authenticate(&st, &req, &params, &endpoint).await?;
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let inactive = || {
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({"active": false}))
    };
    if let Some(v) = verify_access_token(&st, token).await? {
        if v.client_id != client.id {
            return Ok(inactive());
        }
        let c = &v.claims;
        if let TokenOwner::Client = v.owner {
            let mut body = serde_json::json!({
                "active": true,
                "token_type": "Bearer",
                "scope": c["scope"], "client_id": c["client_id"], "sub": c["sub"], "aud": c["aud"],
                "iss": c["iss"], "exp": c["exp"], "iat": c["iat"], "jti": c["jti"],
            });
            if let Some(org) = c.get("org_id") {
                body["org_id"] = org.clone();
            }
            return Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body));
        }
        return Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c["scope"], "client_id": c["client_id"], "sub": c["sub"], "aud": c["aud"],
            "iss": c["iss"], "exp": c["exp"], "iat": c["iat"], "jti": c["jti"],
            "sid": c["sid"], "org_id": c["org_id"], "auth_time": c["auth_time"],
        })));
    }
    let now = st.clock.now();
    if let Some(rt) = refresh_tokens::get(&st.db, &sha256_hex(token)).await? {
        if let Some(g) = grants::get(&st.db, &rt.grant_id).await? {
            let user_ok = users::is_live(&st.db, &g.user_id).await?;
            if g.client_id == client.id
                && g.revoked_at.is_none()
                && rt.used_at.is_none()
                && rt.expires_at > now
                && user_ok
            {
                return Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "scope": g.scope, "client_id": g.client_id, "sub": g.user_id,
                    "iss": st.config.issuer, "exp": rt.expires_at, "iat": rt.created_at, "sid": g.session_id, "org_id": g.tenant_id,
                })));
            }
        }
    }
    Ok(inactive())
}

async fn end_session(st: &AppState, session_id: &str) -> Result<(), DbErr> {
    let now = st.clock.now();
    let tx = write_tx(&st.db).await?;
    crate::directory::sessions::end_session(&tx, &*st.rng, session_id, "logout", now).await?;
    tx.commit().await?;
    Ok(())
}

/// The confirmation token of this browser's sign-out form: derived from the session cookie's
/// secret, so only a page that can read our answer (our own page) can post it.
fn logout_token(session_cookie: &str) -> String {
    sha256_hex(&format!("fedgate-logout:{session_cookie}"))
}

/// "Sign out?": a POST form back to /oauth2/logout with the CSRF-safe token.
fn confirm_page(params: &Params, client_id: Option<&str>, token: &str) -> HttpResponse {
    let mut fields = Vec::new();
    for k in ["post_logout_redirect_uri", "state"] {
        if let Some(value) = params.get(k) {
            fields.push(Field { name: k, value });
        }
    }
    if let Some(value) = client_id {
        fields.push(Field { name: "client_id", value });
    }
    fields.push(Field { name: "logout_token", value: token });
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    templates::respond(builder, "logout_confirm.html", serde_json::json!({ "fields": fields }))
}

/// GET or POST /oauth2/logout
pub async fn logout(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params = if req.method() == actix_web::http::Method::POST {
        form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?
    } else {
        Params::parse(req.query_string())
            .map_err(|e| PageError::bad_request(ErrorCode::InvalidRequest, e.to_string()))?
    };
    // id_token_hint: one of our ID tokens (expired is fine), identifying client and session.
    let mut hint_client: Option<String> = None;
    let mut hint_sid: Option<String> = None;
    if let Some(h) = params.get("id_token_hint") {
        let jws = UnverifiedJws::parse(h).ok_or_else(|| {
            PageError::bad_request(ErrorCode::InvalidIdTokenHint, "The sign-out request is malformed.")
        })?;
        let key = match jws.header.kid.as_deref() {
            Some(k) => st.keys.public_key(k).await,
            None => None,
        };
        let claims = key
            .and_then(|k| jws.verify(&k))
            .filter(|c| c["iss"].as_str() == Some(st.config.issuer.as_str()))
            .ok_or_else(|| {
                PageError::bad_request(
                    ErrorCode::InvalidIdTokenHint,
                    "The sign-out request carries a token this service did not issue.",
                )
            })?;
        hint_client = claims["aud"].as_str().map(str::to_string);
        hint_sid = claims["sid"].as_str().map(str::to_string);
    }
    let client_id = match (params.get("client_id"), &hint_client) {
        (Some(a), Some(b)) if a != b => {
            return Err(PageError::bad_request(
                ErrorCode::InvalidRequest,
                "client_id does not match the id_token_hint.",
            ))
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b.clone(),
    };
    let mut target: Option<String> = None;
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        let cid = client_id.clone().ok_or_else(|| {
            PageError::bad_request(
                ErrorCode::InvalidRequest,
                "post_logout_redirect_uri needs client_id or id_token_hint.",
            )
        })?;
        let c = clients::get(&st.db, &cid).await?;
        let registered = c.is_some_and(|c| from_json_list(&c.post_logout_redirect_uris).iter().any(|r| r == uri));
        if !registered {
            return Err(PageError::bad_request(
                ErrorCode::InvalidPostLogoutRedirectUri,
                "The application asked to return to an address that is not registered for it.",
            ));
        }
        target = Some(client_redirect_url(uri, &[("state", params.get("state"))]));
    }
    // A session ends only in the browser that holds it: when the hint names this browser's
    // session, or when the person confirms on our page (a POST carrying a token derived from
    // the session cookie, which another site cannot read). A hint alone never ends a session
    // elsewhere: anyone holding an ID token (the app, its logs, a leaked URL) could otherwise sign
    // the person out of every browser.
    let cookie_secret = crate::http::cookie(&req, SESSION_COOKIE, st.config.secure_cookies());
    let current = crate::login::session::current(&st, &req).await?;
    if let (Some(s), Some(secret)) = (&current, &cookie_secret) {
        let hint_matches = hint_sid.as_deref() == Some(s.id.as_str());
        let confirmed = req.method() == actix_web::http::Method::POST
            && params.get("confirm") == Some("yes")
            && params.get("logout_token").is_some_and(|t| constant_time_eq(t, &logout_token(secret)));
        if !hint_matches && !confirmed {
            return Ok(confirm_page(&params, client_id.as_deref(), &logout_token(secret)));
        }
        end_session(&st, &s.id).await?;
    }
    let clear = crate::http::build_cookie(SESSION_COOKIE, String::new(), st.config.secure_cookies(), 0);
    match target {
        Some(url) => {
            let mut r = redirect(StatusCode::SEE_OTHER, &url);
            r.add_cookie(&clear).map_err(|_| PageError::internal())?;
            Ok(r)
        }
        None => {
            let mut builder = HttpResponse::Ok();
            builder.cookie(clear);
            Ok(templates::respond(builder, "logout_done.html", serde_json::json!({})))
        }
    }
}
