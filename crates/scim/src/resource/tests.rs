//! Normalization, rendering and projection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::json;

use super::*;
use crate::path::AttrPath;
use crate::urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

#[test]
fn user_is_canonicalized_and_stripped() {
    let doc = normalize_user(json!({
        "USERNAME": " bjensen ", "ID": "x", "Meta": {}, "password": "p", "Groups": [{"value": "g"}],
        "Emails": [{"Value": "b@x", "Primary": "True"}], "active": "false", "nickName": null,
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Department": "R&D"},
        "schemas": "anything"
    }))
    .unwrap();
    assert_eq!(
        doc,
        json!({
            "userName": "bjensen", "emails": [{"value": "b@x", "primary": true}], "active": false,
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"}, "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
        })
    );
    let cols = user_columns(&doc);
    assert_eq!((cols.user_name.as_str(), cols.email.as_deref(), cols.active), ("bjensen", Some("b@x"), false));
}

#[test]
fn user_errors() {
    let e = |v| normalize_user(v).unwrap_err();
    assert_eq!(e(json!([])), ResourceError::InvalidSyntax("the request body must be a JSON object".into()));
    assert_eq!(e(json!({})).to_string(), "userName is required");
    assert_eq!(e(json!({"userName": 1})).to_string(), "userName must be a string");
    assert_eq!(e(json!({"userName": "a", "emails": {}})).to_string(), "emails must be an array");
    assert_eq!(e(json!({"userName": "a", "members": "x"})).to_string(), "members must be an array");
    assert_eq!(e(json!({"userName": "a", "active": "yes"})).scim_type(), "invalidValue");
}

#[test]
fn group_members_are_taken_out() {
    let (doc, members) = normalize_group(json!({
        "displayName": "Eng", "id": "g", "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u1"}]
    }))
    .unwrap();
    assert_eq!(doc, json!({"displayName": "Eng", "schemas": [GROUP_SCHEMA]}));
    assert_eq!(members, Some(vec!["u1".to_string(), "u2".to_string()]));
    assert_eq!(normalize_group(json!({"displayName": "x"})).unwrap().1, None);
    assert_eq!(normalize_group(json!({"displayName": " "})).unwrap_err().to_string(), "displayName is required");
}

#[test]
fn rendering() {
    let row =
        RowMeta { id: "usr_1", created: "2024-01-01T00:00:00Z", last_modified: "2024-01-02T00:00:00Z", version: 3 };
    let u = user_resource(r#"{"userName":"a"}"#, &row, false, &[("grp_1".into(), "Eng".into())], "https://b");
    assert_eq!(
        u,
        json!({"userName": "a", "id": "usr_1", "active": false,
               "groups": [{"value": "grp_1", "display": "Eng", "type": "direct", "$ref": "https://b/Groups/grp_1"}],
               "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-02T00:00:00Z",
                        "location": "https://b/Users/usr_1", "version": "W/\"3\""}})
    );
    let g = group_resource("not json", &RowMeta { id: "grp_1", ..row }, Some(&[("usr_1".into(), "a".into())]), "b");
    assert_eq!(g["members"], json!([{"value": "usr_1", "type": "User", "$ref": "b/Users/usr_1"}]));
    assert_eq!(g["meta"]["location"], "b/Groups/grp_1");
    assert!(group_resource("{}", &row, None, "b").get("members").is_none());
}

#[test]
fn projection() {
    let r = json!({"schemas": [USER_SCHEMA], "id": "1", "meta": {}, "userName": "a", "name": {"givenName": "G", "familyName": "F"},
                   "emails": [{"value": "x", "type": "work"}], ENTERPRISE_USER_SCHEMA: {"department": "D", "costCenter": "C"}});
    let list = |s: &str| parse_attr_list(Some(s)).unwrap();
    let kept = project(r.clone(), &list("userName,name.familyName,emails.type"), &[]);
    assert_eq!(
        kept,
        json!({"schemas": [USER_SCHEMA], "id": "1", "meta": {}, "userName": "a", "name": {"familyName": "F"}, "emails": [{"type": "work"}]})
    );
    let dropped = project(r, &[], &list(&format!("id,emails,{ENTERPRISE_USER_SCHEMA}:department")));
    assert!(dropped.get("emails").is_none() && dropped["id"] == "1");
    assert_eq!(dropped[ENTERPRISE_USER_SCHEMA], json!({"costCenter": "C"}));
    assert_eq!(parse_attr_list(Some("a b")).unwrap_err().scim_type(), "invalidPath");
    assert!(parse_attr_list(Some("  ")).unwrap().is_empty());
    assert!(mentions(&list("members.value"), "members"));
    assert!(!mentions(&[AttrPath::parse("urn:x:y:members").unwrap()], "members"));
}
