//! The one completion path. Every upstream answer — the OIDC callback, the dev confirmation
//! page, the SAML resume step — ends here with an upstream identity: tenant policy, linking the
//! person, the session, the code, the events and the trace, in one transaction; or a failure,
//! recorded with its code, cause and fix, and answered in the shape the person and the app see.
use super::pending::{context, error_url};
use super::session::{new_code, success_url, CodeFor, SESSION_COOKIE};
use crate::claims;
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{build_cookie, redirect, AppState};
use crate::ids::{SessionId, TenantId};
use crate::keys::{new_token, sha256_hex};
use crate::store::entities::{connection, login};
use crate::store::logins::RoutedTenant;
use crate::store::write_tx;
use crate::traces::{self, Outcome};
use crate::upstream::registry::Opened;
use crate::upstream::{CallbackPayload, ConnectorState, StepLog, UpstreamError, UpstreamIdentity};
use crate::util::log_internal;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

/// Completes a login with the answer its connector received (OIDC callback, dev page): the
/// connector checks the answer against the state `begin` stored, the use-once key it carries
/// (if any) is consumed in the replay cache, and the login is finished. `tenant` is the
/// connection's tenant with its domains when the caller read them with the login (`None`: they
/// are read here).
pub async fn complete_with(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    tenant: Option<RoutedTenant>,
    state: &ConnectorState,
    payload: CallbackPayload,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    let opened = match st.connectors.open(conn) {
        Ok(c) => c,
        Err(e) => return upstream_failure(st, login, e, steps).await,
    };
    let completed = match opened.connector().complete(&context(st, login, conn, steps), state, payload).await {
        Ok(c) => c,
        Err(e) => return upstream_failure(st, login, e, steps).await,
    };
    if let Some(once) = &completed.one_time {
        if !crate::store::replay::consume(&st.db, &conn.id, &once.key, once.until, st.clock.now()).await? {
            let e = UpstreamError::InvalidResponse(format!("the answer {} was already used", once.key));
            return upstream_failure(st, login, e, steps).await;
        }
    }
    finish_in(st, login, conn, tenant, completed.identity, steps, AfterLogin::Code).await
}

/// Marks a login failed (best effort), records it on the trace and logs why.
pub async fn mark_failed(st: &AppState, login: &login::Model, code: &str) {
    let (cause, fix) = explain(code);
    mark_failed_with(st, login, code, cause, fix, &StepLog::default()).await
}

fn explain(code: &str) -> (String, String) {
    match code {
        "email_domain_not_allowed" => (
            "The identity provider signed the person in with an email address outside the organization's domains.".into(),
            "Add the domain to the organization, or set allow_email_outside_domains in its settings if this is expected.".into(),
        ),
        "user_inactive" => (
            "The person's user is deactivated in fedgate.".into(),
            "Reactivate the user (or their SCIM provisioning) if they should have access.".into(),
        ),
        other => (format!("The sign-in failed ({other})."), "See docs/error-codes.md.".into()),
    }
}

/// [`mark_failed`] with an explicit cause, fix and the steps recorded so far.
pub async fn mark_failed_with(
    st: &AppState,
    login: &login::Model,
    code: &str,
    cause: String,
    fix: String,
    steps: &StepLog,
) {
    if let Err(e) = crate::store::logins::fail(&st.db, &login.id, code, st.clock.now()).await {
        log_internal("marking login failed", &e);
    }
    let tenant = login.tenant_id.as_ref().map(TenantId::as_str).unwrap_or("-");
    let connection = login.connection_id.as_ref().map(|c| c.as_str()).unwrap_or("-");
    let protocol = super::pending::connector_state(login).map(|s| s.protocol()).unwrap_or("-");
    st.metrics.inc(
        "fedgate_logins_total",
        &[("tenant", tenant), ("connection", connection), ("protocol", protocol), ("code", code), ("result", "failed")],
    );
    let data = serde_json::json!({"login_id": login.id, "tenant_id": login.tenant_id, "connection_id": login.connection_id,
                                  "client_id": login.client_id, "error_code": code});
    let tenant_id = login.tenant_id.as_ref().map(TenantId::as_str);
    if let Err(e) = crate::events::emit(&st.db, &*st.rng, st.clock.now(), tenant_id, "login.failed", data).await {
        log_internal("emitting login.failed", &e);
    }
    let outcome = Outcome::Failed { code: code.to_string(), cause, fix };
    let conn = login.connection_id.as_ref().map(|c| c.as_str());
    traces::record_best_effort(&st.db, st.clock.now_ms(), login, conn, steps.take(), outcome).await;
    tracing::info!(login = %login.id, code, "login failed");
}

