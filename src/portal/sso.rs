//! `/setup/sso`: the SSO wizard of the setup portal.
//!
//! 1. Pick the vendor. A SAML vendor creates a **draft** connection at once (disabled, state
//!    `draft`: never used for real logins or home-realm discovery), so the values to paste into
//!    the IdP's console exist from the first step: ACS URL, SP entity ID, SP metadata URL (and
//!    download), labelled with the vendor's own field names, the attribute table, and the
//!    vendor's steps from `docs/connections/*.md` ([`super::steps`]). OIDC asks for the issuer,
//!    client id and secret, and shows the redirect URI.
//! 2. Complete the IdP side: metadata URL (fetched through the SSRF-guarded client), metadata
//!    XML, or typed fields (entity ID, SSO URL, certificate). The result is parsed and echoed
//!    back (entity ID, SSO URL, certificate subject and days to expiry); mistakes are explained
//!    next to the field. Any such change re-locks the connection (draft, disabled).
//! 3. Test sign-in (`login::portal_test`), in a new tab; the result page shows each check, the
//!    claims the app would receive, and on failure the trace's cause and fix.
//! 4. Activate: only when a test passed with the current configuration (`tested_version`).
//! 5. Certificates: expiry on the page; a rotation form adds the new certificate beside the old.
use super::steps::{self, Guide, Values};
use super::{form, Intent, PortalSession};
use crate::claims::saml::{candidates, Field, SamlPreset};
use crate::error_code::ErrorCode;
use crate::http::error::PageError;
use crate::http::{redirect, AppState, Params};
use crate::ids::ConnectionId;
use crate::store::audited;
use crate::store::connections::{self as store, ConnectionChanges, NewConnection};
use crate::store::entities::connection::{self, ConnectionState};
use crate::store::events::NewEvent;
use crate::upstream::connections::{seal_secrets, take_secrets, ConnectionConfig, ConnectionType};
use crate::upstream::saml::{self, metadata, RequestBinding, SamlConfig, SpUrlForm};
use crate::validation::Invalid;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup/sso", web::get().to(index))
        .route("/setup/sso", web::post().to(pick))
        .route("/setup/sso/new-oidc", web::get().to(oidc_new))
        .route("/setup/sso/new-oidc", web::post().to(oidc_create))
        .route("/setup/sso/tests/{login}", web::get().to(test_result))
        .route("/setup/sso/{id}", web::get().to(show))
        .route("/setup/sso/{id}/idp", web::post().to(set_idp))
        .route("/setup/sso/{id}/oidc", web::post().to(oidc_update))
        .route("/setup/sso/{id}/test", web::get().to(test_start))
        .route("/setup/sso/{id}/activate", web::post().to(activate))
        .route("/setup/sso/{id}/certificates", web::post().to(add_certificate));
}

/// A vendor of the wizard.
#[derive(Debug, Clone, Copy)]
pub struct Vendor {
    pub id: &'static str,
    pub name: &'static str,
    /// SAML preset (`None`: OpenID Connect).
    pub preset: Option<SamlPreset>,
    /// The vendor console's names for the ACS URL, the SP entity ID and the SP metadata URL.
    pub labels: [&'static str; 3],
    pub guide: &'static Guide,
}

pub const VENDORS: &[Vendor] = &[
    Vendor {
        id: "okta",
        name: "Okta",
        preset: Some(SamlPreset::Okta),
        labels: [
            "Single sign-on URL",
            "Audience URI (SP Entity ID)",
            "SP metadata (Okta cannot import it; for reference)",
        ],
        guide: &steps::OKTA,
    },
    Vendor {
        id: "entra",
        name: "Microsoft Entra ID",
        preset: Some(SamlPreset::Entra),
        labels: [
            "Reply URL (Assertion Consumer Service URL)",
            "Identifier (Entity ID)",
            "Metadata file (Upload metadata file)",
        ],
        guide: &steps::ENTRA,
    },
    Vendor {
        id: "google",
        name: "Google Workspace",
        preset: Some(SamlPreset::Google),
        labels: ["ACS URL", "Entity ID", "SP metadata (for reference)"],
        guide: &steps::GOOGLE,
    },
    Vendor {
        id: "adfs",
        name: "AD FS",
        preset: Some(SamlPreset::Adfs),
        labels: [
            "Relying party SAML 2.0 SSO service URL",
            "Relying party trust identifier",
            "Federation metadata address (host name or URL)",
        ],
        guide: &steps::ADFS,
    },
    Vendor {
        id: "onelogin",
        name: "OneLogin",
        preset: Some(SamlPreset::Onelogin),
        labels: ["ACS (Consumer) URL", "Audience (EntityID)", "SP metadata (for reference)"],
        guide: &steps::ONELOGIN,
    },
    Vendor {
        id: "jumpcloud",
        name: "JumpCloud",
        preset: Some(SamlPreset::Jumpcloud),
        labels: ["ACS URLs", "SP Entity ID", "SP metadata (for reference)"],
        guide: &steps::JUMPCLOUD,
    },
    Vendor {
        id: "ping",
        name: "PingOne / PingFederate",
        preset: Some(SamlPreset::Ping),
        labels: [
            "ACS URLs / Assertion Consumer Service URL",
            "Entity ID / Partner's Entity ID",
            "SP metadata URL (PingFederate)",
        ],
        guide: &steps::PING,
    },
    Vendor {
        id: "saml",
        name: "Other SAML 2.0 provider",
        preset: Some(SamlPreset::Generic),
        labels: ["Assertion Consumer Service (ACS) URL", "SP entity ID (Audience)", "SP metadata URL"],
        guide: &steps::GENERIC_SAML,
    },
    Vendor {
        id: "oidc",
        name: "Other OpenID Connect provider",
        preset: None,
        labels: ["Redirect URI", "", ""],
        guide: &steps::GENERIC_OIDC,
    },
];

fn vendor(id: &str) -> Option<&'static Vendor> {
    VENDORS.iter().find(|v| v.id == id)
}

