//! Applying a request: each operation in order on a copy; add and replace.
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::remove::remove_path;
use super::request::{parse_request, truncate, validate_operation};
use super::target::{
    check_mutable, classify, container, drop_if_empty, is_read_only_common, is_schema_urn, remove_schema,
    tidy_extension, AttrCtx, Target,
};
use super::values::{append, coerce, enforce_primary, into_items, merge_into, normalize, write_sub_value};
use super::{PatchError, PatchOpKind, PatchOperation, PatchOutcome, PatchPath, PatchRequest, MAX_OPERATIONS};
use crate::filter::{self, CompareOp, Filter};
use crate::json::{find_key, get_ci, key_for};
use crate::path::is_core_schema;
use crate::schema::{self, Mutability};

/// Parses `body` and applies it to `resource` (convenience for
/// [`parse_request`] + [`apply`]).
pub fn apply_patch(resource: &Value, body: &Value) -> Result<PatchOutcome, PatchError> {
    apply(resource, &parse_request(body)?)
}

/// Applies `request` to a copy of `resource` (a SCIM resource JSON object).
/// Returns the patched copy and the membership diff, or the first error.
pub fn apply(resource: &Value, request: &PatchRequest) -> Result<PatchOutcome, PatchError> {
    if request.operations.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: request.operations.len(), max: MAX_OPERATIONS });
    }
    let mut doc = resource.clone();
    let root =
        doc.as_object_mut().ok_or_else(|| PatchError::InvalidValue("the resource must be a JSON object".into()))?;
    for (i, op) in request.operations.iter().enumerate() {
        validate_operation(op).and_then(|()| apply_operation(root, op)).map_err(|e| e.in_operation(i))?;
    }
    let before = member_ids(resource);
    let after = member_ids(&doc);
    Ok(PatchOutcome {
        members_added: difference(&after, &before),
        members_removed: difference(&before, &after),
        changed: doc != *resource,
        resource: doc,
    })
}

fn apply_operation(root: &mut Map<String, Value>, op: &PatchOperation) -> Result<(), PatchError> {
    match (&op.path, &op.value) {
        (Some(path), value) if op.op == PatchOpKind::Remove => remove_path(root, path, value.as_ref()),
        (Some(path), Some(value)) => write_path(root, path, op.op, value.clone()),
        (None, Some(value)) => write_pathless(root, op.op, value),
        _ => Err(PatchError::InvalidValue("missing \"value\"".into())),
    }
}

fn member_ids(resource: &Value) -> Vec<String> {
    resource
        .as_object()
        .and_then(|o| get_ci(o, "members"))
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m.as_object().and_then(|o| get_ci(o, "value")))
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Unique elements of `a` not in `b`, in order.
fn difference(a: &[String], b: &[String]) -> Vec<String> {
    let exclude: HashSet<&str> = b.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    a.iter().filter(|id| !exclude.contains(id.as_str()) && seen.insert(id.as_str())).cloned().collect()
}

// --- add / replace ---------------------------------------------------------

fn write_pathless(root: &mut Map<String, Value>, kind: PatchOpKind, value: &Value) -> Result<(), PatchError> {
    let obj = value
        .as_object()
        .ok_or_else(|| PatchError::InvalidValue("an operation without \"path\" requires an object \"value\"".into()))?;
    for (k, v) in obj {
        match schema::common_attribute(k) {
            // `meta` and `schemas` may come with a whole resource: ignored.
            Some(a) if a.mutability == Mutability::ReadOnly => continue,
            // The resource's own `id` is accepted (and ignored); another one is refused.
            Some(a) if a.mutability == Mutability::Immutable => match get_ci(root, a.name) {
                Some(existing) if existing != v => {
                    return Err(PatchError::Mutability(format!("attribute \"{}\" is immutable", a.name)))
                }
                _ => continue,
            },
            _ => {}
        }
        if is_schema_urn(root, k) {
            write_schema_object(root, k, kind, v)?;
            continue;
        }
        let path = PatchPath::parse(k)
            .map_err(|e| PatchError::InvalidPath(format!("invalid attribute \"{}\" in value: {e}", truncate(k))))?;
        if !is_read_only_common(&path.attr) {
            write_path(root, &path, kind, v.clone())?;
        }
    }
    Ok(())
}

