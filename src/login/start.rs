//! Sending a login to a connection: the connector's `begin`, its state stored on the pending
//! login, and the browser sent upstream (a redirect, or an auto-submitting form).
use super::complete::upstream_failure;
use super::pending::context;
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{redirect, AppState};
use crate::ids::{ConnectionId, TenantId};
use crate::store::entities::{connection, login, tenant};
use crate::templates::Field;
use crate::traces::{self, Outcome};
use crate::upstream::{LoginAction, StepLog};
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

/// Whether a pending login is a row yet. The authorization endpoint routes a new login before
/// writing it, so that a login sent straight to a connection is written once, routed: one
/// INSERT where an INSERT and the routing UPDATE were. Any other outcome writes it as it is
/// ([`Row::save`]) before answering: the pages that follow read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// The login is in the database as it is.
    Stored,
    /// In the database, but the email typed on the work-email page (its `login_hint`) and the
    /// tenant found for it are not written yet: routed to a connection they go with the routing
    /// `UPDATE`, one statement where three were.
    Discovered,
    /// Not written yet (the authorization endpoint's routing).
    New,
}

impl Row {
    /// Writes the login as it is: inserted when [`Row::New`], its discovered email and tenant
    /// when [`Row::Discovered`], nothing when stored.
    pub async fn save(self, st: &AppState, login: &login::Model) -> Result<(), PageError> {
        match self {
            Row::Stored => {}
            Row::New => {
                crate::store::logins::insert_model(&st.db, login).await?;
            }
            Row::Discovered => {
                let (hint, tenant) = (login.login_hint.as_deref(), login.tenant_id.as_ref());
                crate::store::logins::set_discovered(&st.db, &login.id, hint, tenant).await?;
            }
        }
        Ok(())
    }
}

/// Sends the browser to a connection (a connection of the login's tenant).
pub async fn start_connection(
    st: &AppState,
    login: &login::Model,
    conn: &connection::Model,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    start_connection_in(st, login, Row::Stored, conn, None, status).await
}

/// [`start_connection`] with the connection's tenant when the caller holds it already (one
/// query less): `None` reads it. A [`Row::New`] login is written here, routed.
#[tracing::instrument(name = "login.upstream_begin", skip_all, fields(tenant = tracing::field::Empty, connection = tracing::field::Empty))]
pub async fn start_connection_in(
    st: &AppState,
    login: &login::Model,
    row: Row,
    conn: &connection::Model,
    tenant: Option<&tenant::Model>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    // Drafts of the setup portal (disabled until tested) take test sign-ins only.
    let usable = conn.enabled || super::portal_test::is_test(login);
    if login.tenant_id.as_ref().is_some_and(|t| t.as_str() != conn.tenant_id) || !usable {
        row.save(st, login).await?;
        return Err(PageError::bad_request(
            ErrorCode::ConnectionNotAllowed,
            "That sign-in method is not available for your organization.",
        ));
    }
    let steps = StepLog::default();
    let mut pending = login.clone();
    pending.tenant_id = Some(TenantId::from_db(conn.tenant_id.clone()));
    pending.connection_id = Some(ConnectionId::from_db(conn.id.clone()));
    steps.push(
        "routed_to_connection",
        st.clock.now_ms(),
        0,
        serde_json::json!({ "connection_id": conn.id, "type": conn.conn_type, "name": conn.name }),
    );
    let opened = match st.connectors.open(conn) {
        Ok(c) => c,
        Err(e) => {
            row.save(st, login).await?;
            return upstream_failure(st, &pending, e, &steps).await;
        }
    };
    crate::telemetry::record_login(Some(&conn.tenant_id), Some(&conn.id));
    let mut ctx = context(st, login, conn, &steps);
    let tenant = match tenant.filter(|t| t.id == conn.tenant_id) {
        Some(t) => Some(t.clone()),
        None => crate::tenant::get(&st.db, &conn.tenant_id).await?,
    };
    if let Some(t) = tenant {
        let need = super::mfa::need(&t, conn, login);
        ctx.require_mfa = need.ask();
        if ctx.require_mfa {
            steps.push(
                "mfa_required",
                st.clock.now_ms(),
                0,
                serde_json::json!({ "policy": need.policy, "app_acr": need.app.map(|l| l.acr()), "preset": need.preset,
                                    "idp_signal": need.vendor.has_signal, "mfa_enforced_by_idp": need.idp_enforced }),
            );
        }
    }
    let start = match opened.connector().begin(&ctx).await {
        Ok(s) => s,
        Err(e) => {
            row.save(st, login).await?;
            return upstream_failure(st, &pending, e, &steps).await;
        }
    };
    let expires_at = st.clock.now() + st.config.tokens.login_ttl;
    let routed = match row {
        Row::Stored | Row::Discovered => {
            crate::store::logins::route(
                &st.db,
                &login.id,
                pending.tenant_id.as_ref().unwrap_or(&TenantId::from_db(conn.tenant_id.clone())),
                &ConnectionId::from_db(conn.id.clone()),
                &start.state.to_stored(),
                expires_at,
                if row == Row::Discovered { pending.login_hint.as_deref() } else { None },
            )
            .await?
        }
        Row::New => {
            let mut routed = pending.clone();
            routed.connector_state = Some(start.state.to_stored());
            routed.expires_at = expires_at;
            // With its trace, in one statement where the database allows it.
            let tenant = pending.tenant_id.as_ref().map(|t| t.as_str());
            let trace = traces::routed_row(&pending, tenant, Some(&conn.id), &steps.take(), st.clock.now_ms());
            crate::store::logins::insert_with_trace(&st.db, &routed, trace).await?;
            true
        }
    };
    if !routed {
        return Err(PageError::bad_request(ErrorCode::LoginAlreadyUsed, "This sign-in has already been completed."));
    }
    if row != Row::New {
        traces::record_best_effort(&st.db, st.clock.now_ms(), &pending, Some(&conn.id), steps.take(), Outcome::Pending)
            .await;
    }
    tracing::info!(login = %login.id, connection = %conn.id, "login routed to connection");
    match start.action {
        LoginAction::Redirect(url) => Ok(redirect(status, &url)),
        LoginAction::AutoPost { url, fields } => Ok(auto_post(&url, &fields)),
    }
}

/// The auto-POST form to the upstream (SAML HTTP-POST binding): no JavaScript, one button.
fn auto_post(url: &str, fields: &[(String, String)]) -> HttpResponse {
    let fields: Vec<Field> = fields.iter().map(|(name, value)| Field { name, value }).collect();
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    crate::templates::respond(builder, "auto_post.html", serde_json::json!({ "url": url, "fields": fields }))
}
