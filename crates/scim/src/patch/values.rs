//! Values: boolean coercion, the enterprise `manager` shorthand, duplicates in multi-valued
//! attributes, at most one `primary`, merging.
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::target::{drop_if_empty, AttrCtx};
use super::{PatchError, PatchOpKind};
use crate::json::{get_ci, key_for};
use crate::schema;

/// Coerces `"true"`/`"false"` (any case) under boolean attribute names (of the schema table),
/// recursively through objects and arrays.
pub(super) fn coerce(name: Option<&str>, v: Value) -> Result<Value, PatchError> {
    let boolean = name.is_some_and(schema::is_boolean_name);
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = coerce(Some(&k), v)?;
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            items.into_iter().map(|x| coerce(name, x)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        Value::String(s) if boolean => {
            if s.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(bad_boolean(name))
            }
        }
        Value::Number(_) if boolean => Err(bad_boolean(name)),
        other => Ok(other),
    }
}

fn bad_boolean(name: Option<&str>) -> PatchError {
    PatchError::InvalidValue(format!("attribute \"{}\" must be a boolean", name.unwrap_or_default()))
}

/// Normalises a value written to the attribute itself.
pub(super) fn normalize(ctx: &AttrCtx<'_>, v: Value) -> Result<Value, PatchError> {
    let v = coerce(Some(ctx.name), v)?;
    if !ctx.manager {
        return Ok(v);
    }
    match v {
        Value::String(s) if s.is_empty() => Ok(Value::Null),
        Value::String(s) => Ok(serde_json::json!({ "value": s })),
        v @ (Value::Object(_) | Value::Null) => Ok(v),
        _ => Err(PatchError::InvalidValue("\"manager\" must be the manager's id or an object with \"value\"".into())),
    }
}

pub(super) fn into_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn values_equal(exact: bool, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !exact => x == y || x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

/// Whether `new` is already represented by `existing` in a multi-valued
/// attribute: same `value` for id lists, otherwise every sub-attribute sent
/// already has that value.
fn is_duplicate(ctx: &AttrCtx<'_>, existing: &Value, new: &Value) -> bool {
    match (existing.as_object(), new.as_object()) {
        (Some(e), Some(n)) => {
            if ctx.exact_values {
                if let (Some(a), Some(b)) = (get_ci(e, "value"), get_ci(n, "value")) {
                    return a == b;
                }
            }
            n.iter().all(|(k, v)| get_ci(e, k).is_some_and(|ev| values_equal(ctx.exact_values, ev, v)))
        }
        _ => values_equal(ctx.exact_values, existing, new),
    }
}

/// Whether `item` (from a remove's `value`) designates `element`.
pub(super) fn designates(ctx: &AttrCtx<'_>, item: &Value, element: &Value) -> bool {
    let elem_value = element.as_object().and_then(|o| get_ci(o, "value"));
    match (item.as_object(), elem_value) {
        (Some(i), Some(ev)) => match get_ci(i, "value") {
            Some(iv) => values_equal(ctx.exact_values, iv, ev),
            None => is_duplicate(ctx, element, item),
        },
        (None, Some(ev)) => values_equal(ctx.exact_values, item, ev),
        _ => is_duplicate(ctx, element, item),
    }
}

/// Appends `items` skipping duplicates; returns indices of appended items.
/// Id lists (`members`, `groups`) look duplicates up by `value` in a set, not by scanning the
/// list for each item: adding 1,000 members to a group of 50,000 is linear, not 50 million
/// comparisons.
pub(super) fn append(ctx: &AttrCtx<'_>, arr: &mut Vec<Value>, items: Vec<Value>) -> Vec<usize> {
    let mut touched = Vec::new();
    let mut ids: Option<HashSet<String>> =
        ctx.exact_values.then(|| arr.iter().filter_map(string_value).map(str::to_string).collect());
    for item in items {
        if item.is_null() {
            continue;
        }
        let duplicate = match (&ids, string_value(&item)) {
            // Same answer as `is_duplicate`: with exact values, an element with a `value` is a
            // duplicate exactly when an existing element has the same `value`.
            (Some(set), Some(id)) => set.contains(id),
            _ => arr.iter().any(|e| is_duplicate(ctx, e, &item)),
        };
        if duplicate {
            continue;
        }
        if let (Some(set), Some(id)) = (ids.as_mut(), string_value(&item)) {
            set.insert(id.to_string());
        }
        arr.push(item);
        touched.push(arr.len() - 1);
    }
    touched
}

/// The string `value` of an element of a multi-valued attribute (`{"value": "id", ...}`).
pub(super) fn string_value(v: &Value) -> Option<&str> {
    v.as_object().and_then(|o| get_ci(o, "value")).and_then(Value::as_str)
}

fn is_primary(v: &Value) -> bool {
    v.as_object().and_then(|o| get_ci(o, "primary")).and_then(Value::as_bool) == Some(true)
}

/// Leaves at most one element with `primary: true`, preferring the first of
/// `touched` (elements this operation wrote).
pub(super) fn enforce_primary(arr: &mut [Value], touched: &[usize]) {
    if arr.iter().filter(|v| is_primary(v)).count() <= 1 {
        return;
    }
    let winner = touched
        .iter()
        .copied()
        .find(|&i| arr.get(i).is_some_and(is_primary))
        .or_else(|| arr.iter().position(is_primary));
    for (i, el) in arr.iter_mut().enumerate() {
        if Some(i) != winner && is_primary(el) {
            if let Some(o) = el.as_object_mut() {
                let key = key_for(o, "primary");
                o.insert(key, Value::Bool(false));
            }
        }
    }
}

/// Sets each key of `value` on `obj` (matching keys case-insensitively;
/// `null` removes).
pub(super) fn merge_into(obj: &mut Map<String, Value>, value: Map<String, Value>) {
    for (k, v) in value {
        let key = key_for(obj, &k);
        if v.is_null() {
            obj.remove(&key);
        } else {
            obj.insert(key, v);
        }
    }
}

/// Writes sub-attribute `sub` of a complex value (add appends to an existing
/// array sub-attribute).
pub(super) fn write_sub_value(obj: &mut Map<String, Value>, sub: &str, kind: PatchOpKind, value: Value) {
    let key = key_for(obj, sub);
    match (obj.get_mut(&key), value) {
        (_, Value::Null) => {
            obj.remove(&key);
        }
        (Some(Value::Array(existing)), v) if kind == PatchOpKind::Add => {
            for item in into_items(v) {
                if !existing.contains(&item) {
                    existing.push(item);
                }
            }
        }
        (_, v) => {
            obj.insert(key.clone(), v);
        }
    }
    drop_if_empty(obj, &key);
}