/// Writes an object given for a whole schema (core: the resource; extension:
/// its object), key by key.
fn write_schema_object(
    root: &mut Map<String, Value>,
    urn: &str,
    kind: PatchOpKind,
    value: &Value,
) -> Result<(), PatchError> {
    if is_core_schema(urn) {
        return write_pathless(root, kind, value);
    }
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Null if kind == PatchOpKind::Replace => {
            if let Some(key) = find_key(root, urn) {
                root.remove(&key);
            }
            remove_schema(root, urn);
            return Ok(());
        }
        _ => {
            return Err(PatchError::InvalidValue(format!(
                "the value for extension \"{}\" must be an object",
                truncate(urn)
            )))
        }
    };
    if obj.is_empty() {
        container(root, Some(urn), true)?;
    }
    for (k, v) in obj {
        let full = format!("{urn}:{k}");
        let path = PatchPath::parse(&full)
            .map_err(|e| PatchError::InvalidPath(format!("invalid attribute \"{}\" in value: {e}", truncate(k))))?;
        write_path(root, &path, kind, v.clone())?;
    }
    tidy_extension(root, Some(urn));
    Ok(())
}

fn write_path(
    root: &mut Map<String, Value>,
    path: &PatchPath,
    kind: PatchOpKind,
    value: Value,
) -> Result<(), PatchError> {
    let ext = match classify(root, &path.attr) {
        Target::Resource | Target::Extension(_) if path.filter.is_some() || path.sub_attr.is_some() => {
            return Err(PatchError::InvalidPath(format!(
                "\"{}\" is a schema and cannot take a value filter",
                path.attr
            )))
        }
        Target::Resource => return write_pathless(root, kind, &value),
        Target::Extension(urn) => return write_schema_object(root, &urn, kind, &value),
        Target::Attr(ext) => ext,
    };
    check_mutable(ext.as_deref(), &path.attr)?;
    let ctx = AttrCtx::new(ext.as_deref(), &path.attr);
    let clears = value.is_null() || (ctx.manager && value.as_str() == Some(""));
    if clears && ext.is_some() && container(root, ext.as_deref(), false)?.is_none() {
        return Ok(());
    }
    let Some(obj) = container(root, ext.as_deref(), true)? else {
        return Ok(());
    };
    match (&path.filter, &path.attr.sub_attr) {
        (Some(f), _) => write_filtered(obj, &ctx, f, path.sub_attr.as_deref(), kind, value)?,
        (None, Some(sub)) => write_sub_attr(obj, &ctx, sub, kind, value)?,
        (None, None) => write_attr(obj, &ctx, kind, value)?,
    }
    tidy_extension(root, ext.as_deref());
    Ok(())
}

/// add/replace of a whole attribute.
fn write_attr(
    obj: &mut Map<String, Value>,
    ctx: &AttrCtx<'_>,
    kind: PatchOpKind,
    value: Value,
) -> Result<(), PatchError> {
    let value = normalize(ctx, value)?;
    let key = key_for(obj, ctx.name);
    if value.is_null() {
        obj.remove(&key);
        return Ok(());
    }
    let multi = ctx.multi || value.is_array() || obj.get(&key).is_some_and(Value::is_array);
    match obj.get_mut(&key) {
        Some(Value::Array(arr)) if kind == PatchOpKind::Add => {
            let touched = append(ctx, arr, into_items(value));
            enforce_primary(arr, &touched);
        }
        Some(Value::Object(existing)) if !multi && !ctx.manager => {
            if let Value::Object(v) = value {
                merge_into(existing, v);
            } else {
                obj.insert(key.clone(), value);
            }
        }
        _ if multi => {
            let mut arr = Vec::new();
            let touched = append(ctx, &mut arr, into_items(value));
            enforce_primary(&mut arr, &touched);
            obj.insert(key.clone(), Value::Array(arr));
        }
        _ => {
            obj.insert(key.clone(), value);
        }
    }
    drop_if_empty(obj, &key);
    Ok(())
}

/// add/replace of `attr.sub` (no filter): on a complex attribute sets the
/// sub-attribute; on a multi-valued one sets it on every element.
fn write_sub_attr(
    obj: &mut Map<String, Value>,
    ctx: &AttrCtx<'_>,
    sub: &str,
    kind: PatchOpKind,
    value: Value,
) -> Result<(), PatchError> {
    let value = coerce(Some(sub), value)?;
    let key = key_for(obj, ctx.name);
    match obj.get_mut(&key) {
        None | Some(Value::Null) => {
            if value.is_null() {
                return Ok(());
            }
            let mut element = Map::new();
            element.insert(sub.to_string(), value);
            let new = if ctx.multi { Value::Array(vec![Value::Object(element)]) } else { Value::Object(element) };
            obj.insert(key.clone(), new);
        }
        Some(Value::Object(o)) => write_sub_value(o, sub, kind, value),
        Some(Value::Array(arr)) => {
            if arr.is_empty() && !value.is_null() {
                let mut element = Map::new();
                element.insert(sub.to_string(), value.clone());
                arr.push(Value::Object(element));
            } else {
                for el in arr.iter_mut() {
                    if let Some(o) = el.as_object_mut() {
                        write_sub_value(o, sub, kind, value.clone());
                    }
                }
            }
            let all: Vec<usize> = (0..arr.len()).collect();
            enforce_primary(arr, &all);
        }
        Some(_) => return Err(PatchError::InvalidPath(format!("attribute \"{}\" has no sub-attributes", ctx.name))),
    }
    drop_if_empty(obj, &key);
    Ok(())
}