/// The protocol label of a connection type (a closed set: the metric's label space stays bounded).
fn protocol_label(conn_type: &str) -> &'static str {
    match conn_type {
        "oidc" => "oidc",
        "saml" => "saml",
        "dev" => "dev",
        _ => "other",
    }
}

/// The connection's display name for fixes (`Name (conn_…)`).
async fn connection_name(st: &AppState, login: &login::Model) -> String {
    match &login.connection_id {
        Some(c) => crate::store::connections::get(&st.db, c.as_str())
            .await
            .ok()
            .flatten()
            .map(|c| format!("{} ({})", c.name, c.id)),
        None => None,
    }
    .unwrap_or_else(|| "(none)".into())
}

/// Turns a connector error into what the person and the app see, and records it on the trace.
pub async fn upstream_failure(
    st: &AppState,
    login: &login::Model,
    e: UpstreamError,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    let conn_name = connection_name(st, login).await;
    // The detail (which may quote the IdP or a library: xmlsec, OpenSSL, HTTP) goes to the log
    // and the admin-only trace, bounded; the person sees the code and a fixed sentence.
    let cause = e.detail();
    tracing::warn!(login = %login.id, code = %e.code(), detail = %cause, "upstream sign-in failed");
    mark_failed_with(st, login, e.code().as_str(), cause, e.fix(&conn_name), steps).await;
    if super::portal_test::is_test(login) {
        // The setup portal's result page shows the trace (cause and fix).
        return Ok(redirect(StatusCode::SEE_OTHER, &login.redirect_uri));
    }
    match e {
        UpstreamError::Denied(_) => {
            Ok(redirect(StatusCode::SEE_OTHER, &error_url(st, login, "access_denied", "the sign-in was declined")))
        }
        UpstreamError::Unreachable(_) => Err(PageError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::UpstreamUnreachable,
            "Your sign-in service is not responding",
            "Your organization's identity provider could not be reached. Try again in a few minutes; if it keeps happening, tell your administrator.",
        )
        .with_trace(login.id.to_string())
        .with_back(error_url(st, login, "temporarily_unavailable", "the identity provider could not be reached"))),
        other => Err(PageError::new(
            StatusCode::BAD_GATEWAY,
            other.code(),
            "Sign-in could not be completed",
            format!("{} Your administrator can find the details under this code.", other.public_message()),
        )
        .with_trace(login.id.to_string())
        .with_back(error_url(st, login, "server_error", "the sign-in could not be completed"))),
    }
}

/// What a finished login answers the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLogin {
    /// An authorization code to the app's redirect_uri (the normal case).
    Code,
    /// Only fedgate's session, then this URL (IdP-initiated SAML: the app starts a fresh OIDC
    /// flow there, which the session answers).
    SessionThen(String),
}

/// Finishes a login: normalizes the upstream identity, applies tenant policy, links the person,
/// opens a session, issues a code — one transaction — and redirects to the app.
pub async fn finish(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    up: UpstreamIdentity,
    steps: &StepLog,
) -> Result<HttpResponse, PageError> {
    finish_then(st, login, conn, up, steps, AfterLogin::Code).await
}

/// The clock skew a connection allows (its own setting; 120 s for the dev connector).
fn clock_skew_of(st: &AppState, conn: &connection::Model) -> i64 {
    match st.connectors.open(conn) {
        Ok(Opened::Saml(c)) => c.config.clock_skew_secs,
        Ok(Opened::Oidc(c)) => c.config.clock_skew,
        _ => 120,
    }
}

/// Whether this login is a self-serve sign-up (its tenant is the app's default tenant) with an
/// address at another tenant's verified domain.
async fn captures_enterprise_domain(
    st: &AppState,
    login: &login::Model,
    tenant_id: &str,
    domain: &str,
) -> Result<bool, PageError> {
    let Some(owner) = crate::tenant::by_domain(&st.db, domain).await? else { return Ok(false) };
    if owner.id == tenant_id {
        return Ok(false);
    }
    let client = crate::store::clients::get(&st.db, &login.client_id).await?;
    Ok(client.and_then(|c| c.default_tenant_id).is_some_and(|d| d == tenant_id))
}

