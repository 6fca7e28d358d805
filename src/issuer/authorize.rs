//! `/oauth2/authorize` (OpenID Connect Core §3.1.2): validates the request, answers from
//! fedgate's own session when it fits, else starts a pending login and hands it to
//! home-realm discovery (`crate::login`).
//!
//! Until the client and redirect_uri are known to be valid, errors are an HTML page; after that
//! they are redirects to the registered redirect_uri with `error`, `state` and `iss`.
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{client_redirect_url, form_params, redirect, AppState, Params};
use crate::ids::{LoginId, TenantId};
use crate::keys::sha256_hex;
use crate::login::pending::{binding, binding_cookie};
use crate::login::session::{self, CodeFor};
use crate::store::entities::client;
use crate::util::from_json_list;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

const KNOWN_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// A validated authorization request.
#[derive(Debug)]
struct AuthRequest {
    client: client::Model,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Vec<String>,
    max_age: Option<i64>,
    /// The app's `acr_values` (only fedgate's own values) and the weakest level they accept.
    acr_values: Option<String>,
    acr_min: Option<crate::claims::mfa::Level>,
    login_hint: Option<String>,
    organization: Option<String>,
    connection: Option<String>,
    domain_hint: Option<String>,
}

struct Redirectable {
    redirect_uri: String,
    state: Option<String>,
}

impl Redirectable {
    fn error(&self, st: &AppState, error: &str, description: &str) -> HttpResponse {
        let url = client_redirect_url(
            &self.redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", self.state.as_deref()),
                ("iss", Some(&st.config.issuer)),
            ],
        );
        redirect(StatusCode::FOUND, &url)
    }
}

fn bounded(p: &Params, k: &str, max: usize) -> Result<Option<String>, String> {
    match p.get(k) {
        Some(v) if v.len() > max => Err(format!("{k} is too long")),
        Some(v) => Ok(Some(v.to_string())),
        None => Ok(None),
    }
}

