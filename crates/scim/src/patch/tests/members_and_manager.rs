//! Group members and the enterprise manager.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{json, Value};

use super::*;

// --- members -------------------------------------------------------------

#[test]
fn entra_add_members() {
    let out = patch(&group(), json!([{"op": "Add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-4"}]}]));
    assert_eq!(
        out.resource["members"],
        json!([{"value": "u-1", "display": "Alice"}, {"value": "u-2"}, {"value": "u-3"}, {"value": "u-4"}])
    );
    assert_eq!(out.members_added, vec!["u-3", "u-4"]);
    assert!(out.members_removed.is_empty());
    assert!(out.changed);
}

#[test]
fn periodic_member_adds_are_idempotent() {
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": "u-1", "display": "Alice Renamed"}, {"value": "u-2"}]}]);
    let out = patch(&group(), ops);
    assert!(!out.changed);
    assert!(out.members_added.is_empty());
    assert_eq!(out.resource, group());
    // ids are case-sensitive
    let out = patch(&group(), json!([{"op": "add", "path": "members", "value": [{"value": "U-1"}]}]));
    assert_eq!(out.members_added, vec!["U-1"]);
}

#[test]
fn remove_member_by_filter() {
    let out = patch(&group(), json!([{"op": "remove", "path": "members[value eq \"u-2\"]"}]));
    assert_eq!(out.resource["members"], json!([{"value": "u-1", "display": "Alice"}]));
    assert_eq!(out.members_removed, vec!["u-2"]);
    let out = patch(&group(), json!([{"op": "remove", "path": "members[value eq \"U-2\"]"}]));
    assert!(!out.changed, "member ids match exactly");
}

#[test]
fn entra_remove_members_with_value_list() {
    let g = patch(&group(), json!([{"op": "add", "path": "members", "value": [{"value": "u-3"}]}])).resource;
    let out = patch(&g, json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-3"}]}]));
    assert_eq!(out.resource["members"], json!([{"value": "u-2"}]));
    assert_eq!(out.members_removed, vec!["u-1", "u-3"]);
}

#[test]
fn remove_all_members() {
    let out = patch(&group(), json!([{"op": "remove", "path": "members"}]));
    assert!(out.resource.get("members").is_none());
    assert_eq!(out.members_removed, vec!["u-1", "u-2"]);
}

#[test]
fn okta_group_membership_push() {
    let out = patch(
        &group(),
        json!([
            {"op": "remove", "path": "members[value eq \"u-1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u-5", "display": "eve@example.com"}]},
            {"op": "replace", "value": {"id": "g-1", "displayName": "Engineering"}}
        ]),
    );
    assert_eq!(out.resource["members"], json!([{"value": "u-2"}, {"value": "u-5", "display": "eve@example.com"}]));
    assert_eq!(out.members_added, vec!["u-5"]);
    assert_eq!(out.members_removed, vec!["u-1"]);
}

#[test]
fn replace_members_reports_diff() {
    let out =
        patch(&group(), json!([{"op": "replace", "path": "members", "value": [{"value": "u-2"}, {"value": "u-7"}]}]));
    assert_eq!(out.resource["members"], json!([{"value": "u-2"}, {"value": "u-7"}]));
    assert_eq!(out.members_added, vec!["u-7"]);
    assert_eq!(out.members_removed, vec!["u-1"]);
    // add then remove within one request nets out
    let out = patch(
        &group(),
        json!([
            {"op": "add", "path": "members", "value": [{"value": "u-8"}]},
            {"op": "remove", "path": "members[value eq \"u-8\"]"}
        ]),
    );
    assert!(!out.changed && out.members_added.is_empty() && out.members_removed.is_empty());
}

#[test]
fn members_on_empty_group() {
    let g = json!({"schemas": [GROUP_SCHEMA], "id": "g-2", "displayName": "New"});
    let out = patch(&g, json!([{"op": "add", "path": "members", "value": [{"value": "u-1"}]}]));
    assert_eq!(out.resource["members"], json!([{"value": "u-1"}]));
    assert_eq!(out.members_added, vec!["u-1"]);
    let out = patch(&g, json!([{"op": "add", "value": {"members": [{"value": "u-1"}, {"value": "u-1"}]}}]));
    assert_eq!(out.resource["members"], json!([{"value": "u-1"}]));
}

#[test]
fn large_group_membership_changes() {
    let members: Vec<Value> = (0..20_000).map(|i| json!({"value": format!("u-{i}")})).collect();
    let g = json!({"schemas": [GROUP_SCHEMA], "id": "g-big", "displayName": "All", "members": members});
    let adds: Vec<Value> = (19_950..20_050).map(|i| json!({"value": format!("u-{i}")})).collect();
    let start = std::time::Instant::now();
    let out = patch(
        &g,
        json!([
            {"op": "Add", "path": "members", "value": adds},
            {"op": "Remove", "path": "members", "value": [{"value": "u-0"}, {"value": "u-1"}]},
            {"op": "Remove", "path": "members[value eq \"u-2\"]"}
        ]),
    );
    assert_eq!(out.members_added.len(), 50);
    assert_eq!(out.members_removed, vec!["u-0", "u-1", "u-2"]);
    assert_eq!(out.resource["members"].as_array().unwrap().len(), 20_047);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

// --- manager -------------------------------------------------------------

#[test]
fn manager_as_string_or_object() {
    let mpath = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let out = patch(&bare_user(), json!([{"op": "Add", "path": mpath, "value": "m-1"}]));
    assert_eq!(out.resource[ENT], json!({"manager": {"value": "m-1"}}));
    let out = patch(&full_user(), json!([{"op": "replace", "path": mpath, "value": {"value": "m-2"}}]));
    assert_eq!(out.resource[ENT]["manager"], json!({"value": "m-2"}), "manager is replaced, not merged");
    let out = patch(&full_user(), json!([{"op": "replace", "path": format!("{mpath}.value"), "value": "m-3"}]));
    assert_eq!(out.resource[ENT]["manager"]["value"], json!("m-3"));
    let out = patch(&full_user(), json!([{"op": "add", "value": {mpath: "m-4"}}]));
    assert_eq!(out.resource[ENT]["manager"], json!({"value": "m-4"}));
    let out = patch(&full_user(), json!([{"op": "add", "value": {ENT: {"manager": "m-5"}}}]));
    assert_eq!(out.resource[ENT]["manager"], json!({"value": "m-5"}));
    let e = patch_err(&full_user(), json!([{"op": "add", "path": mpath, "value": 5}]));
    assert_eq!(e.scim_type(), "invalidValue");
}

#[test]
fn manager_cleared() {
    let mpath = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    for ops in [
        json!([{"op": "Replace", "path": mpath, "value": ""}]),
        json!([{"op": "Replace", "path": mpath, "value": null}]),
        json!([{"op": "Remove", "path": mpath}]),
        json!([{"op": "Remove", "path": mpath, "value": [{"value": "26118915-6090-4610-87e4-49d8ca9f808d"}]}]),
    ] {
        let out = patch(&full_user(), ops.clone());
        assert_eq!(out.resource[ENT], json!({"employeeNumber": "701984", "department": "Tour Operations"}), "{ops}");
    }
    let out = patch(&bare_user(), json!([{"op": "Replace", "path": mpath, "value": ""}]));
    assert!(!out.changed);
}