/// [`finish`] with a choice of answer.
pub async fn finish_then(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    up: UpstreamIdentity,
    steps: &StepLog,
    after: AfterLogin,
) -> Result<HttpResponse, PageError> {
    finish_in(st, login, conn, None, up, steps, after).await
}

/// [`finish_then`] with the connection's tenant when the caller read it already (in the query
/// that read the login): `None` reads it here.
#[tracing::instrument(name = "login.complete", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty))]
pub async fn finish_in(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    tenant: Option<RoutedTenant>,
    up: UpstreamIdentity,
    steps: &StepLog,
    after: AfterLogin,
) -> Result<HttpResponse, PageError> {
    crate::telemetry::record_login(Some(&conn.tenant_id), Some(&conn.id));
    if super::portal_test::is_test(login) {
        // A setup portal test: checks and claims only (no user, session or code).
        return super::portal_test::finish(st, login, conn, up, steps).await;
    }
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    // The dev connector's confirmation page is the authentication itself.
    let upstream_auth_time = if conn.conn_type == "dev" { up.auth_time.or(Some(now)) } else { up.auth_time };
    if let Err(cause) = claims::check_reauthentication(
        login.prompt.as_deref(),
        login.max_age,
        login.created_at,
        upstream_auth_time,
        clock_skew_of(st, conn),
        now,
    ) {
        return upstream_failure(st, login, UpstreamError::ReauthenticationMissing(cause), steps).await;
    }
    // The session's auth_time is when the person authenticated upstream, when the IdP says so
    // (never in the future, never before 1970).
    let auth_time = upstream_auth_time.map_or(now, |t| t.clamp(0, now));
    let mut ident = match claims::normalize(up) {
        Ok(i) => i,
        Err(m) => return upstream_failure(st, login, UpstreamError::InvalidResponse(m.into()), steps).await,
    };
    // The tenant and its domains, when the caller read them with the login (one query).
    let (tenant, known_domains) = match tenant.filter(|t| t.tenant.id == conn.tenant_id) {
        Some(t) => (t.tenant, Some(t.domains)),
        None => (crate::tenant::get(&st.db, &conn.tenant_id).await?.ok_or_else(PageError::internal)?, None),
    };
    let settings = crate::tenant::settings_of(&tenant);
    if let Some(email) = &ident.email {
        let domains: Vec<String> = match known_domains {
            Some(d) => d,
            None => crate::tenant::domain_rows_of(&st.db, &tenant.id).await?.into_iter().map(|d| d.domain).collect(),
        };
        let domain = claims::email_domain(email).unwrap_or_default();
        // The IdP vouching is not enough: fedgate calls an address verified only in a domain of
        // the tenant (whatever allow_email_outside_domains lets in).
        let vouched = ident.email_verified;
        ident.email_verified = vouched && crate::tenant::email_in_tenant_domains(email, &domains);
        if !settings.allow_email_outside_domains && !domains.contains(&domain) {
            let (cause, fix) = explain("email_domain_not_allowed");
            let cause =
                format!("{cause} The address is at {domain}; the organization's domains are {}.", domains.join(", "));
            // The trace keeps the address the IdP asserted, so the console finds it by email.
            let mut traced = login.clone();
            traced.login_hint = Some(email.clone());
            mark_failed_with(st, &traced, "email_domain_not_allowed", cause, fix, steps).await;
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::EmailDomainNotAllowed,
                "Email address not allowed",
                format!(
                    "Your identity provider signed you in as an address at {domain}, which is not a domain of {}.",
                    tenant.name
                ),
            )
            .with_trace(login.id.to_string())
            .with_back(error_url(
                st,
                login,
                "access_denied",
                "the email domain is not allowed for this organization",
            )));
        }
        // Self-serve never captures an enterprise domain: a sign-up through the app's default
        // tenant with an address at another tenant's verified domain is refused (that
        // organization signs its people in through its own IdP).
        if !domains.contains(&domain) && captures_enterprise_domain(st, login, &tenant.id, &domain).await? {
            let cause = format!(
                "The app's self-serve tenant received an address at {domain}, a verified domain of another organization."
            );
            let fix = "The person signs in with their work email on the email page; it goes to their organization's identity provider.".to_string();
            let mut traced = login.clone();
            traced.login_hint = Some(email.clone());
            mark_failed_with(st, &traced, ErrorCode::EnterpriseDomainSsoRequired.as_str(), cause, fix, steps).await;
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::EnterpriseDomainSsoRequired,
                "Use your organization's sign-in",
                format!("Addresses at {domain} sign in through their organization. Go back and enter your work email."),
            )
            .with_trace(login.id.to_string())
            .with_back(error_url(
                st,
                login,
                "access_denied",
                "the address belongs to an organization with its own sign-in",
            )));
        }
        if vouched && !ident.email_verified {
            steps.push(
                "email_untrusted",
                now_ms,
                0,
                serde_json::json!({ "email_domain": domain, "note": "the IdP vouched for the address, but its domain is not one of the organization's: email_verified is false" }),
            );
        }
    }
    // MFA: the tenant's policy (or the connection's override) and the app's acr_values, checked
    // against the IdP's verified answer (amr, acr / AuthnContextClassRef).
    let need = super::mfa::need(&tenant, conn, login);
    let assessed =
        claims::mfa::assess(&need.vendor, &ident.amr, claims::upstream_acr(&ident.attributes), need.idp_enforced);
    let policy_unmet = need.policy && assessed.level < claims::mfa::Level::IdpEnforced;
    let app_unmet = need.app.is_some_and(|l| assessed.level < l);
    steps.push(
        "mfa_checked",
        st.clock.now_ms(),
        0,
        serde_json::json!({ "acr": assessed.level.acr(), "evidence": assessed.evidence, "policy_required": need.policy,
                            "app_acr": need.app.map(|l| l.acr()), "met": !policy_unmet && !app_unmet }),
    );
    if policy_unmet || app_unmet {
        let code = ErrorCode::MfaRequiredNotMet;
        let why = match (policy_unmet, need.app) {
            (true, _) => "The organization requires MFA for this connection".to_string(),
            (false, Some(l)) => format!("The application asked for acr_values {}", l.acr()),
            (false, None) => String::new(),
        };
        let cause = format!(
            "{why}, but the identity provider's verified answer does not show it ({}); fedgate rates this sign-in {}.",
            assessed.evidence,
            assessed.level.acr()
        );
        let fix =
            claims::mfa::fix(&need.vendor, &conn.conn_type, &need.preset, &format!("{} ({})", conn.name, conn.id));
        mark_failed_with(st, login, code.as_str(), cause, fix, steps).await;
        if !policy_unmet {
            // The app's own step-up: it decides what to do (OpenID Connect Core errata, RFC 9470).
            return Ok(redirect(
                StatusCode::SEE_OTHER,
                &error_url(
                    st,
                    login,
                    "unmet_authentication_requirements",
                    "the sign-in did not meet the requested acr_values",
                ),
            ));
        }
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            code,
            "Multi-factor authentication required",
            format!(
                "{} requires multi-factor authentication, and your identity provider did not confirm that you used it. Sign in again with your second factor; if this keeps happening, tell your administrator.",
                tenant.name
            ),
        )
        .with_trace(login.id.to_string())
        .with_back(error_url(st, login, "access_denied", "multi-factor authentication is required")));
    }
    // Two first logins of the same person at once (PostgreSQL runs them concurrently) race to
    // create the identity; the loser retries and links to the winner's user.
    let mut attempt = 0;
    let (tx, linked) = loop {
        attempt += 1;
        let tx = write_tx(&st.db).await?;
        match crate::directory::link_login(&tx, &tenant.id, &conn.id, &ident, &settings, now_ms, &*st.rng).await {
            Ok(l) => break (tx, l),
            Err(crate::directory::LinkError::Inactive) => {
                drop(tx);
                let (cause, fix) = explain("user_inactive");
                mark_failed_with(st, login, "user_inactive", cause, fix, steps).await;
                return Ok(redirect(
                    StatusCode::SEE_OTHER,
                    &error_url(st, login, "access_denied", "the user is deactivated"),
                ));
            }
            Err(crate::directory::LinkError::Db(e)) if attempt < 3 && crate::store::is_unique_violation(&e) => {
                drop(tx);
                tracing::debug!(login = %login.id, "identity created concurrently; retrying the link");
            }
            Err(crate::directory::LinkError::Db(e)) => return Err(e.into()),
        }
    };
    let session_id = SessionId::new(&*st.rng);
    let session_secret = new_token("fgs_", &*st.rng);
    let session = crate::store::sessions::NewSession {
        id: session_id.to_string(),
        cookie_hash: sha256_hex(&session_secret),
        user_id: linked.user.id.clone(),
        tenant_id: tenant.id.clone(),
        connection_id: conn.id.clone(),
        auth_time,
        amr: ident.amr.clone(),
        acr: assessed.level.acr().to_string(),
        created_at: now,
        expires_at: now + st.config.tokens.session_ttl,
    };
    let (code, location) = match &after {
        AfterLogin::Code => {
            let (code, row) = new_code(
                st,
                CodeFor {
                    login_id: login.id.as_str(),
                    client_id: &login.client_id,
                    redirect_uri: &login.redirect_uri,
                    scope: &login.scope,
                    nonce: login.nonce.clone(),
                    code_challenge: login.code_challenge.clone(),
                    user_id: &linked.user.id,
                    session_id: session_id.as_str(),
                    auth_time,
                },
            );
            (Some(row), success_url(st, &login.redirect_uri, &code, login.state.as_deref()))
        }
        AfterLogin::SessionThen(url) => (None, url.clone()),
    };
    let done_ms = st.clock.now_ms();
    steps.push(
        "user_linked",
        done_ms,
        done_ms - now_ms,
        serde_json::json!({ "user_id": linked.user.id, "created": linked.created, "groups": ident.groups.len() }),
    );
    match &after {
        AfterLogin::Code => steps.push("code_issued", done_ms, 0, serde_json::json!({ "client_id": login.client_id })),
        AfterLogin::SessionThen(_) => {
            steps.push("session_opened", done_ms, 0, serde_json::json!({ "next": "initiate_login_uri" }))
        }
    }
    let mut traced = login.clone();
    traced.tenant_id = Some(TenantId::from_db(tenant.id.clone()));
    if ident.email.is_some() {
        traced.login_hint = ident.email.clone();
    }
    let taken = steps.take();
    let append = traces::append_of(&traced, Some(&tenant.id), Some(&conn.id), &taken, &Outcome::Completed, done_ms);
    // A first login's user.created goes before login.succeeded (it is rolled back with the
    // transaction if the login turns out to be finished already).
    if linked.created {
        crate::events::emit(
            &tx,
            &*st.rng,
            now,
            Some(&tenant.id),
            "user.created",
            crate::directory::user_event(&linked.user, "sso"),
        )
        .await?;
    }
    let succeeded = crate::store::events::NewEvent {
        tenant_id: Some(tenant.id.clone()),
        event_type: "login.succeeded".into(),
        data: serde_json::json!({"login_id": login.id, "user_id": linked.user.id, "tenant_id": tenant.id,
                                 "connection_id": conn.id, "client_id": login.client_id,
                                 "session_id": session_id.as_str()}),
    };
    // The session, the code, the login's completion, the trace and login.succeeded: one
    // statement on PostgreSQL.
    let completing = crate::store::logins::Completing { session, code, trace: append, event: Some(succeeded) };
    let completion = crate::store::logins::complete_with_session(&tx, &*st.rng, &login.id, now, completing).await?;
    if !completion.done {
        // Another request finished (or failed) this login first: a replayed callback.
        drop(tx);
        return Err(PageError::bad_request(ErrorCode::LoginAlreadyUsed, "This sign-in has already been completed."));
    }
    if !completion.traced {
        traces::record(&tx, &traced, Some(&tenant.id), Some(&conn.id), taken, Outcome::Completed, done_ms).await?;
    }
    tx.commit().await?;
    st.metrics.inc(
        "fedgate_logins_total",
        &[
            ("tenant", &tenant.id),
            ("connection", &conn.id),
            ("protocol", protocol_label(&conn.conn_type)),
            ("code", "ok"),
            ("result", "succeeded"),
        ],
    );
    tracing::info!(login = %login.id, user = %linked.user.id, tenant = %tenant.id, connection = %conn.id, jit = linked.created, "login succeeded");
    let cookie = build_cookie(SESSION_COOKIE, session_secret, st.config.secure_cookies(), st.config.tokens.session_ttl);
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
