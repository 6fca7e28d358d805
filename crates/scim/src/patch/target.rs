//! Where a path points (the resource, an extension object, an attribute), the context of the
//! attribute written (from the schema table), mutability, and the extension objects.
use serde_json::{Map, Value};

use super::PatchError;
use crate::json::{find_key, get_ci};
use crate::path::{is_core_schema, starts_with_ignore_case, AttrPath};
use crate::schema::{self, Mutability};
use crate::urn::ENTERPRISE_USER_SCHEMA;

/// Where an attribute path points.
pub(super) enum Target {
    /// The resource itself (path is a bare core schema URN).
    Resource,
    /// An extension object itself (path is a bare extension URN).
    Extension(String),
    /// An attribute at the top level (`None`) or inside an extension object.
    Attr(Option<String>),
}

/// Whether `s` is a schema URN (rather than a URN-prefixed attribute path):
/// a schema of the table, one listed in the resource's `schemas`, an existing
/// top-level key, or an extension URN ending in `:User` / `:Group`.
pub(super) fn is_schema_urn(root: &Map<String, Value>, s: &str) -> bool {
    if !s.contains(':') {
        return false;
    }
    let known = schema::schema(s).is_some();
    let listed = get_ci(root, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().filter_map(Value::as_str).any(|x| x.eq_ignore_ascii_case(s)));
    let last = s.rsplit(':').next().unwrap_or("");
    let looks_like_schema =
        starts_with_ignore_case(s, "urn:") && (last.eq_ignore_ascii_case("User") || last.eq_ignore_ascii_case("Group"));
    known || listed || find_key(root, s).is_some() || looks_like_schema
}

pub(super) fn classify(root: &Map<String, Value>, attr: &AttrPath) -> Target {
    let Some(urn) = &attr.schema_urn else {
        return Target::Attr(None);
    };
    if attr.sub_attr.is_none() {
        let full = format!("{urn}:{}", attr.attr);
        if is_schema_urn(root, &full) {
            return if is_core_schema(&full) { Target::Resource } else { Target::Extension(full) };
        }
    }
    if is_core_schema(urn) {
        Target::Attr(None)
    } else {
        Target::Attr(Some(urn.clone()))
    }
}

/// Context of the attribute being modified, from the schema table.
pub(super) struct AttrCtx<'a> {
    pub name: &'a str,
    /// Known multi-valued core attribute.
    pub multi: bool,
    /// Element `value`s compare case-sensitively (ids: members, groups).
    pub exact_values: bool,
    /// Enterprise `manager` (which clients may send as the manager's id).
    pub manager: bool,
    /// The attribute, without sub-attribute (in its extension, if any).
    pub path: AttrPath,
}

impl<'a> AttrCtx<'a> {
    pub fn new(ext: Option<&str>, attr: &'a AttrPath) -> Self {
        let name = attr.attr.as_str();
        let core = if ext.is_none() { schema::core_attribute(name) } else { None };
        Self {
            name,
            multi: core.is_some_and(|a| a.multi_valued),
            exact_values: core.and_then(|a| a.sub("value")).is_some_and(schema::Attribute::compares_exactly),
            manager: ext.is_some_and(|u| u.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)) && attr.attr_is("manager"),
            path: AttrPath { schema_urn: ext.map(str::to_string), attr: attr.attr.clone(), sub_attr: None },
        }
    }
}

/// Refuses writes to the server-assigned common attributes (`id`, `meta`, `schemas`). Other
/// read-only attributes (a user's `groups`) are dropped when the resource is normalized.
pub(super) fn check_mutable(ext: Option<&str>, attr: &AttrPath) -> Result<(), PatchError> {
    if ext.is_some() {
        return Ok(());
    }
    match schema::common_attribute(&attr.attr) {
        Some(a) if a.mutability == Mutability::Immutable => {
            Err(PatchError::Mutability(format!("attribute \"{}\" is immutable", a.name)))
        }
        Some(a) if a.mutability == Mutability::ReadOnly => {
            Err(PatchError::Mutability(format!("attribute \"{}\" is read-only", attr.attr)))
        }
        _ => Ok(()),
    }
}

/// Whether a path-less value's key names a read-only common attribute (`meta`, `schemas`),
/// which such a value may carry and which is ignored.
pub(super) fn is_read_only_common(attr: &AttrPath) -> bool {
    attr.is_core() && schema::common_attribute(&attr.attr).is_some_and(|a| a.mutability == Mutability::ReadOnly)
}

/// Lists `urn` in the resource's `schemas` (once).
fn add_schema(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(schemas)) = find_key(root, "schemas").and_then(|k| root.get_mut(&k)) {
        if !schemas.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(urn)) {
            schemas.push(Value::String(urn.to_string()));
        }
    }
}

pub(super) fn remove_schema(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(schemas)) = find_key(root, "schemas").and_then(|k| root.get_mut(&k)) {
        schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
    }
}

/// The object holding attributes of `ext` (the root for `None`); created
/// (and registered in `schemas`) when `create` is set.
pub(super) fn container<'m>(
    root: &'m mut Map<String, Value>,
    ext: Option<&str>,
    create: bool,
) -> Result<Option<&'m mut Map<String, Value>>, PatchError> {
    let Some(urn) = ext else {
        return Ok(Some(root));
    };
    let key = match find_key(root, urn) {
        Some(k) => k,
        None if create => urn.to_string(),
        None => return Ok(None),
    };
    if create {
        add_schema(root, urn);
    }
    let slot = root.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        if !create {
            return Ok(None);
        }
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => Ok(Some(m)),
        _ => Err(PatchError::InvalidValue(format!("extension \"{urn}\" of the resource is not an object"))),
    }
}

/// Drops an extension object left empty (and its `schemas` entry).
pub(super) fn tidy_extension(root: &mut Map<String, Value>, ext: Option<&str>) {
    let Some(urn) = ext else { return };
    if let Some(key) = find_key(root, urn) {
        let empty = match root.get(&key) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            root.remove(&key);
            remove_schema(root, urn);
        }
    }
}

/// Removes `key` if its value is `null`, `[]` or `{}`.
pub(super) fn drop_if_empty(map: &mut Map<String, Value>, key: &str) {
    let empty = match map.get(key) {
        Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty {
        map.remove(key);
    }
}
