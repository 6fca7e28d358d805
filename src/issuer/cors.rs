//! CORS for browser apps (an SPA doing the code flow with PKCE from the browser).
//!
//! - Discovery and the JWKS are public documents: `Access-Control-Allow-Origin: *`.
//! - The token, userinfo and revocation endpoints answer CORS only for an `Origin` some enabled
//!   client registered in its `web_origins`; the token endpoint, once it knows the client, only
//!   for that client's own origins. Preflights (`OPTIONS`) are answered here. Never with
//!   credentials (no cookies are involved: the client authenticates in the request), always
//!   `Vary: Origin`.
use crate::http::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};

/// Set by a handler that authenticated the client: the origins CORS may answer.
#[derive(Debug, Clone)]
pub struct ClientOrigins(pub Vec<String>);

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Discovery and JWKS: readable from any origin.
pub async fn public(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() == Method::OPTIONS {
        let res = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
            .finish();
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(res.map_into_left_body())
}

async fn registered_origin(req: &actix_web::HttpRequest, origin: &str) -> bool {
    let Some(st) = req.app_data::<web::Data<AppState>>() else { return false };
    match crate::store::clients::origin_registered(&st.db, origin).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "CORS origin lookup failed");
            false
        }
    }
}

/// Token, userinfo, revocation: only registered web origins.
pub async fn registered(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(origin) = origin.filter(|o| o != "null" && o.len() <= 300) else {
        let mut res = next.call(req).await?;
        res.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        return Ok(res.map_into_left_body());
    };
    if req.method() == Method::OPTIONS {
        let mut b = HttpResponse::NoContent();
        b.insert_header((header::VARY, "Origin"));
        if registered_origin(req.request(), &origin).await {
            b.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE));
        }
        return Ok(req.into_response(b.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let decided = res.request().extensions().get::<ClientOrigins>().map(|o| o.0.contains(&origin));
    let allowed = match decided {
        Some(a) => a,
        None => registered_origin(res.request(), &origin).await,
    };
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        if let Ok(v) = HeaderValue::from_str(&origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate"));
        }
    }
    Ok(res.map_into_left_body())
}
