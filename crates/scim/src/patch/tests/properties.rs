//! Properties: nothing panics, invariants hold, member adds are idempotent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{json, Value};

use proptest::prelude::*;

use super::*;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec!["true", "False", "", "work", "u-1", "m-1", "a@b", PATCH_OP_SCHEMA, ENT])
            .prop_map(|s| json!(s)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "schemas",
                "Operations",
                "op",
                "path",
                "value",
                "members",
                "emails",
                "type",
                "primary",
                "active",
                "id",
                "meta",
                "name.givenName",
                "manager",
                "displayName",
                ENT,
                USER_SCHEMA,
            ])
            .prop_map(str::to_string),
            "[a-z]{1,6}",
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PATHS: &[&str] = &[
    "active",
    "displayName",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails[type eq \"work\"]",
    "emails[type eq \"work\"].value",
    "emails[primary eq true].primary",
    "emails[value co \"x\" or type pr]",
    "members",
    "members[value eq \"u-1\"]",
    "members[value eq \"u-9\"].display",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "id",
    "meta",
    "schemas",
    "x[y pr]",
    "",
];

fn arb_element() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec!["u-1", "u-2", "u-9", "a@b", "B@x"])),
        prop::option::of(prop::sample::select(vec!["work", "home", "other"])),
        prop::option::of(prop::sample::select(vec![json!(true), json!(false), json!("True"), json!("false")])),
    )
        .prop_map(|(value, kind, primary)| {
            let mut m = serde_json::Map::new();
            if let Some(v) = value {
                m.insert("value".into(), json!(v));
            }
            if let Some(t) = kind {
                m.insert("type".into(), json!(t));
            }
            if let Some(p) = primary {
                m.insert("primary".into(), p);
            }
            Value::Object(m)
        })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => arb_element(),
        3 => prop::collection::vec(arb_element(), 0..4).prop_map(Value::Array),
        2 => prop::sample::select(vec![json!("x"), json!("True"), json!(false), json!(""), json!(null), json!("m-1")]),
        2 => prop::collection::btree_map(
                prop::sample::select(vec!["displayName", "active", "name.givenName", "emails", "members", "id", "meta", ENT, "emails[type eq \"work\"].value"]).prop_map(str::to_string),
                prop_oneof![arb_element(), prop::collection::vec(arb_element(), 0..3).prop_map(Value::Array), Just(json!("True"))],
                0..4,
            ).prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => arb_json(),
    ]
}

fn arb_op() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["add", "Add", "replace", "Replace", "remove", "REMOVE", "add", "replace"]),
        prop::option::weighted(
            0.85,
            prop_oneof![
                9 => prop::sample::select(PATHS).prop_map(str::to_string),
                1 => any::<String>(),
            ],
        ),
        prop::option::weighted(0.9, arb_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut m = serde_json::Map::new();
            m.insert("op".into(), json!(op));
            if let Some(p) = path {
                m.insert("path".into(), json!(p));
            }
            if let Some(v) = value {
                m.insert("value".into(), v);
            }
            Value::Object(m)
        })
}

fn primaries(resource: &Value, attr: &str) -> usize {
    resource[attr].as_array().map(|a| a.iter().filter(|e| e["primary"] == json!(true)).count()).unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        if let Ok(req) = parse_request(&v) {
            let _ = apply(&full_user(), &req);
            let _ = apply(&v, &req);
        }
        let wrapped = body(json!([v.clone()]));
        if let Ok(req) = parse_request(&wrapped) {
            let _ = apply(&full_user(), &req);
            let _ = apply(&group(), &req);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request_slice(&bytes);
    }

    #[test]
    fn arbitrary_operations_never_panic_and_keep_invariants(
        ops in prop::collection::vec(arb_op(), 1..4),
        base in prop::sample::select(vec![0u8, 1, 2]),
    ) {
        let resource = match base { 0 => full_user(), 1 => bare_user(), _ => group() };
        let Ok(req) = parse_request(&body(Value::Array(ops))) else { return Ok(()) };
        match apply(&resource, &req) {
            Ok(out) => {
                prop_assert!(out.resource.is_object());
                prop_assert_eq!(out.changed, out.resource != resource);
                prop_assert_eq!(&out.resource["id"], &resource["id"]);
                prop_assert_eq!(&out.resource["meta"], &resource["meta"]);
                prop_assert!(primaries(&out.resource, "emails") <= 1, "{}", out.resource);
                for id in &out.members_added {
                    prop_assert!(!out.members_removed.contains(id));
                }
            }
            Err(e) => {
                prop_assert!(["invalidSyntax", "invalidPath", "invalidValue", "noTarget", "mutability"].contains(&e.scim_type()));
            }
        }
    }

    #[test]
    fn member_adds_are_idempotent(ids in prop::collection::vec("[a-f0-9]{1,4}", 0..12)) {
        let value: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
        let ops = json!([{"op": "Add", "path": "members", "value": value}]);
        let first = patch(&group(), ops.clone());
        let second = patch(&first.resource, ops);
        prop_assert!(!second.changed);
        prop_assert!(second.members_added.is_empty());
        let mut expected: Vec<String> = Vec::new();
        for id in &ids {
            if id != "u-1" && id != "u-2" && !expected.contains(id) {
                expected.push(id.clone());
            }
        }
        prop_assert_eq!(first.members_added, expected);
    }
}
