//! `remove` operations.
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::target::{
    check_mutable, classify, container, drop_if_empty, remove_schema, tidy_extension, AttrCtx, Target,
};
use super::values::{designates, into_items, string_value};
use super::{PatchError, PatchPath};
use crate::filter::{self, Filter};
use crate::json::find_key;
use crate::schema;

// --- remove ----------------------------------------------------------------

pub(super) fn remove_path(
    root: &mut Map<String, Value>,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let ext = match classify(root, &path.attr) {
        Target::Resource => return Err(PatchError::InvalidPath("cannot remove the resource's core schema".into())),
        Target::Extension(_) if path.filter.is_some() || path.sub_attr.is_some() => {
            return Err(PatchError::InvalidPath(format!(
                "\"{}\" is a schema and cannot take a value filter",
                path.attr
            )))
        }
        Target::Extension(urn) => {
            if let Some(key) = find_key(root, &urn) {
                root.remove(&key);
            }
            remove_schema(root, &urn);
            return Ok(());
        }
        Target::Attr(ext) => ext,
    };
    check_mutable(ext.as_deref(), &path.attr)?;
    let ctx = AttrCtx::new(ext.as_deref(), &path.attr);
    let Some(obj) = container(root, ext.as_deref(), false)? else {
        return Ok(());
    };
    let Some(key) = find_key(obj, ctx.name) else {
        return Ok(());
    };
    match (&path.filter, &path.attr.sub_attr) {
        (Some(f), _) => remove_filtered(obj, &key, &ctx, f, path.sub_attr.as_deref()),
        (None, Some(sub)) => match obj.get_mut(&key) {
            Some(Value::Object(o)) => remove_sub(o, sub),
            Some(Value::Array(arr)) => {
                for el in arr.iter_mut() {
                    if let Some(o) = el.as_object_mut() {
                        remove_sub(o, sub);
                    }
                }
            }
            _ => {}
        },
        (None, None) => {
            let items = value.cloned().map(into_items).unwrap_or_default();
            match obj.get_mut(&key) {
                Some(Value::Array(arr)) if !items.is_empty() => match id_set(&ctx, &items) {
                    // Entra's member removal (`value: [{value: id}, ...]`): one set lookup per
                    // element instead of a scan of the items (same answer as `designates`).
                    Some(ids) => arr.retain(|el| !string_value(el).is_some_and(|v| ids.contains(v))),
                    None => arr.retain(|el| !items.iter().any(|it| designates(&ctx, it, el))),
                },
                _ => {
                    obj.remove(&key);
                }
            }
        }
    }
    drop_if_empty(obj, &key);
    tidy_extension(root, ext.as_deref());
    Ok(())
}

/// With exact values (ids), the ids that `items` designate, when every item is an id string or
/// an object with a string `value`; None otherwise.
fn id_set<'v>(ctx: &AttrCtx<'_>, items: &'v [Value]) -> Option<HashSet<&'v str>> {
    if !ctx.exact_values {
        return None;
    }
    items.iter().map(|it| it.as_str().or_else(|| string_value(it))).collect()
}

fn remove_sub(obj: &mut Map<String, Value>, sub: &str) {
    if let Some(k) = find_key(obj, sub) {
        obj.remove(&k);
    }
}

fn remove_filtered(obj: &mut Map<String, Value>, key: &str, ctx: &AttrCtx<'_>, f: &Filter, sub: Option<&str>) {
    let hit = |el: &Value| filter::matches_element(f, el, &ctx.path, schema::compares_exactly);
    match obj.get_mut(key) {
        Some(Value::Array(arr)) => match sub {
            None => arr.retain(|el| !hit(el)),
            Some(s) => {
                for el in arr.iter_mut() {
                    if hit(el) {
                        if let Some(o) = el.as_object_mut() {
                            remove_sub(o, s);
                        }
                    }
                }
            }
        },
        Some(single @ Value::Object(_)) if hit(single) => match sub {
            None => {
                obj.remove(key);
            }
            Some(s) => {
                if let Some(o) = single.as_object_mut() {
                    remove_sub(o, s);
                }
            }
        },
        _ => {}
    }
}
