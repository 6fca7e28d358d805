//! Test sign-ins of the setup portal: a real login through a (draft) connection, started by the
//! customer's IT admin from the portal and bound to their portal session and browser, that ends
//! in a result page instead of an app: no fedgate session, no code to any app, no user created
//! or linked, no provisioning — only the trace (with the checks and the claims the app would
//! receive) and, when every check passed, the connection's `tested_version`.
//!
//! A test login is a pending login like any other (the same connectors, ACS, replay cache and
//! trace), with the client id [`CLIENT_ID`] (no registered client can have it: client ids are
//! `cli_…`), the portal session's id as its `state`, and the result page as its redirect URI.
use super::pending::{binding, binding_cookie};
use crate::claims;
use crate::error_code::ErrorCode;
use crate::events::audit::Actor;
use crate::http::error::PageError;
use crate::http::{redirect, AppState};
use crate::ids::{LoginId, TenantId};
use crate::keys::{constant_time_eq, sha256_hex};
use crate::store::entities::login::LoginStatus;
use crate::store::entities::{connection, login, login_trace};
use crate::traces::Outcome;
use crate::upstream::{StepLog, UpstreamIdentity};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

/// The client id of test logins.
pub const CLIENT_ID: &str = "fedgate-portal-test";

/// The trace step holding a test's checks and claims.
pub const RESULT_STEP: &str = "test_sign_in";

/// Whether a login is a setup portal test.
pub fn is_test(login: &login::Model) -> bool {
    login.client_id == CLIENT_ID
}

/// The result page of a test login.
pub fn result_url(st: &AppState, login_id: &str) -> String {
    format!("{}/setup/sso/tests/{login_id}", st.config.issuer)
}

/// Starts a test login through `conn` for the portal session `ui_session_id` (opened from the
/// setup link `link_id`), in this browser; the attempt is audited.
pub async fn start(
    st: &AppState,
    req: &HttpRequest,
    conn: &connection::Model,
    ui_session_id: &str,
    link_id: &str,
) -> Result<HttpResponse, PageError> {
    let (bind, is_new) = binding(req, st);
    let now = st.clock.now();
    let id = LoginId::new(&*st.rng);
    let login = crate::store::logins::insert(
        &st.db,
        crate::store::logins::NewLogin {
            id: id.clone(),
            client_id: CLIENT_ID.into(),
            redirect_uri: result_url(st, id.as_str()),
            scope: "openid".into(),
            state: Some(ui_session_id.to_string()),
            nonce: None,
            code_challenge: None,
            prompt: None,
            max_age: None,
            acr_values: None,
            login_hint: None,
            tenant_id: Some(TenantId::from_db(conn.tenant_id.clone())),
            connection_id: None,
            binding_hash: sha256_hex(&bind),
            created_at: now,
            expires_at: now + st.config.tokens.login_ttl,
        },
    )
    .await?;
    let who = format!("setup_link:{link_id}");
    let ip = crate::http::peer(req);
    crate::events::audit::record(
        &st.db,
        now,
        &Actor { name: &who, ip: &ip },
        "connection.test_started",
        "connection",
        Some(&conn.id),
        Some(&conn.tenant_id),
        serde_json::json!({"login_id": login.id, "version": conn.version}),
    )
    .await?;
    let mut resp = super::start::start_connection(st, &login, conn, StatusCode::FOUND).await?;
    if is_new {
        let _ = resp.add_cookie(&binding_cookie(st, bind));
    }
    Ok(resp)
}

/// One check of a test sign-in, as the result page shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Check {
    pub id: String,
    pub passed: bool,
    /// What was checked and what was found, in plain words.
    pub detail: String,
    /// What to change when it failed.
    pub fix: Option<String>,
}

fn check(id: &str, passed: bool, detail: String, fix: Option<String>) -> Check {
    Check { id: id.into(), passed, detail, fix }
}

