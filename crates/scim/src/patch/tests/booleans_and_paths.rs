//! String booleans; simple, sub-attribute and URN paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::json;

use super::*;

// --- booleans ------------------------------------------------------------

#[test]
fn entra_disable_user_with_string_boolean() {
    let out = apply_patch(
        &full_user(),
        &json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}),
    )
    .unwrap();
    assert_eq!(out.resource["active"], json!(false));
    assert!(out.changed);
    let out = patch(&out.resource, json!([{"op": "Replace", "path": "active", "value": "true"}]));
    assert_eq!(out.resource["active"], json!(true));
    let out = patch(&bare_user(), json!([{"op": "Add", "value": {"active": "FALSE"}}]));
    assert_eq!(out.resource["active"], json!(false));
}

#[test]
fn okta_deactivate_user() {
    let out = patch(&full_user(), json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(out.resource["active"], json!(false));
    let mut expected = full_user();
    expected["active"] = json!(false);
    assert_eq!(out.resource, expected);
}

#[test]
fn invalid_boolean_strings_are_rejected() {
    let e = patch_err(&bare_user(), json!([{"op": "replace", "path": "active", "value": "yes"}]));
    assert_eq!(e.scim_type(), "invalidValue");
    let e = patch_err(&bare_user(), json!([{"op": "replace", "path": "active", "value": 1}]));
    assert_eq!(e.scim_type(), "invalidValue");
}

#[test]
fn primary_strings_in_elements_are_coerced() {
    let out = patch(
        &bare_user(),
        json!([{"op": "Add", "path": "roles", "value": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]}]),
    );
    assert_eq!(
        out.resource["roles"],
        json!([{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}])
    );
}

// --- simple, sub-attribute and URN paths ---------------------------------

#[test]
fn simple_paths() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "displayName", "value": "Barbara J."},
            {"op": "add", "path": "title", "value": "Tour Guide"},
            {"op": "remove", "path": "externalId"}
        ]),
    );
    assert_eq!(out.resource["displayName"], json!("Barbara J."));
    assert_eq!(out.resource["title"], json!("Tour Guide"));
    assert!(out.resource.get("externalId").is_none());
}

#[test]
fn sub_attribute_paths() {
    let out = patch(&full_user(), json!([{"op": "replace", "path": "name.givenName", "value": "Babs"}]));
    assert_eq!(
        out.resource["name"],
        json!({"givenName": "Babs", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"})
    );
    let out = patch(&bare_user(), json!([{"op": "add", "path": "name.familyName", "value": "Smith"}]));
    assert_eq!(out.resource["name"], json!({"familyName": "Smith"}));
    let out = patch(&full_user(), json!([{"op": "remove", "path": "name.formatted"}]));
    assert_eq!(out.resource["name"], json!({"givenName": "Barbara", "familyName": "Jensen"}));
    let out = patch(
        &bare_user(),
        json!([
            {"op": "add", "path": "name.givenName", "value": "A"},
            {"op": "remove", "path": "name.givenName"}
        ]),
    );
    assert!(out.resource.get("name").is_none(), "emptied complex attribute is removed");
    assert!(!out.changed);
}

#[test]
fn complex_attribute_replace_merges_sub_attributes() {
    let out = patch(
        &full_user(),
        json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs", "middleName": "J"}}]),
    );
    assert_eq!(
        out.resource["name"],
        json!({"givenName": "Babs", "middleName": "J", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"})
    );
}

#[test]
fn urn_prefixed_paths() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "value": "Jensen-Smith"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "B"}
        ]),
    );
    assert_eq!(out.resource["name"]["familyName"], json!("Jensen-Smith"));
    assert_eq!(out.resource[ENT]["department"], json!("Sales"));
    assert_eq!(out.resource["displayName"], json!("B"));
    assert!(out.resource.get("urn:ietf:params:scim:schemas:core:2.0:User").is_none());
}

#[test]
fn extension_created_on_demand_and_registered_in_schemas() {
    let out = patch(
        &bare_user(),
        json!([
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "7"}
        ]),
    );
    assert_eq!(out.resource[ENT], json!({"employeeNumber": "7"}));
    assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, ENT]));
    // removing its last attribute removes the extension and its schema
    let out = patch(
        &out.resource,
        json!([
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}
        ]),
    );
    assert_eq!(out.resource, bare_user());
}

#[test]
fn extension_urn_is_case_insensitive() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department", "value": "Sales"}
        ]),
    );
    assert_eq!(out.resource[ENT]["department"], json!("Sales"));
    assert_eq!(out.resource["schemas"], full_user()["schemas"]);
}

#[test]
fn bare_extension_urn_path() {
    let out = patch(
        &bare_user(),
        json!([
            {"op": "add", "path": ENT, "value": {"department": "Eng", "manager": "m-1"}}
        ]),
    );
    assert_eq!(out.resource[ENT], json!({"department": "Eng", "manager": {"value": "m-1"}}));
    let out = patch(&full_user(), json!([{"op": "remove", "path": ENT}]));
    assert!(out.resource.get(ENT).is_none());
    assert_eq!(out.resource["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn attribute_names_match_existing_keys_case_insensitively() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "DisplayName", "value": "X"},
            {"op": "replace", "path": "NAME.GIVENNAME", "value": "Y"},
            {"op": "replace", "path": "Emails[Type eq \"WORK\"].Value", "value": "z@example.com"},
            {"op": "add", "path": "NickName", "value": "Babs"}
        ]),
    );
    let r = out.resource.as_object().unwrap();
    assert_eq!(r["displayName"], json!("X"));
    assert!(!r.contains_key("DisplayName"));
    assert_eq!(r["name"]["givenName"], json!("Y"));
    assert_eq!(r["emails"][0]["value"], json!("z@example.com"));
    assert_eq!(r["NickName"], json!("Babs"), "new keys keep the spelling sent");
}