/// The vendor a connection was made for (from its protocol and preset).
fn vendor_of(row: &connection::Model, cfg: &ConnectionConfig) -> &'static Vendor {
    let id = match cfg {
        ConnectionConfig::Saml(c) => VENDORS.iter().find(|v| v.preset == Some(c.preset)).map_or("saml", |v| v.id),
        _ => "oidc",
    };
    let _ = row;
    vendor(id).unwrap_or(&VENDORS[VENDORS.len() - 1])
}

fn not_found() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ConnectionNotFound,
        "Connection not found",
        "This connection does not exist, or does not belong to the organization of your setup link.",
    )
}

/// A connection of the session's tenant (another tenant's is simply not found).
async fn load(st: &AppState, ps: &PortalSession, id: &str) -> Result<connection::Model, PageError> {
    if id.len() > 64 {
        return Err(not_found());
    }
    store::get_of_tenant(&st.db, &ps.tenant.id, id).await?.ok_or_else(not_found)
}

fn config_of(row: &connection::Model) -> Result<ConnectionConfig, PageError> {
    ConnectionConfig::from_row(row).map_err(|e| {
        tracing::error!(connection = %row.id, error = %e, "stored connection config is corrupt");
        PageError::internal()
    })
}

fn see_other(st: &AppState, path: &str) -> HttpResponse {
    redirect(StatusCode::SEE_OTHER, &format!("{}{path}", st.config.issuer))
}

fn event(tenant_id: &str, kind: &str, row: &connection::Model) -> NewEvent {
    NewEvent {
        tenant_id: Some(tenant_id.to_string()),
        event_type: kind.into(),
        data: json!({"id": row.id, "tenant_id": row.tenant_id, "type": row.conn_type, "name": row.name, "state": row.state.as_str()}),
    }
}

/// `GET /setup/sso`: the tenant's connections and the vendor picker.
async fn index(st: web::Data<AppState>, ps: PortalSession) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let rows = store::all_of_tenant(&st.db, &ps.tenant.id, 50).await?;
    let conns: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "name": r.name, "type": r.conn_type, "state": r.state.as_str(), "enabled": r.enabled,
                   "href": format!("/setup/sso/{}", r.id)})
        })
        .collect();
    let vendors: Vec<Value> = VENDORS.iter().map(|v| json!({"id": v.id, "name": v.name})).collect();
    Ok(ps.page(Some(Intent::Sso), "portal_sso.html", json!({"connections": conns, "vendors": vendors})))
}

/// `POST /setup/sso` (`vendor`): a SAML vendor gets its draft connection now; OIDC asks first.
async fn pick(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let v = f.get("vendor").and_then(vendor).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "Choose a provider",
            "Choose your identity provider from the list.",
        )
    })?;
    let Some(preset) = v.preset else {
        return Ok(see_other(&st, "/setup/sso/new-oidc"));
    };
    let row = create_saml_draft(&st, &ps, v, preset).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", row.id)))
}

