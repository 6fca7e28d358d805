//! Path-less add / replace, multi-valued add, `primary`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::json;

use super::*;

// --- path-less add / replace ---------------------------------------------

#[test]
fn entra_pathless_add_with_path_keys() {
    let out = patch(
        &bare_user(),
        json!([{
            "op": "Add",
            "value": {
                "name.givenName": "Alice",
                "name.familyName": "Liddell",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Eng",
                "title": "Engineer",
                "emails[type eq \"work\"].value": "alice@example.com"
            }
        }]),
    );
    assert_eq!(out.resource["name"], json!({"givenName": "Alice", "familyName": "Liddell"}));
    assert_eq!(out.resource[ENT], json!({"department": "Eng"}));
    assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, ENT]));
    assert_eq!(out.resource["title"], json!("Engineer"));
    assert_eq!(out.resource["emails"], json!([{"type": "work", "value": "alice@example.com"}]));
}

#[test]
fn pathless_extension_object() {
    let out = patch(
        &full_user(),
        json!([{
            "op": "replace",
            "value": {ENT: {"manager": {"value": "m-2"}, "costCenter": "4130"}}
        }]),
    );
    assert_eq!(
        out.resource[ENT],
        json!({"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "m-2"}, "costCenter": "4130"})
    );
    // core-schema URN key holding attributes
    let out = patch(
        &bare_user(),
        json!([{
            "op": "replace",
            "value": {USER_SCHEMA: {"displayName": "A", "name": {"givenName": "A"}}}
        }]),
    );
    assert_eq!(out.resource["displayName"], json!("A"));
    assert_eq!(out.resource["name"], json!({"givenName": "A"}));
    // custom extension not yet on the resource
    let custom = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";
    let out = patch(&bare_user(), json!([{"op": "add", "value": {custom: {"badge": "42"}}}]));
    assert_eq!(out.resource[custom], json!({"badge": "42"}));
    assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, custom]));
}

#[test]
fn pathless_values_ignore_schemas_meta_and_unchanged_id() {
    let out = patch(
        &full_user(),
        json!([{
            "op": "replace",
            "value": {
                "schemas": ["urn:bogus"],
                "meta": {"lastModified": "2030-01-01T00:00:00Z"},
                "id": "2819c223-7f76-453a-919d-413861904646",
                "meta.version": "W/\"x\"",
                "displayName": "Babs Jensen"
            }
        }]),
    );
    assert_eq!(out.resource, full_user());
    assert!(!out.changed);
    let e = patch_err(&full_user(), json!([{"op": "replace", "value": {"id": "other"}}]));
    assert_eq!(e.scim_type(), "mutability");
}

#[test]
fn okta_group_rename() {
    let out = patch(&group(), json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Platform"}}]));
    assert_eq!(out.resource["displayName"], json!("Platform"));
    assert!(out.changed);
    assert!(out.members_added.is_empty() && out.members_removed.is_empty());
    let out = patch(&group(), json!([{"op": "Replace", "value": {"displayName": "Platform"}}]));
    assert_eq!(out.resource["displayName"], json!("Platform"));
    let e = patch_err(&group(), json!([{"op": "replace", "value": {"id": "g-2", "displayName": "X"}}]));
    assert_eq!(e.scim_type(), "mutability");
}

#[test]
fn pathless_invalid_key_is_invalid_path() {
    let e = patch_err(&bare_user(), json!([{"op": "add", "value": {"not a path": 1}}]));
    assert_eq!(e.scim_type(), "invalidPath");
}

// --- multi-valued add ----------------------------------------------------

#[test]
fn multi_valued_add_appends_and_deduplicates() {
    let out = patch(
        &full_user(),
        json!([{"op": "add", "path": "emails", "value": [
            {"value": "babs@jensen.org", "type": "home"},
            {"value": "BJENSEN@example.com"},
            {"value": "b@other.org", "type": "other"}
        ]}]),
    );
    assert_eq!(out.resource["emails"].as_array().unwrap().len(), 3);
    assert_eq!(out.resource["emails"][2], json!({"value": "b@other.org", "type": "other"}));
    // single object value is appended too
    let out = patch(&bare_user(), json!([{"op": "add", "path": "emails", "value": {"value": "a@b", "type": "work"}}]));
    assert_eq!(out.resource["emails"], json!([{"value": "a@b", "type": "work"}]));
    // simple multi-valued
    let r = json!({"id": "x", "tags": ["a"]});
    let out = patch(&r, json!([{"op": "add", "path": "tags", "value": ["a", "b", "b"]}]));
    assert_eq!(out.resource["tags"], json!(["a", "b"]));
}

#[test]
fn replace_multi_valued_without_filter_replaces_whole_array() {
    let out =
        patch(&full_user(), json!([{"op": "replace", "path": "emails", "value": [{"value": "n@x", "type": "work"}]}]));
    assert_eq!(out.resource["emails"], json!([{"value": "n@x", "type": "work"}]));
    let out =
        patch(&full_user(), json!([{"op": "replace", "path": "phoneNumbers", "value": {"value": "1", "type": "fax"}}]));
    assert_eq!(out.resource["phoneNumbers"], json!([{"value": "1", "type": "fax"}]));
    let out = patch(&full_user(), json!([{"op": "replace", "path": "emails", "value": []}]));
    assert!(out.resource.get("emails").is_none());
}

#[test]
fn pathless_replace_of_multi_valued_replaces_and_add_appends() {
    let out = patch(&full_user(), json!([{"op": "replace", "value": {"emails": [{"value": "n@x"}]}}]));
    assert_eq!(out.resource["emails"], json!([{"value": "n@x"}]));
    let out = patch(&full_user(), json!([{"op": "add", "value": {"emails": [{"value": "n@x"}]}}]));
    assert_eq!(out.resource["emails"].as_array().unwrap().len(), 3);
}

// --- primary -------------------------------------------------------------

#[test]
fn primary_is_unique() {
    let out = patch(
        &full_user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other", "primary": true}]}]),
    );
    let emails = out.resource["emails"].as_array().unwrap();
    assert_eq!(emails[0]["primary"], json!(false));
    assert_eq!(emails[2]["primary"], json!(true));
    let out =
        patch(&full_user(), json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]));
    let emails = out.resource["emails"].as_array().unwrap();
    assert_eq!(emails[0]["primary"], json!(false));
    assert_eq!(emails[1]["primary"], json!(true));
    let out = patch(
        &full_user(),
        json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a", "primary": true}, {"value": "b", "primary": "true"}
        ]}]),
    );
    assert_eq!(out.resource["emails"], json!([{"value": "a", "primary": true}, {"value": "b", "primary": false}]));
    let out = patch(
        &full_user(),
        json!([{"op": "add", "path": "emails[type eq \"work2\" and primary eq true].value", "value": "w2@x"}]),
    );
    let emails = out.resource["emails"].as_array().unwrap();
    assert_eq!(emails.iter().filter(|e| e["primary"] == json!(true)).count(), 1);
    assert_eq!(emails[2]["primary"], json!(true));
}
