//! fedgate's OpenID Provider: one issuer for every tenant.
pub mod authorize;
pub mod cleanup;
pub mod clients;
pub mod dev_pages;
pub mod discovery;
pub mod endpoints;
pub mod flow;
pub mod token;
pub mod tokens;

use crate::app::AppState;
use actix_web::{web, HttpResponse};

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    match st.db.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().content_type("text/plain").body("database unreachable")
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/.well-known/openid-configuration", web::get().to(discovery::openid_configuration))
        .route("/oauth2/jwks", web::get().to(discovery::jwks))
        .route("/oauth2/authorize", web::get().to(authorize::authorize))
        .route("/oauth2/authorize", web::post().to(authorize::authorize))
        .route("/oauth2/token", web::post().to(token::token))
        .route("/oauth2/userinfo", web::get().to(endpoints::userinfo))
        .route("/oauth2/userinfo", web::post().to(endpoints::userinfo))
        .route("/oauth2/revoke", web::post().to(endpoints::revoke))
        .route("/oauth2/introspect", web::post().to(endpoints::introspect))
        .route("/oauth2/logout", web::get().to(endpoints::logout))
        .route("/oauth2/logout", web::post().to(endpoints::logout))
        .route("/login/{login}", web::get().to(authorize::login_page))
        .route("/login/{login}", web::post().to(authorize::login_submit))
        .route("/login/{login}/connection", web::post().to(authorize::choose_connection))
        .route("/sso/dev/{login}", web::get().to(dev_pages::show))
        .route("/sso/dev/{login}", web::post().to(dev_pages::submit));
}
