//! `/setup/sso`: the SSO wizard (vendor choice, draft connection, IdP values, test sign-in,
//! certificates).
use super::{Intent, PortalSession};
use crate::http::error::PageError;
use actix_web::{web, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup/sso", web::get().to(index));
}

async fn index(ps: PortalSession) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Sso)?;
    Ok(ps.page(Some(Intent::Sso), "portal_done.html", serde_json::json!({})))
}
