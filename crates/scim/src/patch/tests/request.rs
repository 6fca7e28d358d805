//! Request parsing: syntax, case, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{json, Value};

use super::*;

// --- request parsing -----------------------------------------------------

#[test]
fn parses_entra_request() {
    let req = parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "members", "value": [{"value": "u-9"}]},
            {"op": "Remove", "path": "members[value eq \"u-1\"]"},
            {"op": "Add", "value": {"name.givenName": "Bob"}}
        ]
    }))
    .unwrap();
    assert_eq!(req.operations.len(), 4);
    assert_eq!(req.operations[0].op, PatchOpKind::Replace);
    assert_eq!(req.operations[0].path, Some(PatchPath::parse("active").unwrap()));
    assert_eq!(req.operations[1].op, PatchOpKind::Add);
    assert_eq!(req.operations[2].op, PatchOpKind::Remove);
    assert!(req.operations[2].value.is_none());
    assert!(req.operations[3].path.is_none());
}

#[test]
fn op_names_and_keys_are_case_insensitive() {
    for name in ["add", "ADD", "Add", "aDd"] {
        assert_eq!(PatchOpKind::from_name(name), Some(PatchOpKind::Add));
    }
    let req = parse_request(&json!({
        "SCHEMAS": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
        "operations": [{"OP": "REPLACE", "Path": "displayName", "Value": "x"}]
    }))
    .unwrap();
    assert_eq!(req.operations[0].op, PatchOpKind::Replace);
    assert_eq!(req.operations[0].value, Some(json!("x")));
}

#[test]
fn empty_path_counts_as_absent() {
    let req = parse_request(&body(json!([{"op": "replace", "path": "", "value": {"displayName": "x"}}]))).unwrap();
    assert!(req.operations[0].path.is_none());
    let req = parse_request(&body(json!([{"op": "replace", "path": null, "value": {"displayName": "x"}}]))).unwrap();
    assert!(req.operations[0].path.is_none());
}

#[test]
fn request_syntax_errors() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "invalidSyntax"),
        (json!({"Operations": [{"op": "add", "path": "a", "value": 1}]}), "invalidSyntax"),
        (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}), "invalidSyntax"),
        (json!({"schemas": PATCH_OP_SCHEMA, "Operations": [{"op": "add", "path": "a", "value": 1}]}), "invalidSyntax"),
        (json!({"schemas": [PATCH_OP_SCHEMA]}), "invalidSyntax"),
        (json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}), "invalidSyntax"),
        (body(json!([])), "invalidSyntax"),
        (body(json!(["add"])), "invalidSyntax"),
        (body(json!([{"path": "a", "value": 1}])), "invalidSyntax"),
        (body(json!([{"op": 1, "path": "a", "value": 1}])), "invalidSyntax"),
        (body(json!([{"op": "move", "path": "a", "value": 1}])), "invalidSyntax"),
        (body(json!([{"op": "add", "path": 7, "value": 1}])), "invalidSyntax"),
        (body(json!([{"op": "add", "path": "emails[type eq]", "value": 1}])), "invalidPath"),
        (body(json!([{"op": "add", "path": "a b", "value": 1}])), "invalidPath"),
        (body(json!([{"op": "add", "path": "displayName"}])), "invalidValue"),
        (body(json!([{"op": "replace", "value": "x"}])), "invalidValue"),
        (body(json!([{"op": "add", "value": [{"displayName": "x"}]}])), "invalidValue"),
        (body(json!([{"op": "remove"}])), "noTarget"),
        (body(json!([{"op": "remove", "value": {"displayName": "x"}}])), "noTarget"),
    ];
    for (b, scim_type) in cases {
        let e = parse_request(&b).expect_err(&b.to_string());
        assert_eq!(e.scim_type(), scim_type, "{b} -> {e}");
    }
}

#[test]
fn error_details_name_the_operation() {
    let e = parse_request(&body(json!([
        {"op": "add", "path": "a", "value": 1},
        {"op": "add", "path": "emails[type eq]", "value": 1}
    ])))
    .unwrap_err();
    assert!(e.to_string().starts_with("Operations[1]: invalid path \"emails[type eq]\""), "{e}");
    let e = patch_err(&bare_user(), json!([{"op": "replace", "path": "id", "value": "x"}]));
    assert_eq!(e.to_string(), "Operations[0]: attribute \"id\" is immutable");
}

#[test]
fn raw_bytes_parsing() {
    let ok = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#;
    assert_eq!(parse_request_slice(ok).unwrap().operations.len(), 1);
    let e = parse_request_slice(b"{not json").unwrap_err();
    assert_eq!(e.scim_type(), "invalidSyntax");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(parse_request_slice(deep.as_bytes()).unwrap_err().scim_type(), "invalidSyntax");
}

#[test]
fn operation_count_limit() {
    let ops: Vec<Value> =
        (0..=MAX_OPERATIONS).map(|i| json!({"op": "add", "path": "title", "value": i.to_string()})).collect();
    let e = parse_request(&body(Value::Array(ops.clone()))).unwrap_err();
    assert_eq!(e, PatchError::TooManyOperations { count: MAX_OPERATIONS + 1, max: MAX_OPERATIONS });
    assert_eq!(e.scim_type(), "invalidValue");
    let ok = parse_request(&body(Value::Array(ops[..MAX_OPERATIONS].to_vec()))).unwrap();
    assert_eq!(ok.operations.len(), MAX_OPERATIONS);
    let out = apply(&bare_user(), &ok).unwrap();
    assert_eq!(out.resource["title"], json!((MAX_OPERATIONS - 1).to_string()));
    // hand-built requests are checked too
    let mut big = ok.clone();
    big.operations.push(big.operations[0].clone());
    assert!(matches!(apply(&bare_user(), &big), Err(PatchError::TooManyOperations { .. })));
}

#[test]
fn deep_values_and_paths_are_rejected() {
    let mut v = json!("x");
    for _ in 0..MAX_VALUE_DEPTH {
        v = json!([v]);
    }
    let e = parse_request(&body(json!([{"op": "add", "path": "x", "value": v}]))).unwrap_err();
    assert_eq!(e.scim_type(), "invalidValue");
    let mut ok = json!("x");
    for _ in 0..MAX_VALUE_DEPTH - 1 {
        ok = json!({"a": ok});
    }
    assert!(parse_request(&body(json!([{"op": "add", "path": "x", "value": ok}]))).is_ok());
    let deep_path = format!("emails[{}type pr{}]", "(".repeat(40), ")".repeat(40));
    let e = parse_request(&body(json!([{"op": "remove", "path": deep_path}]))).unwrap_err();
    assert_eq!(e.scim_type(), "invalidPath");
    assert!(e.to_string().contains("nested too deeply"), "{e}");
    // hand-built operations are validated on apply
    let req = PatchRequest {
        operations: vec![PatchOperation { op: PatchOpKind::Add, path: None, value: Some(json!({"a": v})) }],
    };
    assert_eq!(apply(&bare_user(), &req).unwrap_err().scim_type(), "invalidValue");
}
