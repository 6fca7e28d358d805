//! The admin API's OpenAPI document: written to a file for the real validator
//! (scripts/openapi-check.sh runs `openapi-spec-validator` on it), and checked here for what
//! the validator and code generators need: a unique, meaningful operationId on every operation.
use serde_json::Value;
use std::collections::BTreeMap;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Writes the document to `$OPENAPI_OUT`, else to `<target>/tmp/openapi.json`.
#[test]
fn openapi_document_is_written_with_unique_operation_ids() {
    let doc = fedgate::admin::openapi_document();
    let out = std::env::var("OPENAPI_OUT")
        .unwrap_or_else(|_| concat!(env!("CARGO_TARGET_TMPDIR"), "/openapi.json").to_string());
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let what = format!("{} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) => {
                    if let Some(other) = seen.insert(id.to_string(), what.clone()) {
                        panic!("operationId {id:?} is used by {other} and by {what}");
                    }
                    // lowerCamelCase verb + noun, as generators name methods after it.
                    assert!(
                        id.len() > 4
                            && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                            && id.chars().all(|c| c.is_ascii_alphanumeric()),
                        "{what}: operationId {id:?} is not lowerCamelCase"
                    );
                }
                None => missing.push(what),
            }
        }
    }
    assert!(missing.is_empty(), "operations without an operationId: {missing:?}");
    assert_eq!(seen.len(), 50, "every admin operation has one: {seen:#?}");
    for (id, op) in [
        ("listTenants", "GET /admin/v1/tenants"),
        ("getTenant", "GET /admin/v1/tenants/{tenant}"),
        ("createConnection", "POST /admin/v1/tenants/{tenant}/connections"),
        ("getOpenApiDocument", "GET /admin/v1/openapi.json"),
    ] {
        assert_eq!(seen.get(id).map(String::as_str), Some(op), "{id}");
    }
}

/// The document is the one served at /admin/v1/openapi.json (no database needed to build it),
/// and building it twice gives the same text: a stable artifact to diff and validate.
#[test]
fn openapi_document_is_deterministic() {
    let a: Value = fedgate::admin::openapi_document();
    let b: Value = fedgate::admin::openapi_document();
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert!(a["openapi"].as_str().unwrap().starts_with("3."));
}
