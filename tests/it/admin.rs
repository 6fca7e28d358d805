//! The admin API: authentication, validation, conflicts, pagination, atomicity, OpenAPI.
use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn requires_a_valid_admin_key(app: &TestApp) {
    for auth in [None, Some("fgadm_wrong"), Some("not-even-a-key")] {
        let mut r = app.http.get(app.url("/admin/v1/tenants"));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    }
    // An OAuth client secret is not an admin key.
    let (cid, secret) = app.client("confidential", "ES256").await;
    let r = app.http.get(app.url("/admin/v1/tenants")).bearer_auth(secret.unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 401, "{cid}");
}

async fn tenant_crud_and_conflicts(app: &TestApp) {
    let (s, t) =
        app.post("/tenants", json!({"name": "Acme", "slug": "acme", "domains": ["Acme.TEST", "acme.test"]})).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["domains"], json!(["acme.test"]));
    assert!(t["id"].as_str().unwrap().starts_with("org_"));
    let (s, e) = app.post("/tenants", json!({"name": "Other", "slug": "acme"})).await;
    assert_eq!((s, e["error"].as_str(), e["field"].as_str()), (409, Some("slug_taken"), Some("slug")));
    // A taken domain: 409, and the tenant is NOT created (one transaction).
    let (s, e) = app
        .post("/tenants", json!({"name": "Globex", "slug": "globex", "domains": ["globex.test", "acme.test"]}))
        .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("domain_taken")));
    let (s, _) = app.get("/tenants/globex").await;
    assert_eq!(s, 404, "no half-written tenant");
    let (s, g) = app.post("/tenants", json!({"name": "Globex", "slug": "globex", "domains": ["globex.test"]})).await;
    assert_eq!(s, 201);
    // Get by id and by slug.
    let (s, by_id) = app.get(&format!("/tenants/{}", t["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert_eq!(by_id["slug"], "acme");
    // Update: rename, replace domains, settings; conflicts leave the tenant unchanged.
    let (s, u) = app.admin(Method::PATCH, "/tenants/acme", Some(json!({"name": "Acme Corp", "domains": ["acme.test", "acme.example"], "settings": {"allow_email_outside_domains": true}}))).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["domains"], json!(["acme.example", "acme.test"]));
    assert_eq!(u["settings"]["allow_email_outside_domains"], true);
    let (s, _) =
        app.admin(Method::PATCH, "/tenants/globex", Some(json!({"domains": ["acme.test"], "name": "Renamed"}))).await;
    assert_eq!(s, 409);
    let (_, g2) = app.get("/tenants/globex").await;
    assert_eq!(g2["domains"], json!(["globex.test"]));
    assert_eq!(g2["name"], "Globex", "a failed PATCH changes nothing");
    // Delete removes everything it owns.
    let (s, _) = app.post("/tenants/globex/connections", json!({"type": "dev", "name": "Dev"})).await;
    assert_eq!(s, 201);
    let (s, _) = app.admin(Method::DELETE, "/tenants/globex", None).await;
    assert_eq!(s, 204);
    let (s, _) = app.get(&format!("/tenants/{}", g["id"].as_str().unwrap())).await;
    assert_eq!(s, 404);
    let (s, _) = app.post("/tenants", json!({"name": "G2", "slug": "g2", "domains": ["globex.test"]})).await;
    assert_eq!(s, 201, "the deleted tenant's domain is free again");
}

async fn validation_errors_name_the_field(app: &TestApp) {
    let cases = vec![
        (json!({"name": "A", "slug": "Bad Slug"}), "invalid_slug", Some("slug")),
        (json!({"name": "", "slug": "ok-slug"}), "invalid_name", Some("name")),
        (json!({"name": "A", "slug": "ok-slug", "domains": ["not a domain"]}), "invalid_domain", Some("domains")),
        (json!({"name": "A", "slug": "ok-slug", "colour": "red"}), "invalid_json", None),
        (json!({"name": "A"}), "invalid_json", None),
    ];
    for (body, code, field) in cases {
        let (s, e) = app.post("/tenants", body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(e["error"], code, "{body} -> {e}");
        if let Some(f) = field {
            assert_eq!(e["field"], f);
        }
        assert!(e["message"].is_string());
    }
    let (_, e) = app.post("/tenants", json!({"name": "A", "slug": "ok-slug", "colour": "red"})).await;
    assert!(e["message"].as_str().unwrap().contains("colour"), "unknown fields are named: {e}");
    // Malformed JSON, wrong content type, oversized bodies.
    let raw = |ct: &str, body: Vec<u8>| {
        app.http
            .post(app.url("/admin/v1/tenants"))
            .bearer_auth(&app.admin_key)
            .header("content-type", ct.to_string())
            .body(body)
            .send()
    };
    let r = raw("application/json", b"{\"name\":".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_json");
    let r = raw("text/plain", b"{}".to_vec()).await.unwrap();
    assert_eq!(r.status(), 415);
    let r = raw("application/json", vec![b' '; 2 * 1024 * 1024]).await.unwrap();
    assert_eq!(r.status(), 413);
    // Clients: redirect URIs and algorithms are checked.
    for body in [
        json!({"name": "A", "type": "confidential", "redirect_uris": []}),
        json!({"name": "A", "type": "confidential", "redirect_uris": ["https://a.example/cb#frag"]}),
        json!({"name": "A", "type": "confidential", "redirect_uris": ["javascript:alert(1)"]}),
        json!({"name": "A", "type": "confidential", "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "none"}),
        json!({"name": "A", "type": "confidential", "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "HS256"}),
        json!({"name": "A", "type": "weird", "redirect_uris": ["https://a.example/cb"]}),
        json!({"name": "A", "type": "public", "redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}),
    ] {
        let (s, e) = app.post("/clients", body.clone()).await;
        assert_eq!(s, 400, "{body} -> {e}");
    }
    let (s, _) = app.get("/clients").await;
    assert_eq!(s, 200);
    // Connections: unknown type fields and read-only fields are refused.
    app.post("/tenants", json!({"name": "A", "slug": "conn-t"})).await;
    for body in [
        json!({"type": "dev", "name": "D", "bogus": 1}),
        json!({"type": "nope", "name": "D"}),
        json!({"name": "D"}),
        json!({"type": "dev", "name": "D", "id": "conn_x"}),
        json!({"type": "dev", "name": "D", "default_email": "not-an-email"}),
        json!({"type": "oidc", "name": "D"}),
    ] {
        let (s, e) = app.post("/tenants/conn-t/connections", body.clone()).await;
        assert_eq!(s, 400, "{body} -> {e}");
    }
    let (s, e) = app.post("/tenants/conn-t/connections", json!({"type": "dev", "name": "D", "bogus": 1})).await;
    assert!(e["message"].as_str().unwrap().contains("bogus"), "{s} {e}");
}

async fn clients_secret_shown_once_and_hashed(app: &TestApp) {
    let (s, c) = app
        .post("/clients", json!({"name": "App", "type": "confidential", "redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_eq!(s, 201);
    let secret = c["client_secret"].as_str().unwrap().to_string();
    assert_eq!(c["id_token_signed_response_alg"], "ES256");
    assert_eq!(c["grant_types"], json!(["authorization_code", "refresh_token"]));
    let id = c["id"].as_str().unwrap();
    let (_, got) = app.get(&format!("/clients/{id}")).await;
    assert!(got.get("client_secret").is_none());
    // The database holds only a hash.
    use sea_orm::EntityTrait;
    let row =
        fedgate::store::entities::client::Entity::find_by_id(id.to_string()).one(&app.state.db).await.unwrap().unwrap();
    assert_ne!(row.secret_hash.as_deref(), Some(secret.as_str()));
    assert_eq!(row.secret_hash.unwrap(), fedgate::keys::sha256_hex(&secret));
    // Rotation: the old secret stops working.
    let (s, r) = app.post(&format!("/clients/{id}/secret"), json!({})).await;
    assert_eq!(s, 200);
    let new = r["client_secret"].as_str().unwrap();
    let try_auth = |sec: String| {
        app.http.post(app.url("/oauth2/introspect")).basic_auth(id, Some(sec)).form(&[("token", "x")]).send()
    };
    assert_eq!(try_auth(secret).await.unwrap().status(), 401);
    assert_eq!(try_auth(new.to_string()).await.unwrap().status(), 200);
    // PATCH and DELETE.
    let (s, u) = app.admin(Method::PATCH, &format!("/clients/{id}"), Some(json!({"name": "Renamed", "id_token_signed_response_alg": "RS256", "backchannel_logout_uri": "https://app.example/bcl"}))).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["id_token_signed_response_alg"], "RS256");
    assert_eq!(u["backchannel_logout_uri"], "https://app.example/bcl");
    let (_, u) =
        app.admin(Method::PATCH, &format!("/clients/{id}"), Some(json!({"backchannel_logout_uri": null}))).await;
    assert_eq!(u["backchannel_logout_uri"], Value::Null);
    let (s, _) = app.admin(Method::DELETE, &format!("/clients/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, e) = app.get(&format!("/clients/{id}")).await;
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")));
}

async fn pagination_walks_every_row_once(app: &TestApp) {
    for i in 0..7 {
        let (s, _) = app.post("/tenants", json!({"name": format!("T{i}"), "slug": format!("t{i}")})).await;
        assert_eq!(s, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tenants?limit=3&cursor={c}"),
            None => "/tenants?limit=3".to_string(),
        };
        let (s, page) = app.get(&path).await;
        assert_eq!(s, 200);
        for t in page["data"].as_array().unwrap() {
            seen.push(t["slug"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>(), "creation order, no gaps or repeats");
    let (s, _) = app.get("/tenants?limit=0").await;
    assert_eq!(s, 400);
    let (s, _) = app.get("/tenants?limit=abc").await;
    assert_eq!(s, 400);
}

async fn connections_crud_and_tenant_scoping(app: &TestApp) {
    let (_, conn_a) = app.tenant("acme", "acme.test", &["g"]).await;
    app.tenant("globex", "globex.test", &[]).await;
    let id = conn_a["id"].as_str().unwrap();
    assert_eq!(conn_a["default_email"], "alice@acme.test");
    // Another tenant's URL never reaches this connection.
    for m in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (m == Method::PATCH).then(|| json!({"name": "x"}));
        let (s, _) = app.admin(m.clone(), &format!("/tenants/globex/connections/{id}"), body).await;
        assert_eq!(s, 404, "{m}");
    }
    let (_, list) = app.get("/tenants/globex/connections").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, u) = app
        .admin(
            Method::PATCH,
            &format!("/tenants/acme/connections/{id}"),
            Some(json!({"enabled": false, "groups": ["x", "y"]})),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["enabled"], false);
    assert_eq!(u["groups"], json!(["x", "y"]));
    assert_eq!(u["version"], 2);
    assert_eq!(u["default_email"], "alice@acme.test", "PATCH merges");
    let (s, _) =
        app.admin(Method::PATCH, &format!("/tenants/acme/connections/{id}"), Some(json!({"type": "oidc"}))).await;
    assert_eq!(s, 400);
    let (s, _) = app.admin(Method::DELETE, &format!("/tenants/acme/connections/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = app.get(&format!("/tenants/acme/connections/{id}")).await;
    assert_eq!(s, 404);
}

/// Every documented operation exists, and every route is documented.
async fn openapi_matches_routes(app: &TestApp) {
    let (s, doc) = app.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut ops: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&m.as_str()) {
                ops.push(format!("{} {}", m.to_uppercase(), path));
            }
        }
    }
    ops.sort();
    let expected = [
        "DELETE /admin/v1/admin-keys/{id}",
        "DELETE /admin/v1/clients/{id}",
        "DELETE /admin/v1/tenants/{tenant}",
        "DELETE /admin/v1/tenants/{tenant}/connections/{id}",
        "DELETE /admin/v1/tenants/{tenant}/scim-tokens/{id}",
        "DELETE /admin/v1/tenants/{tenant}/setup-links/{id}",
        "DELETE /admin/v1/tenants/{tenant}/token-hook",
        "DELETE /admin/v1/webhooks/{id}",
        "GET /admin/v1/admin-keys",
        "GET /admin/v1/audit-log",
        "GET /admin/v1/clients",
        "GET /admin/v1/clients/{id}",
        "GET /admin/v1/clients/{id}/claim-rules",
        "GET /admin/v1/events",
        "GET /admin/v1/logins/{id}",
        "GET /admin/v1/openapi.json",
        "GET /admin/v1/tenants",
        "GET /admin/v1/tenants/{tenant}",
        "GET /admin/v1/tenants/{tenant}/claim-rules",
        "GET /admin/v1/tenants/{tenant}/connections",
        "GET /admin/v1/tenants/{tenant}/connections/{id}",
        "GET /admin/v1/tenants/{tenant}/logins",
        "GET /admin/v1/tenants/{tenant}/scim-requests",
        "GET /admin/v1/tenants/{tenant}/scim-tokens",
        "GET /admin/v1/tenants/{tenant}/setup-links",
        "GET /admin/v1/tenants/{tenant}/token-hook",
        "GET /admin/v1/webhooks",
        "GET /admin/v1/webhooks/{id}",
        "GET /admin/v1/webhooks/{id}/deliveries",
        "PATCH /admin/v1/clients/{id}",
        "PATCH /admin/v1/tenants/{tenant}",
        "PATCH /admin/v1/tenants/{tenant}/connections/{id}",
        "PATCH /admin/v1/webhooks/{id}",
        "POST /admin/v1/admin-keys",
        "POST /admin/v1/clients",
        "POST /admin/v1/clients/{id}/claim-rules/preview",
        "POST /admin/v1/clients/{id}/secret",
        "POST /admin/v1/deliveries/{id}/replay",
        "POST /admin/v1/tenants",
        "POST /admin/v1/tenants/{tenant}/claim-rules/preview",
        "POST /admin/v1/tenants/{tenant}/connections",
        "POST /admin/v1/tenants/{tenant}/connections/{id}/activate",
        "POST /admin/v1/tenants/{tenant}/connections/{id}/refresh-metadata",
        "POST /admin/v1/tenants/{tenant}/scim-tokens",
        "POST /admin/v1/tenants/{tenant}/setup-links",
        "POST /admin/v1/tenants/{tenant}/users/{user}/revoke-sessions",
        "POST /admin/v1/webhooks",
        "PUT /admin/v1/clients/{id}/claim-rules",
        "PUT /admin/v1/tenants/{tenant}/claim-rules",
        "PUT /admin/v1/tenants/{tenant}/token-hook",
    ];
    assert_eq!(ops, expected);
    // Each documented operation is routed (answers something other than the fallback 404).
    for op in &ops {
        let (m, p) = op.split_once(' ').unwrap();
        let p =
            p.replace("/admin/v1", "").replace("{tenant}", "nope").replace("{id}", "nope").replace("{user}", "nope");
        let (s, body) = app
            .admin(Method::from_bytes(m.as_bytes()).unwrap(), &p, (m != "GET" && m != "DELETE").then(|| json!({})))
            .await;
        if s == 404 {
            assert_ne!(body["message"], "no such admin API route", "{op} is documented but not routed");
        }
    }
    let (s, body) = app.get("/no-such-thing").await;
    assert_eq!((s, body["message"].as_str()), (404, Some("no such admin API route")));
}

async fn health_endpoints(app: &TestApp) {
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let r = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

both!(
    requires_a_valid_admin_key,
    tenant_crud_and_conflicts,
    validation_errors_name_the_field,
    clients_secret_shown_once_and_hashed,
    pagination_walks_every_row_once,
    connections_crud_and_tenant_scoping,
    openapi_matches_routes,
    health_endpoints,
);