async fn validate(
    st: &AppState,
    params: &Params,
) -> Result<Result<AuthRequest, (Redirectable, &'static str, String)>, PageError> {
    // 1. Client and redirect_uri: without both valid, never redirect.
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request(
            ErrorCode::InvalidClient,
            "The application did not identify itself (client_id is missing).",
        )
    })?;
    let client = if client_id.len() <= 64 { crate::store::clients::get(&st.db, client_id).await? } else { None };
    // A disabled client is as good as unregistered for sign-in.
    let client = client.filter(|c| c.disabled_at.is_none()).ok_or_else(|| {
        PageError::bad_request(ErrorCode::InvalidClient, "The application is not registered with this sign-in service.")
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        PageError::bad_request(
            ErrorCode::InvalidRedirectUri,
            "The application did not say where to return (redirect_uri is missing).",
        )
    })?;
    if !from_json_list(&client.redirect_uris).iter().any(|r| r == redirect_uri) {
        let shown: String = redirect_uri.chars().take(300).collect();
        let trace = refusal_trace(
            st,
            &client,
            params,
            ErrorCode::InvalidRedirectUri,
            format!(
                "The app asked to return to {shown}, which is not a redirect URI registered for the client {}; fedgate stopped before sign-in began.",
                client.id
            ),
            format!(
                "Register that exact address on the client (admin API PATCH /clients/{}), or fix the redirect URI the app sends.",
                client.id
            ),
        )
        .await;
        let e = PageError::bad_request(
            ErrorCode::InvalidRedirectUri,
            "The application asked to return to an address that is not registered for it.",
        );
        return Err(match trace {
            Some(t) => e.with_trace(t),
            None => e,
        });
    }
    let state = params.get("state").map(str::to_string);
    let r = Redirectable { redirect_uri: redirect_uri.to_string(), state: state.clone() };
    let fail = |r: Redirectable, e: &'static str, d: &str| Ok(Err((r, e, d.to_string())));

    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return fail(r, "invalid_request", "state is too long");
    }
    // 2. Everything else is reported to the app.
    if params.contains("request") {
        return fail(r, "request_not_supported", "request objects are not supported");
    }
    if params.contains("request_uri") {
        return fail(r, "request_uri_not_supported", "request_uri is not supported");
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => return fail(r, "unsupported_response_type", "only response_type=code is supported"),
        None => return fail(r, "invalid_request", "response_type is missing"),
    }
    if let Some(m) = params.get("response_mode") {
        if m != "query" {
            return fail(r, "invalid_request", "only response_mode=query is supported");
        }
    }
    if !crate::issuer::clients::allows_grant(&client, crate::issuer::clients::GrantType::AuthorizationCode) {
        return fail(r, "unauthorized_client", "this client may not use the authorization code grant");
    }
    let scopes: Vec<&str> = params.get("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
    if !scopes.contains(&"openid") {
        return fail(r, "invalid_scope", "the openid scope is required");
    }
    let mut granted: Vec<&str> = KNOWN_SCOPES.iter().copied().filter(|k| scopes.contains(k)).collect();
    if !crate::issuer::clients::allows_grant(&client, crate::issuer::clients::GrantType::RefreshToken) {
        granted.retain(|s| *s != "offline_access");
    }
    let challenge = params.get("code_challenge");
    match (challenge, params.get("code_challenge_method")) {
        (Some(c), Some("S256")) => {
            if c.len() != 43 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return fail(r, "invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)");
            }
        }
        (Some(_), _) => return fail(r, "invalid_request", "code_challenge_method must be S256"),
        (None, Some(_)) => return fail(r, "invalid_request", "code_challenge_method without code_challenge"),
        (None, None) if client.client_type == "public" => {
            return fail(r, "invalid_request", "public clients must use PKCE (code_challenge with S256)")
        }
        (None, None) => {}
    }
    let prompt: Vec<String> =
        params.get("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if prompt.iter().any(|p| !PROMPTS.contains(&p.as_str())) {
        return fail(r, "invalid_request", "unsupported prompt value");
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return fail(r, "invalid_request", "prompt=none cannot be combined with other values");
    }
    let max_age = match params.get("max_age") {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return fail(r, "invalid_request", "max_age must be a non-negative integer"),
        },
        None => None,
    };
    let acr_values = params.get("acr_values").map(str::trim).filter(|a| !a.is_empty());
    if acr_values.is_some_and(|a| a.len() > 512) {
        return fail(r, "invalid_request", "acr_values is too long");
    }
    let acr_min = match acr_values.map(crate::claims::mfa::parse_acr_values) {
        Some(Ok(l)) => l,
        Some(Err(_)) => {
            return fail(r, "invalid_request", "unsupported acr_values (see acr_values_supported in discovery)")
        }
        None => None,
    };
    let get = |k: &str, max: usize| bounded(params, k, max);
    let (nonce, login_hint, organization, connection, domain_hint) = match (
        get("nonce", 512),
        get("login_hint", 320),
        get("organization", 128),
        get("connection", 64),
        get("domain_hint", 253),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)) => (a, b, c, d, e),
        _ => return fail(r, "invalid_request", "a parameter is too long"),
    };
    Ok(Ok(AuthRequest {
        client,
        redirect_uri: r.redirect_uri,
        scope: granted.join(" "),
        state,
        nonce,
        code_challenge: challenge.map(str::to_string),
        prompt,
        max_age,
        acr_values: acr_values.map(str::to_string),
        acr_min,
        login_hint,
        organization,
        connection,
        domain_hint,
    }))
}

