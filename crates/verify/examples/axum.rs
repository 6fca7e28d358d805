//! An axum API protected by fedgate access tokens, one tenant only.
//!
//! ```sh
//! FEDGATE_ISSUER=https://auth.example.com FEDGATE_CLIENT_ID=cli_... FEDGATE_ORG_ID=org_... \
//!   cargo run -p fedgate-verify --example axum --features axum
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8082/me
//! ```
use axum::extract::FromRef;
use axum::{routing::get, Json, Router};
use fedgate_verify::{VerifiedToken, Verifier};
use serde::Deserialize;

/// Your own claims type: only what the app reads.
#[derive(Deserialize)]
struct MyClaims {
    sub: String,
    org_id: String,
    scope: String,
}

/// The app's state; the extractor takes the `Verifier` from it (`FromRef`, which
/// `#[derive(FromRef)]` writes with axum's `macros` feature).
#[derive(Clone)]
struct AppState {
    verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.verifier.clone()
    }
}

async fn me(VerifiedToken(c): VerifiedToken<MyClaims>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"user": c.sub, "tenant": c.org_id, "scope": c.scope}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("FEDGATE_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client_id = std::env::var("FEDGATE_CLIENT_ID").unwrap_or_else(|_| "cli_example".into());
    let mut builder = Verifier::builder(issuer).audience(client_id);
    if let Ok(org) = std::env::var("FEDGATE_ORG_ID") {
        builder = builder.tenant(org); // tokens of other tenants get 401 (tenant check failed)
    }
    let state = AppState { verifier: builder.build()? };
    let app = Router::new().route("/me", get(me)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8082").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