/// Finishes a test login with the identity the connection accepted: the checks, the claims
/// the app would receive, the trace, the audit entry, `tested_version` when everything passed;
/// then the result page. Nothing else: no user, no session, no code, no events.
pub async fn finish(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    up: UpstreamIdentity,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let mut checks = Vec::new();
    if conn.conn_type == "saml" {
        checks.push(check(
            "signature",
            true,
            "The answer was signed with a certificate this connection trusts, with an allowed algorithm.".into(),
            None,
        ));
        checks.push(check("issuer_audience", true, "The answer came from the identity provider's entity ID and was addressed to this connection (audience, recipient and destination are its ACS URL and entity ID).".into(), None));
        checks.push(check(
            "time_window",
            true,
            "The answer is within its validity window (clocks agree) and answers this very sign-in (InResponseTo)."
                .into(),
            None,
        ));
    } else {
        checks.push(check(
            "id_token",
            true,
            "The ID token's signature, issuer, audience, expiry and nonce are valid.".into(),
            None,
        ));
    }
    let tenant = crate::tenant::get(&st.db, &conn.tenant_id).await?.ok_or_else(PageError::internal)?;
    let settings = crate::tenant::settings_of(&tenant);
    let mut claims_out = serde_json::Value::Null;
    match claims::normalize(up) {
        Err(m) => checks.push(check(
            "subject",
            false,
            format!("The identity provider sent no usable user identifier ({m})."),
            Some("Set the Name ID (SAML) or the subject to the user's email or a stable user id.".into()),
        )),
        Ok(mut ident) => {
            checks.push(check(
                "subject",
                true,
                "The identity provider sent a user identifier (Name ID / subject).".into(),
                None,
            ));
            match &ident.email {
                None => checks.push(check(
                    "email",
                    false,
                    "The identity provider sent no email address.".into(),
                    Some("Add an attribute statement named `email` whose value is the user's email (see the attribute table), or use the email as Name ID.".into()),
                )),
                Some(email) => {
                    checks.push(check("email", true, format!("The identity provider sent the email address {email}."), None));
                    let rows = crate::tenant::domain_rows_of(&st.db, &tenant.id).await?;
                    let domains: Vec<String> = rows.iter().map(|d| d.domain.clone()).collect();
                    let domain = claims::email_domain(email).unwrap_or_default();
                    let inside = domains.contains(&domain);
                    ident.email_verified =
                        ident.email_verified && crate::tenant::domain_trusted_for_email(&tenant.id, email, &rows);
                    if inside || settings.allow_email_outside_domains {
                        checks.push(check("email_domain", true, format!("{domain} is allowed for {}.", tenant.name), None));
                    } else {
                        checks.push(check(
                            "email_domain",
                            false,
                            format!(
                                "{domain} is not one of {}'s domains ({}). Real sign-ins with this address would be refused.",
                                tenant.name,
                                if domains.is_empty() { "none yet".to_string() } else { domains.join(", ") }
                            ),
                            Some("Sign in with an account of your organization's domain, or add and verify the domain (Domains step).".into()),
                        ));
                    }
                }
            }
            let roles: Vec<String> = {
                let mut r: Vec<String> =
                    ident.groups.iter().filter_map(|g| settings.role_mapping.get(g)).flatten().cloned().collect();
                r.dedup();
                r
            };
            claims_out = serde_json::json!({
                "email": ident.email,
                "email_verified": ident.email_verified,
                "name": ident.name,
                "given_name": ident.given_name,
                "family_name": ident.family_name,
                "groups": ident.groups,
                "roles": roles,
            });
        }
    }
    let passed = checks.iter().all(|c| c.passed);
    steps.push(
        RESULT_STEP,
        now_ms,
        0,
        serde_json::json!({"checks": checks, "claims": claims_out, "passed": passed, "version": conn.version}),
    );
    let outcome = if passed {
        Outcome::Completed
    } else {
        let first = checks.iter().find(|c| !c.passed);
        Outcome::Failed {
            code: ErrorCode::TestSignInFailed.to_string(),
            cause: first.map(|c| c.detail.clone()).unwrap_or_default(),
            fix: first.and_then(|c| c.fix.clone()).unwrap_or_default(),
        }
    };
    let link_id = match &login.state {
        Some(s) => crate::store::ui_sessions::get(&st.db, s).await?.map(|u| u.subject),
        None => None,
    }
    .unwrap_or_default();
    let who = format!("setup_link:{link_id}");
    let tx = crate::store::audited::begin(&st.db).await?;
    if !crate::store::logins::complete(&*tx, &login.id, now).await? {
        tx.rollback().await?;
        return Err(PageError::bad_request(
            ErrorCode::LoginAlreadyUsed,
            "This test sign-in has already been completed.",
        ));
    }
    if passed {
        crate::store::connections::set_tested(&*tx, &conn.id, conn.version).await?;
    }
    crate::traces::record(&*tx, login, Some(&tenant.id), Some(&conn.id), steps.take(), outcome, now_ms).await?;
    let entry = Actor { name: &who, ip: "-" }.entry(
        now,
        "connection.test",
        "connection",
        Some(&conn.id),
        Some(&tenant.id),
        serde_json::json!({"login_id": login.id, "passed": passed, "version": conn.version}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    tracing::info!(login = %login.id, connection = %conn.id, passed, "portal test sign-in finished");
    Ok(redirect(StatusCode::SEE_OTHER, &login.redirect_uri))
}

/// A test login and its trace, for the result page: only in the browser that ran it, while the
/// portal session that started it is live, and only for that session's tenant.
pub async fn load_result(
    st: &AppState,
    req: &HttpRequest,
    id: &str,
) -> Result<(login::Model, Option<login_trace::Model>, String), PageError> {
    let nf = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::LoginNotFound,
            "Test sign-in not found",
            "This test sign-in is not known in this browser. Start a new test from the setup page.",
        )
    };
    let id = LoginId::parse(id).map_err(|_| nf())?;
    let row = crate::store::logins::get(&st.db, &id).await?.filter(is_test).ok_or_else(nf)?;
    let bound = crate::http::cookie(req, super::pending::BINDING_COOKIE, st.config.secure_cookies())
        .is_some_and(|c| constant_time_eq(&sha256_hex(&c), &row.binding_hash));
    if !bound {
        return Err(nf());
    }
    let now = st.clock.now();
    let session = match &row.state {
        Some(s) => crate::store::ui_sessions::get(&st.db, s).await?,
        None => None,
    }
    .filter(|s| s.revoked_at.is_none() && s.expires_at > now && s.idle_expires_at > now)
    .filter(|s| s.tenant_id.as_deref() == row.tenant_id.as_ref().map(TenantId::as_str))
    .ok_or_else(|| {
        PageError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::PortalSessionRequired,
            "Your setup session has ended",
            "Open the setup link you were sent again to continue.",
        )
    })?;
    let trace = crate::store::traces::get(&st.db, row.id.as_str()).await?;
    let _ = LoginStatus::Pending;
    Ok((row, trace, session.subject))
}