/// Records an authorization request refused before any connection was chosen, when it is
/// attributable: its client is known (it was, to reach here) and the per-client budget allows;
/// returns the trace id. Unknown clients leave nothing (issue 10: anonymous failures write
/// nothing unbounded).
async fn refusal_trace(
    st: &AppState,
    client: &client::Model,
    params: &Params,
    code: ErrorCode,
    cause: String,
    fix: String,
) -> Option<String> {
    if !st.trace_budget.take(st.clock.now_ms(), &client.id) {
        return None;
    }
    let id = LoginId::new(&*st.rng).to_string();
    let detail = serde_json::json!({
        "client_id": client.id,
        "response_type": params.get("response_type"),
        "scope": params.get("scope").map(|s| s.chars().take(200).collect::<String>()),
        "pkce": params.contains("code_challenge"),
        "organization": params.get("organization"),
        "connection": params.get("connection"),
    });
    let r = crate::traces::Refusal {
        id: &id,
        client_id: &client.id,
        email: params.get("login_hint"),
        tenant_id: None,
        detail,
        code,
        cause,
        fix,
    };
    match crate::traces::record_refusal(&st.db, r, st.clock.now_ms()).await {
        Ok(()) => Some(id),
        Err(e) => {
            crate::util::log_internal("recording a refused authorization request", &e);
            None
        }
    }
}

/// [`refusal_trace`] for an error the app receives at its redirect_uri.
async fn refused(st: &AppState, params: &Params, error: &str, description: &str) {
    let Some(cid) = params.get("client_id") else { return };
    let Ok(Some(client)) = crate::store::clients::get(&st.db, cid).await else { return };
    let code = match error {
        "invalid_scope" => ErrorCode::InvalidScope,
        "unauthorized_client" => ErrorCode::UnauthorizedClient,
        _ => ErrorCode::InvalidRequest,
    };
    let cause = format!(
        "The app's authorization request was refused before sign-in began: {description}. The app received error={error}."
    );
    let fix = format!(
        "Fix the authorization request the app (client {}) sends: see the OAuth errors in docs/error-codes.md.",
        client.id
    );
    refusal_trace(st, &client, params, code, cause, fix).await;
}

