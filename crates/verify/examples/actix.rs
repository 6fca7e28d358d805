//! An actix-web API protected by fedgate access tokens.
//!
//! ```sh
//! FEDGATE_ISSUER=https://auth.example.com FEDGATE_CLIENT_ID=cli_... \
//!   cargo run -p fedgate-verify --example actix --features actix
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8081/me
//! ```
use actix_web::{web, App, HttpResponse, HttpServer};
use fedgate_verify::{Claims, VerifiedToken, Verifier};

/// Any handler that takes a `VerifiedToken` only runs for a valid access token; otherwise the
/// client gets 401 with `WWW-Authenticate: Bearer error="invalid_token", error_description=...`.
async fn me(token: VerifiedToken<Claims>) -> HttpResponse {
    let c = token.into_inner();
    HttpResponse::Ok().json(serde_json::json!({
        "user": c.sub,
        "tenant": c.org_id,
        "scopes": c.scopes().collect::<Vec<_>>(),
    }))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("FEDGATE_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client_id = std::env::var("FEDGATE_CLIENT_ID").unwrap_or_else(|_| "cli_example".into());
    // One verifier for the whole app: it holds the JWKS cache.
    let verifier = web::Data::new(Verifier::builder(issuer).audience(client_id).build()?);
    HttpServer::new(move || App::new().app_data(verifier.clone()).route("/me", web::get().to(me)))
        .bind(("127.0.0.1", 8081))?
        .run()
        .await?;
    Ok(())
}
