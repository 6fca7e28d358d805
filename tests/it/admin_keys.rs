//! Admin keys: list, revoke, last use, and scopes (read-only, one tenant). Each scope is tried
//! against every route of the OpenAPI document: nothing outside the scope answers anything but 403.
use crate::common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

crate::both!(keys_are_listed_and_revoked_at_once, read_only_keys_never_write, tenant_keys_stay_in_their_tenant);

async fn call(app: &TestApp, key: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = app.http.request(method, app.url(&format!("/admin/v1{path}"))).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn new_key(app: &TestApp, body: Value) -> (String, String) {
    let (s, k) = app.post("/admin-keys", body).await;
    assert_eq!(s, 201, "{k}");
    (k["id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string())
}

/// Every (method, path) of the admin API, with `{tenant}` and the other parameters filled in.
async fn routes(app: &TestApp, tenant: &str) -> Vec<(Method, String)> {
    let (s, doc) = app.get("/openapi.json").await;
    assert_eq!(s, 200);
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "patch", "put", "delete"] {
            if item.get(m).is_some() {
                let p = path.strip_prefix("/admin/v1").unwrap_or(path).replace("{tenant}", tenant);
                let p = fill_params(&p);
                out.push((Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(), p));
            }
        }
    }
    assert!(out.len() > 30, "the document lists the routes: {}", out.len());
    out
}

async fn keys_are_listed_and_revoked_at_once(app: &TestApp) {
    let (id, key) = new_key(app, json!({"name": "terraform"})).await;
    assert_eq!(call(app, &key, Method::GET, "/tenants", None).await.0, 200);
    let (s, list) = app.get("/admin-keys").await;
    assert_eq!(s, 200);
    let mine = list["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert_eq!(mine["name"], "terraform");
    assert_eq!(mine["scope"], "full");
    assert!(mine.get("key").is_none(), "a listed key never shows its value");
    assert!(mine["last_used_at"].is_string(), "use is recorded: {mine}");
    assert!(!list.to_string().contains(&key));
    // Revoked: refused at once, here and on another instance.
    let other = app.second_instance().await;
    assert_eq!(call(&other, &key, Method::GET, "/tenants", None).await.0, 200);
    let (s, _) = app.admin(Method::DELETE, &format!("/admin-keys/{id}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(call(app, &key, Method::GET, "/tenants", None).await.0, 401);
    assert_eq!(call(&other, &key, Method::GET, "/tenants", None).await.0, 401);
    assert_eq!(app.admin(Method::DELETE, &format!("/admin-keys/{id}"), None).await.0, 204, "idempotent");
    assert_eq!(app.admin(Method::DELETE, "/admin-keys/nope", None).await.0, 404);
    let (_, audit) = app.get("/audit-log").await;
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"admin_key.create") && actions.contains(&"admin_key.revoke"), "{actions:?}");
    assert!(!audit.to_string().contains(&key), "the audit log never holds a key");
    other.stop().await;
}

async fn read_only_keys_never_write(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (_, key) = new_key(app, json!({"name": "support", "scope": "read_only"})).await;
    let (_, before) = app.get("/audit-log").await;
    for (method, path) in routes(app, "acme").await {
        let (s, body) = call(app, &key, method.clone(), &path, Some(json!({}))).await;
        if method == Method::GET && path == "/admin-keys" {
            assert_eq!(s, 403, "only a full, global key lists keys");
        } else if method == Method::GET {
            assert_ne!(s, 403, "GET {path} is allowed for a read-only key: {body}");
        } else {
            assert_eq!(s, 403, "{method} {path} must be refused for a read-only key: {body}");
            assert_eq!(body["error"], "admin_key_read_only", "{method} {path}");
        }
    }
    let (_, after) = app.get("/audit-log").await;
    assert_eq!(
        before["data"].as_array().unwrap().len(),
        after["data"].as_array().unwrap().len(),
        "nothing was written"
    );
    assert_eq!(call(app, &key, Method::GET, "/tenants/acme", None).await.0, 200);
    assert_eq!(call(app, &key, Method::GET, "/admin-keys", None).await.0, 403, "a read-only key cannot see keys");
}

async fn tenant_keys_stay_in_their_tenant(app: &TestApp) {
    let (acme, _) = app.tenant("acme", "acme.test", &[]).await;
    let (_, other_conn) = app.tenant("other", "other.test", &[]).await;
    let (_, key) = new_key(app, json!({"name": "acme automation", "tenant": "acme"})).await;
    // Inside: by slug and by id, reads and writes.
    assert_eq!(call(app, &key, Method::GET, "/tenants/acme", None).await.0, 200);
    assert_eq!(call(app, &key, Method::GET, &format!("/tenants/{}", acme["id"].as_str().unwrap()), None).await.0, 200);
    let (s, tok) = call(app, &key, Method::POST, "/tenants/acme/scim-tokens", Some(json!({"name": "okta"}))).await;
    assert_eq!(s, 201, "{tok}");
    // Outside: every route of the document with another tenant (or none) is refused, and a
    // tenant that does not exist answers the same as one that does.
    for tenant in ["other", "no-such-tenant"] {
        for (method, path) in routes(app, tenant).await {
            if path == "/openapi.json" {
                continue;
            }
            let (s, body) = call(app, &key, method.clone(), &path, Some(json!({}))).await;
            assert_eq!(s, 403, "{method} {path}: {body}");
            assert_eq!(body["error"], "admin_key_out_of_scope", "{method} {path}");
        }
    }
    let oc = other_conn["id"].as_str().unwrap();
    assert_eq!(call(app, &key, Method::GET, &format!("/tenants/other/connections/{oc}"), None).await.0, 403);
    assert_eq!(call(app, &key, Method::DELETE, "/tenants/acme", None).await.0, 403, "cannot delete its own tenant");
    // A tenant-scoped key cannot mint itself a wider key.
    let (s, _) = call(app, &key, Method::POST, "/admin-keys", Some(json!({"name": "escape"}))).await;
    assert_eq!(s, 403);
    // The other tenant is untouched.
    let (_, toks) = app.get("/tenants/other/scim-tokens").await;
    assert_eq!(toks["data"].as_array().unwrap().len(), 0);
}

/// `{anything}` -> `x_1`.
fn fill_params(p: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in p.chars() {
        match c {
            '{' => inside = true,
            '}' => {
                inside = false;
                out.push_str("x_1");
            }
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}
