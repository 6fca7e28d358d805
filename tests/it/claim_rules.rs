//! Claim rules: tenant then client rules shape the ID token, the access token and userinfo;
//! validation on save with the rule's index; the preview; the size budget; the trace step.
use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.admin(Method::PUT, path, Some(body)).await
}

/// The newest trace of a tenant.
pub async fn latest_trace(app: &TestApp, tenant: &str) -> Value {
    let (s, page) = app.get(&format!("/tenants/{tenant}/logins?limit=5")).await;
    assert_eq!(s, 200, "{page}");
    page["data"][0].clone()
}

/// A complete login one second after the previous one (traces list newest first by start time).
pub async fn fresh_code(app: &TestApp, b: &reqwest::Client, client: &str, org: &str) -> String {
    app.clock.advance_secs(1);
    code_for(app, b, client, &[("organization", org)]).await
}

pub fn step<'a>(trace: &'a Value, name: &str) -> Option<&'a Value> {
    trace["steps"].as_array().unwrap().iter().find(|s| s["step"] == name)
}

async fn rules_shape_every_token(app: &TestApp) {
    let (t, _) = app.tenant("acme", "acme.test", &["Engineering", "Admins", "Sales"]).await;
    let org = t["id"].as_str().unwrap().to_string();
    let (client, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    let (s, body) = put(
        app,
        "/tenants/acme/claim-rules",
        json!({"rules": [
            {"map_groups": {"claim": "roles", "map": {"Engineering": ["editor"], "Admins": ["admin", "editor"]}}},
            {"rename": {"from": "name", "to": "full_name"}},
            {"set": {"claim": "plan", "value": "enterprise"}},
            {"set": {"claim": "https://aws.amazon.com/tags",
                     "value": {"principal_tags": {"org_id": ["{{org_id}}"]}, "transitive_tag_keys": ["org_id"]}}},
            {"drop": "groups"}
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["rules"].as_array().unwrap().len(), 5);
    let (s, body) = put(
        app,
        &format!("/clients/{client}/claim-rules"),
        json!({"rules": [{"rename": {"from": "plan", "to": "tier"}}, {"set": {"claim": "app", "value": "{{org_slug}}-app"}}]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, got) = app.get(&format!("/clients/{client}/claim-rules")).await;
    assert_eq!((s, got["rules"][0]["rename"]["to"].as_str()), (200, Some("tier")));

    let b = browser();
    let code = fresh_code(app, &b, &client, "acme").await;
    let (s, tok) = exchange(app, &client, Some(&secret), &code).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(id["roles"], json!(["editor", "admin"]));
    assert_eq!(id["full_name"], "Alice Example");
    assert!(id.get("name").is_none() && id.get("groups").is_none() && id.get("plan").is_none(), "{id}");
    assert_eq!(id["tier"], "enterprise", "the client's rules run after the tenant's");
    assert_eq!(id["app"], "acme-app");
    assert_eq!(id["https://aws.amazon.com/tags"]["principal_tags"]["org_id"], json!([org]));
    // Protected claims are fedgate's.
    assert_eq!(id["org_id"], org);
    assert_eq!(id["aud"], client);
    // The access token carries what the rules wrote, not the profile.
    let at = verify_jwt(app, tok["access_token"].as_str().unwrap(), &client).await;
    for k in ["roles", "full_name", "tier", "app", "https://aws.amazon.com/tags"] {
        assert_eq!(at[k], id[k], "{k} in the access token");
    }
    assert!(at.get("email").is_none() && at.get("groups").is_none(), "{at}");
    // Userinfo: the same rules on userinfo's claims.
    let u: Value = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["roles"], json!(["editor", "admin"]), "{u}");
    assert_eq!(u["full_name"], "Alice Example");
    assert!(u.get("groups").is_none() && u.get("name").is_none(), "{u}");
    assert_eq!(u["tier"], "enterprise");
    // The trace: rule counts and claim names, no values.
    let trace = latest_trace(app, "acme").await;
    let st = step(&trace, "claim_rules_applied").unwrap_or_else(|| panic!("{trace}"));
    assert_eq!(st["detail"]["tenant_rules"], 5);
    assert_eq!(st["detail"]["client_rules"], 2);
    assert!(!st.to_string().contains("enterprise") && !st.to_string().contains("Alice"), "{st}");
    // A refresh applies them too.
    let (s, r) = refresh(app, &client, Some(&secret), tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{r}");
    let id2 = verify_jwt(app, r["id_token"].as_str().unwrap(), &client).await;
    assert_eq!(id2["tier"], "enterprise");
    // Clearing.
    let (s, _) = put(app, "/tenants/acme/claim-rules", json!({"rules": []})).await;
    assert_eq!(s, 200);
    let (s, got) = app.get("/tenants/acme/claim-rules").await;
    assert_eq!((s, got), (200, json!({"rules": []})));
}

async fn rules_are_validated_and_previewed(app: &TestApp) {
    let (t, _) = app.tenant("beta", "beta.test", &["Engineering"]).await;
    let (client, _) = app.client("confidential", "ES256").await;
    for (rules, field, needle) in [
        (json!([{"drop": "groups"}, {"set": {"claim": "sub", "value": "x"}}]), "rules[1]", "protected"),
        (json!([{"rename": {"from": "org_id", "to": "tenant"}}]), "rules[0]", "protected"),
        (json!([{"drop": "amr"}]), "rules[0]", "protected"),
        (json!([{"set": {"claim": "x", "value": 1, "code": "1+1"}}]), "rules[0]", "unknown field"),
        (json!([{"eval": "x"}]), "rules[0]", "unknown variant"),
        (json!([{"set": {"claim": "a b", "value": 1}}]), "rules[0]", "printable"),
        (json!([{"set": {"claim": "x", "value": "{{oops"}}]), "rules[0]", "without"),
    ] {
        let (s, e) = put(app, "/tenants/beta/claim-rules", json!({ "rules": rules })).await;
        assert_eq!(
            (s, e["error"].as_str(), e["field"].as_str()),
            (400, Some("invalid_claim_rules"), Some(field)),
            "{e}"
        );
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
        // The same error from the preview, and from the client's endpoints.
        let (s, e) =
            app.post("/tenants/beta/claim-rules/preview", json!({"rules": {"rules": rules}, "identity": {}})).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{e}");
        let (s, _) = put(app, &format!("/clients/{client}/claim-rules"), json!({ "rules": rules })).await;
        assert_eq!(s, 400);
    }
    let (s, e) = put(app, "/tenants/beta/claim-rules", json!({"rules": [], "extra": 1})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("rules")), "{e}");
    let many: Vec<Value> = (0..51).map(|i| json!({"drop": format!("c{i}")})).collect();
    let (s, _) = put(app, "/tenants/beta/claim-rules", json!({ "rules": many })).await;
    assert_eq!(s, 400);
    // Nothing was stored.
    let (s, got) = app.get("/tenants/beta/claim-rules").await;
    assert_eq!((s, got), (200, json!({"rules": []})));
    let (s, _) = app.get("/tenants/nope/claim-rules").await;
    assert_eq!(s, 404);
    let (s, _) = app.get("/clients/cli_nope/claim-rules").await;
    assert_eq!(s, 404);

    // Preview: the rules against a sample identity, with a client's stored rules after them.
    let (s, _) =
        put(app, &format!("/clients/{client}/claim-rules"), json!({"rules": [{"set": {"claim": "c", "value": 1}}]}))
            .await;
    assert_eq!(s, 200);
    let (s, p) = app
        .post(
            "/tenants/beta/claim-rules/preview",
            json!({
                "rules": {"rules": [{"map_groups": {"claim": "roles", "map": {"Admins": ["admin"]}}},
                                    {"set": {"claim": "tags", "value": {"org": ["{{org_id}}"]}}}]},
                "identity": {"email": "Bob@Beta.test", "name": "Bob", "groups": ["Admins", "Other"]},
                "other": client
            }),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["id_token"]["roles"], json!(["admin"]));
    assert_eq!(p["id_token"]["tags"]["org"], json!([t["id"]]));
    assert_eq!(p["id_token"]["email"], "bob@beta.test");
    assert_eq!(p["id_token"]["c"], 1);
    assert_eq!(p["id_token"]["aud"], client);
    assert_eq!(p["rules_applied"], 3);
    assert_eq!(p["access_token_claims"], json!(["roles", "tags", "c"]));
    // Nothing stored by a preview.
    let (_, got) = app.get("/tenants/beta/claim-rules").await;
    assert_eq!(got, json!({"rules": []}));
    // The client's preview, after the tenant's stored rules.
    let (s, p) = app
        .post(
            &format!("/clients/{client}/claim-rules/preview"),
            json!({"identity": {"groups": ["g"]}, "other": "beta"}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["id_token"]["c"], 1);
    assert_eq!(p["id_token"]["groups"], json!(["g"]));
    // Every change is audited.
    let (_, log) = app.get("/audit-log?limit=50").await;
    let actions: Vec<&str> = log["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"client.claim_rules.update"), "{actions:?}");
}

async fn tokens_stay_within_the_size_budget(app: &TestApp) {
    app.tenant("gamma", "gamma.test", &["g1", "g2"]).await;
    let (client, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();
    // Two claims of 4.5 KB each: together past the 8 KiB budget.
    let big = "x".repeat(4500);
    let (s, e) = put(
        app,
        "/tenants/gamma/claim-rules",
        json!({"rules": [{"set": {"claim": "blob1", "value": big}}, {"set": {"claim": "blob2", "value": big}}]}),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let b = browser();
    let code = fresh_code(app, &b, &client, "gamma").await;
    let (s, tok) = exchange(app, &client, Some(&secret), &code).await;
    assert_eq!(s, 200, "{tok}");
    let id = verify_jwt(app, tok["id_token"].as_str().unwrap(), &client).await;
    // No hook claims to leave out; groups became the overage marker; still too big: the rules'
    // claims went.
    assert!(id.get("blob1").is_none() && id.get("blob2").is_none(), "rule claims are left out");
    assert!(id.get("groups").is_none());
    assert_eq!(id["_claim_names"], json!({"groups": "src1"}));
    let payload = tok["id_token"].as_str().unwrap().split('.').nth(1).unwrap().len() * 3 / 4;
    assert!(payload <= 8192, "{payload}");
    let trace = latest_trace(app, "gamma").await;
    let st = step(&trace, "token_size_budget").unwrap_or_else(|| panic!("{trace}"));
    assert_eq!(st["detail"]["id_token"], json!(["groups_overage", "rule_claims"]));
    assert_eq!(st["detail"]["access_token"], json!(["rule_claims"]));
    // Userinfo still lists the groups (the overage's source).
    let u: Value = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["groups"], json!(["g1", "g2"]));
}

both!(rules_shape_every_token, rules_are_validated_and_previewed, tokens_stay_within_the_size_budget);
