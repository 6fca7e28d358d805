//! Mutability and atomicity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::json;

use super::*;

// --- mutability & atomicity ---------------------------------------------

#[test]
fn immutable_and_read_only_paths() {
    for (op, path) in [
        ("replace", "id"),
        ("add", "id"),
        ("remove", "id"),
        ("replace", "meta.lastModified"),
        ("remove", "meta"),
        ("add", "schemas"),
        ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:id"),
    ] {
        let e = patch_err(&full_user(), json!([{"op": op, "path": path, "value": "x"}]));
        assert_eq!(e.scim_type(), "mutability", "{op} {path}");
    }
}

#[test]
fn failing_operation_fails_the_whole_patch() {
    let original = group();
    let result = apply_patch(
        &original,
        &body(json!([
            {"op": "add", "path": "members", "value": [{"value": "u-9"}]},
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "replace", "path": "id", "value": "nope"}
        ])),
    );
    assert_eq!(result.unwrap_err().scim_type(), "mutability");
    assert_eq!(original, group());
}

#[test]
fn null_values_unassign() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "displayName", "value": null},
            {"op": "replace", "value": {"name": {"formatted": null}}}
        ]),
    );
    assert!(out.resource.get("displayName").is_none());
    assert_eq!(out.resource["name"], json!({"givenName": "Barbara", "familyName": "Jensen"}));
}

#[test]
fn resource_must_be_an_object() {
    let e = apply_patch(&json!([1]), &body(json!([{"op": "add", "path": "a", "value": 1}]))).unwrap_err();
    assert_eq!(e.scim_type(), "invalidValue");
}

#[test]
fn unchanged_patch_reports_not_changed() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "displayName", "value": "Babs Jensen"},
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org"}]}
        ]),
    );
    assert!(!out.changed);
}
