//! Value-filter paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::json;

use super::*;

// --- value-filter paths --------------------------------------------------

#[test]
fn entra_replace_work_email_value() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"}
        ]),
    );
    assert_eq!(
        out.resource["emails"],
        json!([
            {"value": "barbara@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ])
    );
}

#[test]
fn filtered_path_creates_missing_element() {
    let out = patch(
        &bare_user(),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@b"}
        ]),
    );
    assert_eq!(out.resource["emails"], json!([{"type": "work", "value": "a@b"}]));
    // no matching element among existing ones: appended
    let out = patch(
        &full_user(),
        json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Add", "path": "addresses[type eq \"home\"].streetAddress", "value": "1 Main St"},
            {"op": "replace", "path": "emails[type eq \"other\" and primary eq false].value", "value": "o@x"}
        ]),
    );
    assert_eq!(
        out.resource["phoneNumbers"],
        json!([{"value": "555-555-8377", "type": "work"}, {"type": "mobile", "value": "+1 555 0100"}])
    );
    assert_eq!(out.resource["addresses"][1], json!({"type": "home", "streetAddress": "1 Main St"}));
    assert_eq!(out.resource["emails"][2], json!({"type": "other", "primary": false, "value": "o@x"}));
}

#[test]
fn filtered_path_updates_matching_elements() {
    let out = patch(
        &full_user(),
        json!([
            {"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "200 Plaza"},
            {"op": "replace", "path": "addresses[type eq \"work\"].postalCode", "value": "91608"}
        ]),
    );
    assert_eq!(
        out.resource["addresses"],
        json!([{"type": "work", "streetAddress": "200 Plaza", "locality": "Hollywood", "primary": true, "postalCode": "91608"}])
    );
    assert_eq!(out.resource["addresses"].as_array().unwrap().len(), 1);
}

#[test]
fn filtered_path_without_sub_attribute() {
    // add merges into the matching element
    let out = patch(
        &full_user(),
        json!([
            {"op": "add", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}
        ]),
    );
    assert_eq!(out.resource["emails"][1], json!({"value": "babs@jensen.org", "type": "home", "display": "Home"}));
    // replace replaces the element, keeping the filter's eq conditions
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "new@jensen.org"}}
        ]),
    );
    assert_eq!(out.resource["emails"][1], json!({"value": "new@jensen.org", "type": "home"}));
    // and creates one when nothing matches
    let out = patch(
        &bare_user(),
        json!([
            {"op": "add", "path": "emails[type eq \"work\"]", "value": {"value": "w@x"}}
        ]),
    );
    assert_eq!(out.resource["emails"], json!([{"type": "work", "value": "w@x"}]));
    let e = patch_err(&full_user(), json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": "x"}]));
    assert_eq!(e.scim_type(), "invalidValue");
}

#[test]
fn filter_that_cannot_describe_a_new_element_is_no_target() {
    let e = patch_err(
        &bare_user(),
        json!([
            {"op": "replace", "path": "emails[type co \"wo\"].value", "value": "a@b"}
        ]),
    );
    assert_eq!(e.scim_type(), "noTarget");
    let e = patch_err(
        &bare_user(),
        json!([
            {"op": "replace", "path": "emails[type eq \"a\" or type eq \"b\"].value", "value": "a@b"}
        ]),
    );
    assert_eq!(e.scim_type(), "noTarget");
    // but it works when something matches
    let out = patch(
        &full_user(),
        json!([
            {"op": "replace", "path": "emails[value co \"jensen.org\"].display", "value": "Home"}
        ]),
    );
    assert_eq!(out.resource["emails"][1]["display"], json!("Home"));
}

#[test]
fn filter_on_single_valued_attribute_is_invalid_path() {
    let e = patch_err(&full_user(), json!([{"op": "add", "path": "displayName[value eq \"x\"].y", "value": "z"}]));
    assert_eq!(e.scim_type(), "invalidPath");
}

#[test]
fn remove_with_filter() {
    let out = patch(&full_user(), json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(out.resource["emails"], json!([{"value": "bjensen@example.com", "type": "work", "primary": true}]));
    let out = patch(&full_user(), json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert_eq!(out.resource["emails"][0], json!({"value": "bjensen@example.com", "type": "work"}));
    let out = patch(&out.resource, json!([{"op": "remove", "path": "emails[type pr]"}]));
    assert!(out.resource.get("emails").is_none(), "empty multi-valued attribute is removed");
}

#[test]
fn remove_of_absent_things_is_a_no_op() {
    for path in [
        "emails[type eq \"work\"]",
        "members[value eq \"nobody\"]",
        "nickName",
        "name.givenName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ] {
        let out = patch(&bare_user(), json!([{"op": "Remove", "path": path}]));
        assert!(!out.changed, "{path}");
        assert_eq!(out.resource, bare_user());
    }
    let out = patch(&group(), json!([{"op": "Remove", "path": "members", "value": [{"value": "u-404"}]}]));
    assert!(!out.changed);
    assert!(out.members_removed.is_empty());
}

#[test]
fn sub_attribute_of_multi_valued_without_filter_applies_to_all_elements() {
    let out = patch(&full_user(), json!([{"op": "replace", "path": "emails.display", "value": "E"}]));
    assert!(out.resource["emails"].as_array().unwrap().iter().all(|e| e["display"] == "E"));
    let out = patch(&out.resource, json!([{"op": "remove", "path": "emails.display"}]));
    assert_eq!(out.resource, full_user());
    let out = patch(&bare_user(), json!([{"op": "add", "path": "emails.value", "value": "a@b"}]));
    assert_eq!(out.resource["emails"], json!([{"value": "a@b"}]));
}