/// A draft SAML connection: its SP key pair and URLs, no IdP yet.
async fn create_saml_draft(
    st: &AppState,
    ps: &PortalSession,
    v: &Vendor,
    preset: SamlPreset,
) -> Result<connection::Model, PageError> {
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let id = ConnectionId::new(now_ms, &*st.rng).to_string();
    let (key, cert) = metadata::generate_sp_key(&format!("fedgate SAML SP {id}"), now).map_err(|e| {
        tracing::error!(error = %e, "SP key generation failed");
        PageError::internal()
    })?;
    let cfg = SamlConfig {
        metadata_url: None,
        idp_entity_id: String::new(),
        sso_url_redirect: None,
        sso_url_post: None,
        idp_certificates: vec![],
        retired_certificates: vec![],
        preset,
        attribute_mapping: Default::default(),
        request_binding: RequestBinding::Redirect,
        sign_requests: true,
        allow_sha1: false,
        clock_skew_secs: 120,
        require_encrypted_assertions: false,
        require_aes_gcm: false,
        trusted_email_domains: vec![],
        allowed_tenant_ids: vec![],
        idp_initiated: Default::default(),
        sp_certificate: cert,
        metadata_refreshed_at: None,
        metadata_refresh_error: None,
        expiry_warned: vec![],
        sp_url_form: SpUrlForm::Hyphen,
        mfa: Default::default(),
        mfa_enforced_by_idp: false,
        mfa_authn_contexts: vec![],
    };
    let mut secrets = Map::new();
    secrets.insert(saml::SP_KEY_FIELD.into(), Value::String(key));
    let secrets_enc = seal_secrets(&st.upstream, &id, &secrets);
    let new = NewConnection {
        id,
        tenant_id: ps.tenant.id.clone(),
        conn_type: "saml".into(),
        name: v.name.to_string(),
        enabled: false,
        config: Value::Object(ConnectionConfig::Saml(Box::new(cfg)).to_fields()).to_string(),
        secrets_enc,
        now,
    };
    let who = ps.actor_name();
    let tx = audited::begin(&st.db).await?;
    let row = store::insert_in_state(&*tx, new, ConnectionState::Draft).await?;
    let entry = ps.actor(&who).entry(
        now,
        "connection.create",
        "connection",
        Some(&row.id),
        Some(&ps.tenant.id),
        json!({"type": "saml", "name": row.name, "state": "draft", "vendor": v.id}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(row)
}

/// `GET /setup/sso/new-oidc`: the redirect URI and the OIDC form.
async fn oidc_new(st: web::Data<AppState>, ps: PortalSession) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    Ok(oidc_form_page(&st, &ps, None, &Map::new(), StatusCode::OK))
}

fn oidc_form_page(
    st: &AppState,
    ps: &PortalSession,
    row: Option<&connection::Model>,
    errors: &Map<String, Value>,
    status: StatusCode,
) -> HttpResponse {
    let redirect_uri = crate::upstream::oidc::connector::callback_url(&st.config.issuer);
    let steps_html = steps::render(
        &steps::GENERIC_OIDC,
        &Values {
            issuer: &st.config.issuer,
            acs_url: None,
            sp_entity_id: None,
            sp_metadata_url: None,
            redirect_uri: Some(&redirect_uri),
        },
    );
    ps.page_with(
        HttpResponse::build(status),
        Some(Intent::Sso),
        "portal_sso_oidc.html",
        json!({
            "redirect_uri": redirect_uri,
            "steps_html": minijinja::Value::from_safe_string(steps_html),
            "errors": errors,
            "action": row.map_or("/setup/sso/new-oidc".to_string(), |r| format!("/setup/sso/{}/oidc", r.id)),
        }),
    )
}

/// The OIDC fields of a form, or the field errors in plain words.
fn oidc_fields(f: &Params, dev_mode: bool, need_secret: bool) -> Result<Map<String, Value>, Map<String, Value>> {
    let mut errors = Map::new();
    let issuer = f.get("issuer").map(str::trim).unwrap_or("");
    let client_id = f.get("client_id").map(str::trim).unwrap_or("");
    let secret = f.get("client_secret").unwrap_or("");
    if metadata::check_idp_url(issuer, dev_mode).is_err() {
        errors.insert("issuer".into(), json!({"kind": "oidc_issuer", "detail": ""}));
    }
    if client_id.is_empty() || client_id.len() > 512 {
        errors.insert("client_id".into(), json!({"kind": "required", "detail": ""}));
    }
    if need_secret && secret.is_empty() {
        errors.insert("client_secret".into(), json!({"kind": "required", "detail": ""}));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut m = Map::new();
    m.insert("issuer".into(), issuer.trim_end_matches('/').into());
    m.insert("client_id".into(), client_id.into());
    if !secret.is_empty() {
        m.insert("client_secret".into(), secret.into());
    }
    m.insert("preset".into(), "generic".into());
    Ok(m)
}

/// `POST /setup/sso/new-oidc`: a draft OIDC connection.
async fn oidc_create(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let mut fields = match oidc_fields(&f, st.config.dev_mode, true) {
        Ok(m) => m,
        Err(errors) => return Ok(oidc_form_page(&st, &ps, None, &errors, StatusCode::BAD_REQUEST)),
    };
    let secrets = take_secrets(ConnectionType::Oidc, &mut fields).map_err(|_| PageError::internal())?;
    let config = match ConnectionConfig::from_fields(ConnectionType::Oidc, fields, st.config.dev_mode) {
        Ok(c) => c,
        Err(e) => {
            let mut errors = Map::new();
            errors.insert(
                e.field.clone().unwrap_or_else(|| "issuer".into()),
                json!({"kind": "other", "detail": e.message}),
            );
            return Ok(oidc_form_page(&st, &ps, None, &errors, StatusCode::BAD_REQUEST));
        }
    };
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let id = ConnectionId::new(now_ms, &*st.rng).to_string();
    let secrets_enc = secrets.as_ref().and_then(|s| seal_secrets(&st.upstream, &id, s));
    let new = NewConnection {
        id,
        tenant_id: ps.tenant.id.clone(),
        conn_type: "oidc".into(),
        name: "OpenID Connect".into(),
        enabled: false,
        config: Value::Object(config.to_fields()).to_string(),
        secrets_enc,
        now,
    };
    let who = ps.actor_name();
    let tx = audited::begin(&st.db).await?;
    let row = store::insert_in_state(&*tx, new, ConnectionState::Draft).await?;
    let entry = ps.actor(&who).entry(
        now,
        "connection.create",
        "connection",
        Some(&row.id),
        Some(&ps.tenant.id),
        json!({"type": "oidc", "name": row.name, "state": "draft", "vendor": "oidc"}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", row.id)))
}

/// `POST /setup/sso/{id}/oidc`: new OIDC settings (re-locks the connection).
async fn oidc_update(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let row = load(&st, &ps, &path).await?;
    if row.conn_type != "oidc" {
        return Err(not_found());
    }
    let mut fields = match oidc_fields(&f, st.config.dev_mode, false) {
        Ok(m) => m,
        Err(errors) => return connection_page(&st, &ps, &row, &errors, &f, StatusCode::BAD_REQUEST).await,
    };
    let new_secrets = take_secrets(ConnectionType::Oidc, &mut fields).map_err(|_| PageError::internal())?;
    let mut merged = config_of(&row)?.to_fields();
    for (k, v) in fields {
        merged.insert(k, v);
    }
    let config = match ConnectionConfig::from_fields(ConnectionType::Oidc, merged, st.config.dev_mode) {
        Ok(c) => c,
        Err(e) => {
            let mut errors = Map::new();
            errors.insert(
                e.field.clone().unwrap_or_else(|| "issuer".into()),
                json!({"kind": "other", "detail": e.message}),
            );
            return connection_page(&st, &ps, &row, &errors, &f, StatusCode::BAD_REQUEST).await;
        }
    };
    let mut ch = ConnectionChanges { bump_version: true, ..Default::default() };
    ch.config = Some(Value::Object(config.to_fields()).to_string());
    if let Some(new) = new_secrets {
        let mut all =
            crate::upstream::connections::open_secrets(&st.upstream, &row).map_err(|_| PageError::internal())?;
        for (k, v) in new {
            all.insert(k, v);
        }
        ch.secrets_enc = Some(seal_secrets(&st.upstream, &row.id, &all));
    }
    save_relocked(&st, &ps, row, ch, json!({"changed": "oidc"})).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", path.as_str())))
}

/// Stores a changed configuration: new version, back to draft and disabled (a test must pass
/// again before it is live), audited.
async fn save_relocked(
    st: &AppState,
    ps: &PortalSession,
    row: connection::Model,
    mut ch: ConnectionChanges,
    details: Value,
) -> Result<connection::Model, PageError> {
    let now = st.clock.now();
    let was_live = row.enabled;
    ch.enabled = Some(false);
    let who = ps.actor_name();
    let tx = audited::begin(&st.db).await?;
    let row = store::update(&*tx, row, ch, now).await?;
    let row = store::set_state(&*tx, row, ConnectionState::Draft, false, now).await?;
    let mut d = details;
    d["version"] = row.version.into();
    d["relocked"] = was_live.into();
    let entry = ps.actor(&who).entry(now, "connection.update", "connection", Some(&row.id), Some(&ps.tenant.id), d);
    let ev = was_live.then(|| event(&ps.tenant.id, "connection.deactivated", &row));
    tx.commit(&*st.rng, entry, ev).await?;
    Ok(row)
}

/// A certificate as the page shows it.
#[derive(Debug, Serialize)]
struct CertView {
    subject: String,
    not_after: String,
    days_left: i64,
    expired: bool,
    expiring: bool,
    fingerprint: String,
}

fn cert_views(pems: &[String], now: i64) -> Vec<CertView> {
    pems.iter()
        .filter_map(|p| metadata::cert_info(p).ok())
        .map(|c| CertView {
            subject: c.subject,
            not_after: crate::util::rfc3339(c.not_after),
            days_left: (c.not_after - now).div_euclid(86_400),
            expired: c.not_after <= now,
            expiring: c.not_after > now && c.not_after - now < 30 * 86_400,
            fingerprint: c.fingerprint_sha256,
        })
        .collect()
}

/// `^https:\/\/host\/sso\/saml\/conn-…\/acs$`: OneLogin's ACS URL validator for this URL.
fn onelogin_validator(acs: &str) -> String {
    let mut out = String::from("^");
    for c in acs.chars() {
        if matches!(c, '/' | '.' | '?' | '+' | '*' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

/// The connection page (SAML or OIDC), with the field errors and values of a refused form.
async fn connection_page(
    st: &AppState,
    ps: &PortalSession,
    row: &connection::Model,
    errors: &Map<String, Value>,
    given: &Params,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let cfg = config_of(row)?;
    let v = vendor_of(row, &cfg);
    let now = st.clock.now();
    let tested = row.tested_version == Some(row.version);
    let mut ctx = json!({
        "conn": {"id": row.id, "name": row.name, "type": row.conn_type, "state": row.state.as_str(), "enabled": row.enabled,
                 "version": row.version, "tested": tested},
        "vendor": {"id": v.id, "name": v.name, "acs_label": v.labels[0], "entity_label": v.labels[1], "metadata_label": v.labels[2]},
        "errors": errors,
        "given": {
            "metadata_url": given.get("metadata_url").unwrap_or(""),
            "idp_entity_id": given.get("idp_entity_id").unwrap_or(""),
            "sso_url": given.get("sso_url").unwrap_or(""),
            "issuer": given.get("issuer").unwrap_or(""),
            "client_id": given.get("client_id").unwrap_or(""),
        },
        "test_url": format!("/setup/sso/{}/test", row.id),
    });
    match &cfg {
        ConnectionConfig::Saml(c) => {
            let acs = c.acs_url(&st.config.issuer, &row.id);
            let entity = c.sp_entity_id(&st.config.issuer, &row.id);
            let steps_html = steps::render(
                v.guide,
                &Values {
                    issuer: &st.config.issuer,
                    acs_url: Some(&acs),
                    sp_entity_id: Some(&entity),
                    sp_metadata_url: Some(&entity),
                    redirect_uri: None,
                },
            );
            let attrs: Vec<Value> = [
                ("email", Field::Email),
                ("given_name", Field::GivenName),
                ("family_name", Field::FamilyName),
                ("name", Field::Name),
                ("groups", Field::Groups),
            ]
            .into_iter()
            .filter_map(|(ours, f)| candidates(c.preset, f).first().map(|n| json!({"claim": ours, "attribute": n})))
            .collect();
            let configured = !c.idp_entity_id.is_empty();
            let warnings = if st.config.secure_cookies() {
                crate::upstream::console_rules::describe(&[
                    (crate::upstream::console_rules::Value::AcsUrl, acs.as_str()),
                    (crate::upstream::console_rules::Value::SpEntityId, entity.as_str()),
                ])
            } else {
                Vec::new()
            };
            ctx["saml"] = json!({
                "acs_url": acs,
                "sp_entity_id": entity,
                "sp_metadata_url": entity,
                "sp_certificate": c.sp_certificate,
                "onelogin_validator": (v.id == "onelogin").then(|| onelogin_validator(&acs)),
                "attributes": attrs,
                "steps_html": minijinja::Value::from_safe_string(steps_html),
                "console_warnings": warnings,
                "idp": configured.then(|| json!({
                    "entity_id": c.idp_entity_id,
                    "sso_url": c.sso_url_redirect.clone().or_else(|| c.sso_url_post.clone()),
                    "metadata_url": c.metadata_url,
                    "certificates": cert_views(&c.idp_certificates, now),
                    "refresh_error": c.metadata_refresh_error,
                })),
            });
            ctx["oidc"] = Value::Null;
        }
        ConnectionConfig::Oidc(_) => {
            let fields = cfg.to_fields();
            ctx["saml"] = Value::Null;
            ctx["oidc"] = json!({
                "redirect_uri": crate::upstream::oidc::connector::callback_url(&st.config.issuer),
                "issuer": fields.get("issuer").cloned().unwrap_or(Value::Null),
                "client_id": fields.get("client_id").cloned().unwrap_or(Value::Null),
            });
        }
        ConnectionConfig::Dev(_) | ConnectionConfig::Github(_) => {
            ctx["saml"] = Value::Null;
            ctx["oidc"] = Value::Null;
        }
    }
    Ok(ps.page_with(HttpResponse::build(status), Some(Intent::Sso), "portal_sso_connection.html", ctx))
}

/// `GET /setup/sso/{id}`.
async fn show(st: web::Data<AppState>, ps: PortalSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let row = load(&st, &ps, &path).await?;
    connection_page(&st, &ps, &row, &Map::new(), &Params::default(), StatusCode::OK).await
}

fn field_error(kind: &str, detail: impl Into<String>) -> Value {
    json!({"kind": kind, "detail": detail.into()})
}

/// Mistakes recognised before parsing (plain words, next to the field).
fn precheck(st: &AppState, source: &str, f: &Params) -> Option<(String, Value)> {
    match source {
        "xml" => {
            let xml = f.get("metadata_xml").unwrap_or("");
            if xml.trim().is_empty() {
                return Some(("metadata_xml".into(), field_error("required", "")));
            }
            if xml.contains(&format!("{}/sso/saml/", st.config.issuer)) && !xml.contains("IDPSSODescriptor") {
                return Some(("metadata_xml".into(), field_error("own_metadata", "")));
            }
            if xml.contains("SPSSODescriptor") && !xml.contains("IDPSSODescriptor") {
                return Some(("metadata_xml".into(), field_error("sp_metadata", "")));
            }
            None
        }
        "url" => {
            let u = f.get("metadata_url").unwrap_or("").trim();
            if u.is_empty() {
                return Some(("metadata_url".into(), field_error("required", "")));
            }
            if u.starts_with(&st.config.issuer) {
                return Some(("metadata_url".into(), field_error("own_metadata", "")));
            }
            if u.contains(".okta.com/home/") || u.contains(".okta.com/app/") && !u.contains("/metadata") {
                return Some(("metadata_url".into(), field_error("okta_app_link", "")));
            }
            None
        }
        "manual" => {
            for k in ["idp_entity_id", "sso_url", "certificate"] {
                if f.get(k).is_none_or(|v| v.trim().is_empty()) {
                    return Some((k.into(), field_error("required", "")));
                }
            }
            None
        }
        _ => Some(("source".into(), field_error("required", ""))),
    }
}

/// A refusal of `saml::prepare`, in words an IT admin understands, next to the right field.
fn explain(source: &str, e: &Invalid) -> (String, Value) {
    let field = match source {
        "url" => "metadata_url",
        "xml" => "metadata_xml",
        _ => match e.field.as_deref() {
            Some("idp_certificates") => "certificate",
            Some("sso_url_redirect") | Some("sso_url_post") => "sso_url",
            Some(f) => f,
            None => "idp_entity_id",
        },
    };
    let m = e.message.as_str();
    let kind = match e.code {
        ErrorCode::MetadataUnreachable => "unreachable",
        ErrorCode::InvalidCertificate => "not_a_certificate",
        ErrorCode::InvalidUrl => "not_https",
        ErrorCode::InvalidMetadata if m.contains("not well-formed") || m.contains("not SAML 2.0 metadata") => {
            "not_metadata"
        }
        ErrorCode::InvalidMetadata if m.contains("no identity provider") => "sp_metadata",
        ErrorCode::InvalidMetadata if m.contains("no signing certificate") => "no_signing_cert",
        ErrorCode::InvalidMetadata if m.contains("SingleSignOnService") => "no_sso_url",
        ErrorCode::InvalidMetadata if m.contains("several identity providers") => "several_idps",
        ErrorCode::InvalidMetadata if m.contains("DTD") => "not_metadata",
        ErrorCode::InvalidMetadata if m.contains("larger than") => "too_large",
        _ => "other",
    };
    (field.to_string(), field_error(kind, m.chars().take(300).collect::<String>()))
}

/// `POST /setup/sso/{id}/idp` (`source` = `url`, `xml` or `manual`): the IdP side of a SAML
/// connection. Parsed, checked and echoed back; the connection is re-locked.
async fn set_idp(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let row = load(&st, &ps, &path).await?;
    let ConnectionConfig::Saml(prev) = config_of(&row)? else {
        return Err(not_found());
    };
    let source = f.get("source").unwrap_or("");
    let refuse = |field: String, err: Value| {
        let mut errors = Map::new();
        errors.insert(field, err);
        errors
    };
    if let Some((field, err)) = precheck(&st, source, &f) {
        return connection_page(&st, &ps, &row, &refuse(field, err), &f, StatusCode::BAD_REQUEST).await;
    }
    // The previous options, and only the new IdP source.
    let mut fields = prev.input_fields();
    for k in ["metadata_url", "idp_entity_id", "sso_url_redirect", "sso_url_post", "idp_certificates"] {
        fields.remove(k);
    }
    fields.remove("request_binding");
    match source {
        "url" => {
            fields.insert("metadata_url".into(), f.get("metadata_url").unwrap_or("").trim().into());
        }
        "xml" => {
            fields.insert("metadata_xml".into(), f.get("metadata_xml").unwrap_or("").into());
        }
        _ => {
            fields.insert("idp_entity_id".into(), f.get("idp_entity_id").unwrap_or("").trim().into());
            fields.insert("sso_url_redirect".into(), f.get("sso_url").unwrap_or("").trim().into());
            fields.insert("idp_certificates".into(), json!([f.get("certificate").unwrap_or("")]));
        }
    }
    let now = st.clock.now();
    let mut probe = (*prev).clone();
    probe.metadata_url = None; // a new URL is always fetched
    let cfg =
        match saml::prepare(fields, Some(&probe), prev.sp_certificate.clone(), &st.upstream, st.config.dev_mode, now)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let (field, err) = explain(source, &e);
                return connection_page(&st, &ps, &row, &refuse(field, err), &f, StatusCode::BAD_REQUEST).await;
            }
        };
    // An expired signing certificate would fail every sign-in.
    let field = match source {
        "url" => "metadata_url",
        "xml" => "metadata_xml",
        _ => "certificate",
    };
    let infos: Vec<_> = cfg.idp_certificates.iter().filter_map(|p| metadata::cert_info(p).ok()).collect();
    if !infos.is_empty() && infos.iter().all(|c| c.not_after <= now) {
        let when = infos.iter().map(|c| c.not_after).max().map(crate::util::rfc3339).unwrap_or_default();
        return connection_page(
            &st,
            &ps,
            &row,
            &refuse(field.into(), field_error("cert_expired", when)),
            &f,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let ch = ConnectionChanges {
        config: Some(Value::Object(ConnectionConfig::Saml(Box::new(cfg)).to_fields()).to_string()),
        bump_version: true,
        ..Default::default()
    };
    save_relocked(&st, &ps, row, ch, json!({"changed": "idp", "source": source})).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", path.as_str())))
}

/// `GET /setup/sso/{id}/test`: a test sign-in through this connection (opened in a new tab).
async fn test_start(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let row = load(&st, &ps, &path).await?;
    let ready = match config_of(&row)? {
        ConnectionConfig::Saml(c) => !c.idp_entity_id.is_empty(),
        ConnectionConfig::Oidc(_) => true,
        ConnectionConfig::Dev(_) | ConnectionConfig::Github(_) => false,
    };
    if !ready {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            ErrorCode::ConnectionMisconfigured,
            "Not ready to test",
            "Give your identity provider's metadata (or its settings) first, then test.",
        ));
    }
    crate::login::portal_test::start(&st, &req, &row, &ps.session.row.id, ps.link_id()).await
}

/// `GET /setup/sso/tests/{login}`: the result of a test sign-in (in the browser that ran it).
async fn test_result(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (login, trace, _link) = crate::login::portal_test::load_result(&st, &req, &path).await?;
    let tenant_id = login.tenant_id.as_ref().map(|t| t.as_str().to_string()).unwrap_or_default();
    let tenant = crate::tenant::get(&st.db, &tenant_id).await?.ok_or_else(PageError::internal)?;
    let look = super::look_of(&tenant);
    let steps: Vec<crate::traces::Step> =
        trace.as_ref().and_then(|t| serde_json::from_str(&t.steps).ok()).unwrap_or_default();
    let result =
        steps.iter().rev().find(|s| s.step == crate::login::portal_test::RESULT_STEP).map(|s| s.detail.clone());
    let status = trace.as_ref().map(|t| t.status.clone()).unwrap_or_else(|| "pending".into());
    let first_ms = steps.first().map(|s| s.at_ms).unwrap_or(0);
    let timeline: Vec<Value> = steps
        .iter()
        .map(|s| json!({"step": s.step, "after_ms": (s.at_ms - first_ms).max(0), "duration_ms": s.duration_ms}))
        .collect();
    let conn_id = trace.as_ref().and_then(|t| t.connection_id.clone());
    let ctx = json!({
        "status": status,
        "passed": result.as_ref().and_then(|r| r.get("passed")).and_then(Value::as_bool).unwrap_or(false),
        "checks": result.as_ref().and_then(|r| r.get("checks")).cloned().unwrap_or(json!([])),
        "claims": result.as_ref().and_then(|r| r.get("claims")).filter(|c| !c.is_null())
            .map(|c| serde_json::to_string_pretty(c).unwrap_or_default()),
        "code": trace.as_ref().and_then(|t| t.error_code.clone()),
        "cause": trace.as_ref().and_then(|t| t.cause.clone()),
        "fix": trace.as_ref().and_then(|t| t.fix.clone()),
        "trace_id": login.id.to_string(),
        "timeline": timeline,
        "back": conn_id.map(|c| format!("/setup/sso/{c}")),
        "portal": {"tenant_name": tenant.name, "nav": [], "csrf": null, "home_current": false},
    });
    Ok(super::respond(HttpResponse::Ok(), "portal_sso_test.html", ctx, &look))
}

/// `POST /setup/sso/{id}/activate`: live, once a test passed with the current configuration.
async fn activate(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let row = load(&st, &ps, &path).await?;
    if row.state == ConnectionState::Active && row.enabled {
        return Ok(see_other(&st, &format!("/setup/sso/{}", row.id)));
    }
    if row.tested_version != Some(row.version) {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            ErrorCode::ConnectionNotTested,
            "Test the connection first",
            "The connection goes live after a test sign-in passed with its current settings. Run the test sign-in, then activate.",
        ));
    }
    let now = st.clock.now();
    let who = ps.actor_name();
    let tx = audited::begin(&st.db).await?;
    let row = store::set_state(&*tx, row, ConnectionState::Active, true, now).await?;
    let entry = ps.actor(&who).entry(
        now,
        "connection.activate",
        "connection",
        Some(&row.id),
        Some(&ps.tenant.id),
        json!({"forced": false, "version": row.version}),
    );
    let ev = event(&ps.tenant.id, "connection.activated", &row);
    tx.commit(&*st.rng, entry, Some(ev)).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", row.id)))
}

/// `POST /setup/sso/{id}/certificates` (`certificate` PEM, or `metadata_xml`): adds the IdP's
/// new signing certificate beside the current ones (rotation before expiry). The connection
/// stays as it is: the certificates it trusted are all still trusted.
async fn add_certificate(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let row = load(&st, &ps, &path).await?;
    let ConnectionConfig::Saml(mut cfg) = config_of(&row)? else {
        return Err(not_found());
    };
    let refuse = |err: Value| {
        let mut errors = Map::new();
        errors.insert("new_certificate".into(), err);
        errors
    };
    let now = st.clock.now();
    let found: Result<Vec<String>, Value> = match (f.get("certificate"), f.get("metadata_xml")) {
        (Some(pem), _) if !pem.trim().is_empty() => {
            metadata::normalize_cert(pem).map(|c| vec![c]).map_err(|m| field_error("not_a_certificate", m))
        }
        (_, Some(xml)) if !xml.trim().is_empty() => metadata::parse_idp_metadata(xml, Some(&cfg.idp_entity_id))
            .map(|md| md.certificates)
            .map_err(|m| field_error("not_metadata", m)),
        _ => Err(field_error("required", "")),
    };
    let certs = match found {
        Ok(c) => c,
        Err(err) => return connection_page(&st, &ps, &row, &refuse(err), &f, StatusCode::BAD_REQUEST).await,
    };
    let new: Vec<String> = certs.into_iter().filter(|c| !cfg.idp_certificates.contains(c)).collect();
    if new.is_empty() {
        return connection_page(
            &st,
            &ps,
            &row,
            &refuse(field_error("already_trusted", "")),
            &f,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if let Some(expired) = new.iter().filter_map(|p| metadata::cert_info(p).ok()).find(|c| c.not_after <= now) {
        let err = field_error("cert_expired", crate::util::rfc3339(expired.not_after));
        return connection_page(&st, &ps, &row, &refuse(err), &f, StatusCode::BAD_REQUEST).await;
    }
    if cfg.idp_certificates.len() + new.len() > 10 {
        return connection_page(&st, &ps, &row, &refuse(field_error("too_many", "")), &f, StatusCode::BAD_REQUEST)
            .await;
    }
    let added = new.len();
    cfg.idp_certificates.extend(new);
    let ch = ConnectionChanges {
        config: Some(Value::Object(ConnectionConfig::Saml(cfg).to_fields()).to_string()),
        bump_version: true,
        ..Default::default()
    };
    let who = ps.actor_name();
    let tx = audited::begin(&st.db).await?;
    let was_tested = row.tested_version == Some(row.version);
    let row = store::update(&*tx, row, ch, now).await?;
    if was_tested {
        // Adding a certificate keeps every trusted one: the passing test still holds.
        store::set_tested(&*tx, &row.id, row.version).await?;
    }
    let entry = ps.actor(&who).entry(
        now,
        "connection.certificate_added",
        "connection",
        Some(&row.id),
        Some(&ps.tenant.id),
        json!({"added": added, "version": row.version}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(see_other(&st, &format!("/setup/sso/{}", row.id)))
}
