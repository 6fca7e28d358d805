//! The login: everything between `/oauth2/authorize` accepting a request and the app receiving
//! its code. One home for it (after Dex's `server/authflow`):
//!
//! - [`pending`]: the pending login row — all login state lives in the database, typed
//!   (`LoginStatus`, `upstream::ConnectorState`), and bound to the browser that started it;
//! - [`discovery`]: home-realm discovery (connection, organization, email domain, chooser);
//! - [`start`]: sending the login to a connection (the connector's `begin`);
//! - [`callback`], [`dev`], [`saml`]: where the upstream answers (OIDC callback, the dev
//!   confirmation page, the SAML ACS and resume step) — each turns the answer into an
//!   upstream identity through the connector's `complete`;
//! - [`complete`]: the one completion path all three share: policy, linking, the session, the
//!   code, the trace, the events — or the failure, with its code, cause and fix;
//! - [`mfa`]: the MFA a login needs (tenant policy, connection override, the app's step-up);
//! - [`session`]: fedgate's own browser session and the authorization codes it issues.
//!
//! Connectors are opened once per (connection, version) by `upstream::registry::Connectors`.
pub mod callback;
pub mod complete;
pub mod dev;
pub mod discovery;
pub mod mfa;
pub mod pending;
pub mod portal_test;
pub mod saml;
pub mod session;
pub mod start;

use actix_web::web;

pub use complete::{finish, finish_then, upstream_failure, AfterLogin};
pub use pending::load_for_browser;

/// The login's routes: home-realm discovery pages, the dev page, the OIDC callback and the
/// SAML endpoints of every connection.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/{login}", web::get().to(discovery::login_page))
        .route("/login/{login}", web::post().to(discovery::login_submit))
        .route("/login/{login}/connection", web::post().to(discovery::choose_connection))
        .route("/sso/dev/{login}", web::get().to(dev::show))
        .route("/sso/dev/{login}", web::post().to(dev::submit))
        .route("/sso/oidc/callback", web::get().to(callback::callback))
        .route("/sso/oidc/callback", web::post().to(callback::callback))
        .route("/sso/github/callback", web::get().to(callback::github_callback))
        .configure(saml::routes);
}