/// The element implied by a filter's `eq` conditions joined with `and`
/// (`type eq "work" and primary eq true` -> `{"type":"work","primary":true}`).
fn element_from_filter(f: &Filter) -> Option<Map<String, Value>> {
    match f {
        Filter::Compare { path, op: CompareOp::Eq, value }
            if path.schema_urn.is_none() && !value.to_json().is_null() =>
        {
            let mut m = Map::new();
            match &path.sub_attr {
                None => m.insert(path.attr.clone(), value.to_json()),
                Some(sub) => {
                    let mut inner = Map::new();
                    inner.insert(sub.clone(), value.to_json());
                    m.insert(path.attr.clone(), Value::Object(inner))
                }
            };
            Some(m)
        }
        Filter::And(l, r) => {
            let mut m = element_from_filter(l)?;
            for (k, v) in element_from_filter(r)? {
                match find_key(&m, &k) {
                    Some(existing) if m.get(&existing) != Some(&v) => return None,
                    _ => {
                        m.insert(k, v);
                    }
                }
            }
            Some(m)
        }
        _ => None,
    }
}

/// add/replace through a value filter `attr[filter]` or `attr[filter].sub`.
fn write_filtered(
    obj: &mut Map<String, Value>,
    ctx: &AttrCtx<'_>,
    filter: &Filter,
    sub: Option<&str>,
    kind: PatchOpKind,
    value: Value,
) -> Result<(), PatchError> {
    let value = coerce(sub.or(Some(ctx.name)), value)?;
    if sub.is_none() && !value.is_object() {
        return Err(PatchError::InvalidValue(format!("the value for \"{}[...]\" must be an object", ctx.name)));
    }
    let key = key_for(obj, ctx.name);
    let slot = obj.entry(key.clone()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(arr) = slot else {
        return Err(PatchError::InvalidPath(format!("attribute \"{}\" is not multi-valued", ctx.name)));
    };
    let matched: Vec<usize> = arr
        .iter()
        .enumerate()
        .filter(|(_, el)| filter::matches_element(filter, el, &ctx.path, schema::compares_exactly))
        .map(|(i, _)| i)
        .collect();
    let touched = if matched.is_empty() {
        if sub.is_some() && value.is_null() {
            Vec::new()
        } else {
            let derived = element_from_filter(filter).ok_or_else(|| {
                PatchError::NoTarget(format!(
                    "no value of \"{}\" matches the filter, and a new value cannot be derived from it (only \"eq\" conditions joined by \"and\" can)",
                    ctx.name
                ))
            })?;
            let Value::Object(mut element) = coerce(None, Value::Object(derived))? else {
                return Err(PatchError::InvalidValue("invalid filter value".into()));
            };
            match (sub, value) {
                (Some(s), v) => write_sub_value(&mut element, s, kind, v),
                (None, Value::Object(v)) => merge_into(&mut element, v),
                (None, _) => {}
            }
            arr.push(Value::Object(element));
            vec![arr.len() - 1]
        }
    } else {
        let derived = element_from_filter(filter).unwrap_or_default();
        for &i in &matched {
            let Some(Value::Object(el)) = arr.get_mut(i) else {
                continue;
            };
            match (sub, &value) {
                (Some(s), v) => write_sub_value(el, s, kind, v.clone()),
                (None, Value::Object(v)) if kind == PatchOpKind::Replace => {
                    let mut new = v.clone();
                    for (k, dv) in &derived {
                        if find_key(&new, k).is_none() {
                            new.insert(k.clone(), dv.clone());
                        }
                    }
                    new.retain(|_, v| !v.is_null());
                    *el = new;
                }
                (None, Value::Object(v)) => merge_into(el, v.clone()),
                (None, _) => {}
            }
        }
        matched
    };
    enforce_primary(arr, &touched);
    drop_if_empty(obj, &key);
    Ok(())
}
