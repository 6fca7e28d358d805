//! What a request does to a group's `members`, read before it is applied, so a server holding
//! a large group need not load every member to apply it.
//!
//! Okta and Entra ID change memberships with operations that name the ids they add or remove:
//! `add` with `path: "members"` (or a path-less `{"members": [...]}`), `remove` with
//! `path: "members[value eq \"id\"]"`, and Entra's `remove` with `path: "members"` and
//! `value: [{"value": "id"}, ...]`. Applied to a resource holding only those of its members
//! that the request names, such a request gives the same membership diff as applied to the
//! whole group (adds skip ids already present, removes drop listed ids, no other member is
//! touched). [`listed_members`] recognises these requests; anything else (`replace` of
//! `members`, `remove` of every member, another filter, a sub-attribute path) needs the whole
//! membership.
use serde_json::Value;

use super::values::string_value;
use super::{PatchOpKind, PatchOperation, PatchPath, PatchRequest};
use crate::filter::{CompValue, CompareOp, Filter};

/// The member ids `request` names, in order (duplicates kept), when every operation that
/// touches `members` adds or removes listed ids only; `None` when applying it needs the whole
/// membership. An empty list: the request does not touch `members`.
pub fn listed_members(request: &PatchRequest) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    for op in &request.operations {
        match &op.path {
            Some(path) if is_members(path) => listed_in_path(op, path, &mut ids)?,
            Some(_) => {
                if op.value.as_ref().is_some_and(mentions_members) {
                    return None;
                }
            }
            None => {
                let obj = op.value.as_ref()?.as_object()?;
                for (k, v) in obj {
                    if k.eq_ignore_ascii_case("members") {
                        if op.op != PatchOpKind::Add {
                            return None;
                        }
                        push_items(v, &mut ids)?;
                    } else if mentions_members(v) || key_is_members(k) {
                        return None;
                    }
                }
            }
        }
    }
    Some(ids)
}

/// The number of member values a request carries (every `members` value, in any form): what a
/// server bounds a PATCH by.
pub fn member_values(request: &PatchRequest) -> usize {
    request
        .operations
        .iter()
        .map(|op| match (&op.path, &op.value) {
            (Some(p), Some(v)) if is_members(p) => count_items(v),
            (Some(p), None) if is_members(p) => 1,
            (_, Some(v)) => count_members_in(v),
            _ => 0,
        })
        .sum()
}

/// `members` of the core schema, without a sub-attribute.
fn is_members(path: &PatchPath) -> bool {
    path.attr.is_core() && path.attr.attr_is("members")
}

fn key_is_members(k: &str) -> bool {
    let lower = k.to_ascii_lowercase();
    lower == "members" || lower.ends_with(":members")
}

/// Whether `v` holds a `members` key at any depth (a path-less value naming the core schema,
/// or `members` under another spelling).
fn mentions_members(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, v)| key_is_members(k) || mentions_members(v)),
        Value::Array(a) => a.iter().any(mentions_members),
        _ => false,
    }
}

fn count_items(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Null => 0,
        _ => 1,
    }
}

fn count_members_in(v: &Value) -> usize {
    match v {
        Value::Object(o) => {
            o.iter().map(|(k, v)| if key_is_members(k) { count_items(v) } else { count_members_in(v) }).sum()
        }
        _ => 0,
    }
}

fn listed_in_path(op: &PatchOperation, path: &PatchPath, ids: &mut Vec<String>) -> Option<()> {
    if path.attr.sub_attr.is_some() || path.sub_attr.is_some() {
        return None;
    }
    match (op.op, &path.filter, &op.value) {
        (PatchOpKind::Add, None, Some(v)) => push_items(v, ids),
        // Without a value, `remove` of `members` removes every member.
        (PatchOpKind::Remove, None, Some(v)) if !v.is_null() => push_items(v, ids),
        (PatchOpKind::Remove, Some(Filter::Compare { path: p, op: CompareOp::Eq, value: CompValue::Str(id) }), _)
            if p.is_core() && p.attr_is("value") && p.sub_attr.is_none() =>
        {
            ids.push(id.clone());
            Some(())
        }
        _ => None,
    }
}

/// The ids of a list of members (`[{"value": id}, ...]`, a single object, or bare id strings
/// for a remove); None when an item carries no id.
fn push_items(v: &Value, ids: &mut Vec<String>) -> Option<()> {
    let items: &[Value] = match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    for it in items {
        ids.push(it.as_str().or_else(|| string_value(it))?.to_string());
    }
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::patch::{apply, parse_request};
    use serde_json::json;

    fn req(ops: Value) -> PatchRequest {
        parse_request(&json!({"schemas": [crate::urn::PATCH_OP], "Operations": ops})).unwrap()
    }

    #[test]
    fn okta_and_entra_shapes_are_listed() {
        let r = req(json!([
            {"op": "add", "path": "members", "value": [{"value": "a", "display": "A"}, {"value": "b"}]},
            {"op": "remove", "path": "members[value eq \"c\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "d"}]},
            {"op": "Add", "value": {"members": [{"value": "e"}]}},
            {"op": "replace", "value": {"displayName": "x"}},
            {"op": "replace", "path": "displayName", "value": "y"},
        ]));
        assert_eq!(listed_members(&r).unwrap(), ["a", "b", "c", "d", "e"]);
        assert_eq!(member_values(&r), 5);
        assert_eq!(listed_members(&req(json!([{"op": "replace", "value": {"displayName": "x"}}]))).unwrap().len(), 0);
    }

    #[test]
    fn whole_membership_operations_are_not_listed() {
        for ops in [
            json!([{"op": "replace", "path": "members", "value": [{"value": "a"}]}]),
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "replace", "value": {"members": [{"value": "a"}]}}]),
            json!([{"op": "remove", "path": "members[display eq \"a\"]"}]),
            json!([{"op": "remove", "path": "members[value sw \"a\"]"}]),
            json!([{"op": "replace", "path": "members[value eq \"a\"].display", "value": "x"}]),
            json!([{"op": "add", "path": "members", "value": [{"display": "a"}]}]),
            json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "a"}]}}]),
        ] {
            assert!(listed_members(&req(ops.clone())).is_none(), "{ops}");
        }
    }

    /// Applied to the named members only, a listed request gives the same diff as applied to
    /// the whole membership.
    #[test]
    fn the_named_members_give_the_same_diff() {
        let all: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
        let r = req(json!([
            {"op": "add", "path": "members", "value": [{"value": "u3"}, {"value": "n1"}, {"value": "n2"}]},
            {"op": "remove", "path": "members[value eq \"u7\"]"},
            {"op": "remove", "path": "members", "value": [{"value": "u9"}, {"value": "n2"}, {"value": "zz"}]},
        ]));
        let doc = |ids: &[String]| json!({"displayName": "g", "members": ids.iter().map(|i| json!({"value": i})).collect::<Vec<_>>()});
        let full = apply(&doc(&all), &r).unwrap();
        let named = listed_members(&r).unwrap();
        let some: Vec<String> = all.iter().filter(|i| named.contains(i)).cloned().collect();
        let part = apply(&doc(&some), &r).unwrap();
        assert_eq!(full.members_added, ["n1"]);
        assert_eq!(full.members_removed, ["u7", "u9"]);
        assert_eq!((part.members_added, part.members_removed), (full.members_added, full.members_removed));
    }
}