/// GET or POST /oauth2/authorize
#[tracing::instrument(name = "login.authorize", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty))]
pub async fn authorize(req: HttpRequest, body: web::Bytes, st: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params = if req.method() == actix_web::http::Method::POST {
        form_params(&req, &body).map_err(|m| PageError::bad_request(ErrorCode::InvalidRequest, m))?
    } else {
        Params::parse(req.query_string())
            .map_err(|e| PageError::bad_request(ErrorCode::InvalidRequest, e.to_string()))?
    };
    let ar = match validate(&st, &params).await? {
        Ok(ar) => ar,
        Err((r, e, d)) => {
            refused(&st, &params, e, &d).await;
            return Ok(r.error(&st, e, &d));
        }
    };
    let r = Redirectable { redirect_uri: ar.redirect_uri.clone(), state: ar.state.clone() };

    // Resolve explicit routing first: it decides whether an existing session fits.
    let conn = match &ar.connection {
        Some(cid) => {
            let c = crate::store::connections::get(&st.db, cid).await?;
            match c.filter(|c| c.enabled) {
                Some(c) => Some(c),
                None => {
                    refused(&st, &params, "invalid_request", "unknown or disabled connection").await;
                    return Ok(r.error(&st, "invalid_request", "unknown or disabled connection"));
                }
            }
        }
        None => None,
    };
    let org = match &ar.organization {
        // The organization with its enabled connections (one query): routing needs both.
        Some(o) => match crate::tenant::find_with_connections(&st.db, o).await? {
            Some(t) => Some(t),
            None => {
                refused(&st, &params, "invalid_request", "unknown organization").await;
                return Ok(r.error(&st, "invalid_request", "unknown organization"));
            }
        },
        None => None,
    };
    if let (Some(c), Some((t, _))) = (&conn, &org) {
        if c.tenant_id != t.id {
            refused(&st, &params, "invalid_request", "the connection does not belong to the organization").await;
            return Ok(r.error(&st, "invalid_request", "the connection does not belong to the organization"));
        }
    }
    let wanted_tenant = conn.as_ref().map(|c| c.tenant_id.clone()).or_else(|| org.as_ref().map(|(t, _)| t.id.clone()));
    crate::telemetry::record_login(wanted_tenant.as_deref(), conn.as_ref().map(|c| c.id.as_str()));

    // An existing fedgate session answers without a round trip upstream, unless re-authentication
    // is requested or the session does not fit the requested routing.
    let force = ar.prompt.iter().any(|p| p == "login" || p == "select_account");
    if !force {
        if let Some(sess) = session::current(&st, &req).await? {
            let fits_tenant = wanted_tenant.as_ref().is_none_or(|t| *t == sess.tenant_id);
            let fits_conn = conn.as_ref().is_none_or(|c| c.id == sess.connection_id);
            let fresh = ar.max_age.is_none_or(|m| st.clock.now() - sess.auth_time <= m);
            let active = crate::store::users::is_live(&st.db, &sess.user_id).await?;
            // The session's acr must meet what the app asks for now and what the tenant's policy
            // requires now (it may have changed since the session began).
            let level = sess
                .acr
                .as_deref()
                .and_then(crate::claims::mfa::Level::from_acr)
                .unwrap_or(crate::claims::mfa::Level::Basic);
            let mut strong_enough = ar.acr_min.is_none_or(|m| level >= m);
            if strong_enough && level < crate::claims::mfa::Level::IdpEnforced && fits_tenant && fits_conn {
                let t = crate::tenant::get(&st.db, &sess.tenant_id).await?;
                let c = crate::store::connections::get(&st.db, &sess.connection_id).await?;
                if let Some(t) = t {
                    strong_enough = !crate::login::mfa::policy_requires(&t, c.as_ref());
                }
            }
            if fits_tenant && fits_conn && fresh && active && strong_enough {
                let code = session::issue_code(
                    &st.db,
                    &st,
                    CodeFor {
                        login_id: "sso",
                        client_id: &ar.client.id,
                        redirect_uri: &ar.redirect_uri,
                        scope: &ar.scope,
                        nonce: ar.nonce.clone(),
                        code_challenge: ar.code_challenge.clone(),
                        user_id: &sess.user_id,
                        session_id: &sess.id,
                        auth_time: sess.auth_time,
                    },
                )
                .await?;
                tracing::info!(session = %sess.id, client = %ar.client.id, "authorization answered from existing session");
                return Ok(redirect(
                    StatusCode::FOUND,
                    &session::success_url(&st, &ar.redirect_uri, &code, ar.state.as_deref()),
                ));
            }
        }
    }
    if ar.prompt.iter().any(|p| p == "none") {
        return Ok(r.error(&st, "login_required", "no active session; the user must sign in"));
    }

    // A pending login row: the only login state, shared by every instance.
    let (bind, bind_new) = binding(&req, &st);
    let now = st.clock.now();
    // Routed before it is written: a login sent straight to a connection is one INSERT.
    let login_row = crate::store::logins::NewLogin {
        id: LoginId::new(&*st.rng),
        client_id: ar.client.id.clone(),
        redirect_uri: ar.redirect_uri.clone(),
        scope: ar.scope.clone(),
        state: ar.state.clone(),
        nonce: ar.nonce.clone(),
        code_challenge: ar.code_challenge.clone(),
        prompt: (!ar.prompt.is_empty()).then(|| ar.prompt.join(" ")),
        max_age: ar.max_age,
        acr_values: ar.acr_values.clone(),
        login_hint: ar.login_hint.clone(),
        tenant_id: wanted_tenant.clone().map(TenantId::from_db),
        connection_id: None,
        binding_hash: sha256_hex(&bind),
        created_at: now,
        // Short until the login reaches a connection (start_connection gives it login_ttl):
        // requests nobody follows up cost a row for minutes, then clean-up removes it.
        expires_at: now + st.config.tokens.unrouted_login_ttl,
    }
    .into_model();
    tracing::info!(login = %login_row.id, client = %ar.client.id, "authorization request accepted");

    let mut resp = crate::login::discovery::route(&st, &login_row, conn, org, ar.domain_hint.as_deref()).await?;
    if bind_new {
        resp.add_cookie(&binding_cookie(&st, bind)).map_err(|_| PageError::internal())?;
    }
    Ok(resp)
}
