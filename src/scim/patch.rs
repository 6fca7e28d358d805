//! SCIM 2.0 PATCH (RFC 7644 §3.5.2): request parsing and application to a
//! resource held as a JSON object, tolerant of what Okta and Entra ID send.
//!
//! ```text
//! let request = parse_request(&body)?;          // PatchError -> 400 + scimType
//! let outcome = apply(&stored_resource, &request)?;
//! // outcome.resource, outcome.members_added / members_removed, outcome.changed
//! ```
//!
//! Behaviour beyond the letter of the RFC (all deliberate):
//! * `op` names are case-insensitive; an empty `path` counts as absent.
//! * Attribute names match existing keys case-insensitively; the existing
//!   spelling is kept, new keys use the spelling sent.
//! * `active`/`primary` given as `"true"`/`"False"` become JSON booleans.
//! * Path-less `add`/`replace` values may use paths as keys
//!   (`"name.givenName"`, `"urn:...:User:department"`) and extension URNs
//!   as keys holding objects; `schemas` and `meta` keys are ignored and `id`
//!   is ignored when unchanged.
//! * A value filter with no matching element (or no attribute yet) creates an
//!   element from the filter's `eq` conditions on `add` and `replace`; on
//!   `remove` it is a no-op, as is removing an absent attribute.
//! * Multi-valued `add` skips values already present (members by `value`,
//!   other values when all sent sub-attributes already match).
//! * `remove` of a multi-valued attribute with a `value` removes only the
//!   listed values (Entra's member removal form).
//! * The enterprise `manager` may be sent as the manager's id string; it is
//!   stored as `{"value": id}`; `""`/`null` clears it.
//! * Writing `null` removes an attribute; attributes left as `[]`/`{}` are
//!   removed (unassigned), as are empty extension objects (and their URN in
//!   `schemas`). Creating an extension object adds its URN to `schemas`.
//! * At most one element of a multi-valued attribute keeps `primary: true`:
//!   the one this operation set.
//!
//! Everything is applied to a copy; any failing operation fails the whole
//! request.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::scim::filter::{self, CompareOp, Filter};
use crate::scim::path::{
    is_core_schema, starts_with_ignore_case, AttrPath, PatchPath, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};

/// The PatchOp message schema URN that requests must declare.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Maximum number of operations in one request.
pub const MAX_OPERATIONS: usize = 1000;
/// Maximum JSON nesting depth of an operation's `value` (a SCIM value is at
/// most 4 levels deep: extension / attribute / element / sub-attribute).
pub const MAX_VALUE_DEPTH: usize = 16;

/// Attributes known to be multi-valued in the core User/Group schemas.
pub(crate) const MULTI_VALUED: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "members",
];

/// Boolean attributes that clients send as strings.
const BOOLEAN_ATTRS: &[&str] = &["active", "primary"];

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `remove`
    Remove,
}

impl PatchOpKind {
    /// Parses an op name case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Add, Self::Replace, Self::Remove].into_iter().find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// Lower-case op name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Remove => "remove",
        }
    }
}

/// One parsed PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// add / replace / remove.
    pub op: PatchOpKind,
    /// Target path; `None` means the resource itself.
    pub path: Option<PatchPath>,
    /// Operation value (required for add/replace).
    pub value: Option<Value>,
}

/// A parsed PatchOp request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// Operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

/// Result of applying a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The patched resource.
    pub resource: Value,
    /// Ids (`members[].value`) present after the patch but not before, in order.
    pub members_added: Vec<String>,
    /// Ids present before the patch but not after, in order.
    pub members_removed: Vec<String>,
    /// Whether `resource` differs from the input.
    pub changed: bool,
}

/// A PATCH failure. [`PatchError::scim_type`] gives the RFC 7644 `scimType`;
/// `Display` gives the `detail` (prefixed with `Operations[i]:` when an
/// operation is at fault). All map to HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Malformed request body (`invalidSyntax`).
    #[error("{0}")]
    InvalidSyntax(String),
    /// Malformed or unsupported path (`invalidPath`).
    #[error("{0}")]
    InvalidPath(String),
    /// Missing or unsuitable value (`invalidValue`).
    #[error("{0}")]
    InvalidValue(String),
    /// The path designates nothing and nothing can be created (`noTarget`).
    #[error("{0}")]
    NoTarget(String),
    /// Attempt to modify an immutable or read-only attribute (`mutability`).
    #[error("{0}")]
    Mutability(String),
    /// More than [`MAX_OPERATIONS`] operations (`invalidValue`).
    #[error("too many PATCH operations: {count} (the maximum is {max})")]
    TooManyOperations {
        /// Operations sent.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl PatchError {
    /// The SCIM `scimType` for the error response.
    pub fn scim_type(&self) -> &'static str {
        match self {
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::InvalidPath(_) => "invalidPath",
            Self::InvalidValue(_) | Self::TooManyOperations { .. } => "invalidValue",
            Self::NoTarget(_) => "noTarget",
            Self::Mutability(_) => "mutability",
        }
    }

    fn in_operation(self, index: usize) -> Self {
        let prefix = |m: String| format!("Operations[{index}]: {m}");
        match self {
            Self::InvalidSyntax(m) => Self::InvalidSyntax(prefix(m)),
            Self::InvalidPath(m) => Self::InvalidPath(prefix(m)),
            Self::InvalidValue(m) => Self::InvalidValue(prefix(m)),
            Self::NoTarget(m) => Self::NoTarget(prefix(m)),
            Self::Mutability(m) => Self::Mutability(prefix(m)),
            e @ Self::TooManyOperations { .. } => e,
        }
    }
}

// ---------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------

/// Parses a PatchOp request body from raw bytes.
pub fn parse_request_slice(body: &[u8]) -> Result<PatchRequest, PatchError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::InvalidSyntax(format!("request body is not valid JSON: {e}")))?;
    parse_request(&value)
}

/// Parses a PatchOp request body: `schemas` must contain [`PATCH_OP_SCHEMA`]
/// and `Operations` must be a non-empty array of at most [`MAX_OPERATIONS`]
/// objects with `op`, optional `path` and `value` (keys matched
/// case-insensitively).
pub fn parse_request(body: &Value) -> Result<PatchRequest, PatchError> {
    let obj = body.as_object().ok_or_else(|| PatchError::InvalidSyntax("request body must be a JSON object".into()))?;
    let has_schema = filter::get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)));
    if !has_schema {
        return Err(PatchError::InvalidSyntax(format!("\"schemas\" must contain \"{PATCH_OP_SCHEMA}\"")));
    }
    let ops = filter::get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| PatchError::InvalidSyntax("\"Operations\" must be an array of operations".into()))?;
    if ops.is_empty() {
        return Err(PatchError::InvalidSyntax("\"Operations\" must contain at least one operation".into()));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: ops.len(), max: MAX_OPERATIONS });
    }
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op).map_err(|e| e.in_operation(i)))
        .collect::<Result<_, _>>()?;
    Ok(PatchRequest { operations })
}

fn parse_operation(op: &Value) -> Result<PatchOperation, PatchError> {
    let obj = op.as_object().ok_or_else(|| PatchError::InvalidSyntax("an operation must be a JSON object".into()))?;
    let name = filter::get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError::InvalidSyntax("\"op\" must be a string".into()))?;
    let kind = PatchOpKind::from_name(name).ok_or_else(|| {
        PatchError::InvalidSyntax(format!("unknown op \"{}\": expected add, replace or remove", truncate(name)))
    })?;
    let path = match filter::get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            PatchPath::parse(s)
                .map_err(|e| PatchError::InvalidPath(format!("invalid path \"{}\": {e}", truncate(s))))?,
        ),
        Some(_) => return Err(PatchError::InvalidSyntax("\"path\" must be a string".into())),
    };
    let value = filter::get_ci(obj, "value").cloned();
    let op = PatchOperation { op: kind, path, value };
    validate_operation(&op)?;
    Ok(op)
}

fn validate_operation(op: &PatchOperation) -> Result<(), PatchError> {
    if op.op != PatchOpKind::Remove && op.value.is_none() {
        return Err(PatchError::InvalidValue(format!("\"{}\" requires a \"value\"", op.op.as_str())));
    }
    if op.op == PatchOpKind::Remove && op.path.is_none() {
        return Err(PatchError::NoTarget("\"remove\" requires a \"path\"".into()));
    }
    if op.path.is_none() && op.op != PatchOpKind::Remove && !op.value.as_ref().is_some_and(Value::is_object) {
        return Err(PatchError::InvalidValue("an operation without \"path\" requires an object \"value\"".into()));
    }
    if op.value.as_ref().is_some_and(|v| exceeds_depth(v, MAX_VALUE_DEPTH)) {
        return Err(PatchError::InvalidValue(format!("\"value\" is nested deeper than {MAX_VALUE_DEPTH} levels")));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Whether `v` nests deeper than `max` (iterative; never recurses).
fn exceeds_depth(v: &Value, max: usize) -> bool {
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        if d > max {
            return true;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Application
// ---------------------------------------------------------------------------

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
        .and_then(|o| filter::get_ci(o, "members"))
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m.as_object().and_then(|o| filter::get_ci(o, "value")))
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

/// Where an attribute path points.
enum Target {
    /// The resource itself (path is a bare core schema URN).
    Resource,
    /// An extension object itself (path is a bare extension URN).
    Extension(String),
    /// An attribute at the top level (`None`) or inside an extension object.
    Attr(Option<String>),
}

/// Whether `s` is a schema URN (rather than a URN-prefixed attribute path):
/// a well-known schema, one listed in the resource's `schemas`, an existing
/// top-level key, or an extension URN ending in `:User` / `:Group`.
fn is_schema_urn(root: &Map<String, Value>, s: &str) -> bool {
    if !s.contains(':') {
        return false;
    }
    let known = [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA].iter().any(|k| k.eq_ignore_ascii_case(s));
    let listed = filter::get_ci(root, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().filter_map(Value::as_str).any(|x| x.eq_ignore_ascii_case(s)));
    let last = s.rsplit(':').next().unwrap_or("");
    let looks_like_schema =
        starts_with_ignore_case(s, "urn:") && (last.eq_ignore_ascii_case("User") || last.eq_ignore_ascii_case("Group"));
    known || listed || find_key(root, s).is_some() || looks_like_schema
}

fn classify(root: &Map<String, Value>, attr: &AttrPath) -> Target {
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

/// Context of the attribute being modified.
struct AttrCtx<'a> {
    name: &'a str,
    /// Known multi-valued core attribute.
    multi: bool,
    /// Element `value`s compare case-sensitively (ids: members, groups).
    exact_values: bool,
    /// Enterprise `manager`.
    manager: bool,
    path: AttrPath,
}

impl<'a> AttrCtx<'a> {
    fn new(ext: Option<&str>, attr: &'a AttrPath) -> Self {
        let name = attr.attr.as_str();
        let top = ext.is_none();
        Self {
            name,
            multi: top && MULTI_VALUED.iter().any(|m| m.eq_ignore_ascii_case(name)),
            exact_values: top && (attr.attr_is("members") || attr.attr_is("groups")),
            manager: ext.is_some_and(|u| u.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)) && attr.attr_is("manager"),
            path: AttrPath { schema_urn: ext.map(str::to_string), attr: attr.attr.clone(), sub_attr: None },
        }
    }
}

/// Case-sensitivity used when matching value filters in PATCH paths: ids are
/// exact, everything else case-insensitive.
fn patch_case_exact(p: &AttrPath) -> bool {
    let id_list = p.attr_is("members") || p.attr_is("groups");
    match &p.sub_attr {
        None => p.attr_is("id") || p.attr_is("externalId"),
        Some(_) => p.sub_is("$ref") || (id_list && p.sub_is("value")),
    }
}

fn check_mutable(ext: Option<&str>, attr: &AttrPath) -> Result<(), PatchError> {
    if ext.is_some() {
        return Ok(());
    }
    if attr.attr_is("id") {
        return Err(PatchError::Mutability("attribute \"id\" is immutable".into()));
    }
    if attr.attr_is("meta") || attr.attr_is("schemas") {
        return Err(PatchError::Mutability(format!("attribute \"{}\" is read-only", attr.attr)));
    }
    Ok(())
}

/// Existing key matching `name` case-insensitively (exact match preferred).
fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn key_for(map: &Map<String, Value>, name: &str) -> String {
    find_key(map, name).unwrap_or_else(|| name.to_string())
}

fn add_schema(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(schemas)) = find_key(root, "schemas").and_then(|k| root.get_mut(&k)) {
        if !schemas.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(urn)) {
            schemas.push(Value::String(urn.to_string()));
        }
    }
}

fn remove_schema(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(schemas)) = find_key(root, "schemas").and_then(|k| root.get_mut(&k)) {
        schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
    }
}

/// The object holding attributes of `ext` (the root for `None`); created
/// (and registered in `schemas`) when `create` is set.
fn container<'m>(
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
fn tidy_extension(root: &mut Map<String, Value>, ext: Option<&str>) {
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
fn drop_if_empty(map: &mut Map<String, Value>, key: &str) {
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

// --- value normalisation ---------------------------------------------------

fn is_boolean_attr(name: &str) -> bool {
    BOOLEAN_ATTRS.iter().any(|b| b.eq_ignore_ascii_case(name))
}

/// Coerces `"true"`/`"false"` (any case) under boolean attribute names,
/// recursively through objects and arrays.
fn coerce(name: Option<&str>, v: Value) -> Result<Value, PatchError> {
    let boolean = name.is_some_and(is_boolean_attr);
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
fn normalize(ctx: &AttrCtx<'_>, v: Value) -> Result<Value, PatchError> {
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

fn into_items(v: Value) -> Vec<Value> {
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
                if let (Some(a), Some(b)) = (filter::get_ci(e, "value"), filter::get_ci(n, "value")) {
                    return a == b;
                }
            }
            n.iter().all(|(k, v)| filter::get_ci(e, k).is_some_and(|ev| values_equal(ctx.exact_values, ev, v)))
        }
        _ => values_equal(ctx.exact_values, existing, new),
    }
}

/// Whether `item` (from a remove's `value`) designates `element`.
fn designates(ctx: &AttrCtx<'_>, item: &Value, element: &Value) -> bool {
    let elem_value = element.as_object().and_then(|o| filter::get_ci(o, "value"));
    match (item.as_object(), elem_value) {
        (Some(i), Some(ev)) => match filter::get_ci(i, "value") {
            Some(iv) => values_equal(ctx.exact_values, iv, ev),
            None => is_duplicate(ctx, element, item),
        },
        (None, Some(ev)) => values_equal(ctx.exact_values, item, ev),
        _ => is_duplicate(ctx, element, item),
    }
}

/// Appends `items` skipping duplicates; returns indices of appended items.
fn append(ctx: &AttrCtx<'_>, arr: &mut Vec<Value>, items: Vec<Value>) -> Vec<usize> {
    let mut touched = Vec::new();
    for item in items {
        if item.is_null() || arr.iter().any(|e| is_duplicate(ctx, e, &item)) {
            continue;
        }
        arr.push(item);
        touched.push(arr.len() - 1);
    }
    touched
}

fn is_primary(v: &Value) -> bool {
    v.as_object().and_then(|o| filter::get_ci(o, "primary")).and_then(Value::as_bool) == Some(true)
}

/// Leaves at most one element with `primary: true`, preferring the first of
/// `touched` (elements this operation wrote).
fn enforce_primary(arr: &mut [Value], touched: &[usize]) {
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
fn merge_into(obj: &mut Map<String, Value>, value: Map<String, Value>) {
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
fn write_sub_value(obj: &mut Map<String, Value>, sub: &str, kind: PatchOpKind, value: Value) {
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

// --- add / replace ---------------------------------------------------------

fn write_pathless(root: &mut Map<String, Value>, kind: PatchOpKind, value: &Value) -> Result<(), PatchError> {
    let obj = value
        .as_object()
        .ok_or_else(|| PatchError::InvalidValue("an operation without \"path\" requires an object \"value\"".into()))?;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") || k.eq_ignore_ascii_case("meta") {
            continue;
        }
        if k.eq_ignore_ascii_case("id") {
            match filter::get_ci(root, "id") {
                Some(existing) if existing != v => {
                    return Err(PatchError::Mutability("attribute \"id\" is immutable".into()))
                }
                _ => continue,
            }
        }
        if is_schema_urn(root, k) {
            write_schema_object(root, k, kind, v)?;
            continue;
        }
        let path = PatchPath::parse(k)
            .map_err(|e| PatchError::InvalidPath(format!("invalid attribute \"{}\" in value: {e}", truncate(k))))?;
        let readonly = path.attr.is_core() && (path.attr.attr_is("meta") || path.attr.attr_is("schemas"));
        if !readonly {
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
        .filter(|(_, el)| filter::matches_element(filter, el, &ctx.path, patch_case_exact))
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

// --- remove ----------------------------------------------------------------

fn remove_path(root: &mut Map<String, Value>, path: &PatchPath, value: Option<&Value>) -> Result<(), PatchError> {
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
                Some(Value::Array(arr)) if !items.is_empty() => {
                    arr.retain(|el| !items.iter().any(|it| designates(&ctx, it, el)));
                }
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

fn remove_sub(obj: &mut Map<String, Value>, sub: &str) {
    if let Some(k) = find_key(obj, sub) {
        obj.remove(&k);
    }
}

fn remove_filtered(obj: &mut Map<String, Value>, key: &str, ctx: &AttrCtx<'_>, f: &Filter, sub: Option<&str>) {
    let hit = |el: &Value| filter::matches_element(f, el, &ctx.path, patch_case_exact);
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn patch(resource: &Value, ops: Value) -> PatchOutcome {
        apply_patch(resource, &body(ops)).unwrap_or_else(|e| panic!("patch failed: {e}"))
    }

    fn patch_err(resource: &Value, ops: Value) -> PatchError {
        match apply_patch(resource, &body(ops)) {
            Err(e) => e,
            Ok(o) => panic!("expected an error, got {}", o.resource),
        }
    }

    fn full_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true}],
            ENT: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
        })
    }

    fn bare_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA],
            "id": "u-1",
            "userName": "alice@example.com",
            "active": true
        })
    }

    fn group() -> Value {
        json!({
            "schemas": [GROUP_SCHEMA],
            "id": "g-1",
            "displayName": "Engineering",
            "members": [{"value": "u-1", "display": "Alice"}, {"value": "u-2"}],
            "meta": {"resourceType": "Group"}
        })
    }

    // --- request parsing -----------------------------------------------------

    #[test]
    fn parses_entra_request() {
        let req = parse_request(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "members", "value": [{"value": "u-9"}]},
                {"op": "Remove", "path": "members[value eq \"u-1\"]"},
                {"op": "Add", "value": {"name.givenName": "Bob"}}
            ]
        }))
        .unwrap();
        assert_eq!(req.operations.len(), 4);
        assert_eq!(req.operations[0].op, PatchOpKind::Replace);
        assert_eq!(req.operations[0].path, Some(PatchPath::parse("active").unwrap()));
        assert_eq!(req.operations[1].op, PatchOpKind::Add);
        assert_eq!(req.operations[2].op, PatchOpKind::Remove);
        assert!(req.operations[2].value.is_none());
        assert!(req.operations[3].path.is_none());
    }

    #[test]
    fn op_names_and_keys_are_case_insensitive() {
        for name in ["add", "ADD", "Add", "aDd"] {
            assert_eq!(PatchOpKind::from_name(name), Some(PatchOpKind::Add));
        }
        let req = parse_request(&json!({
            "SCHEMAS": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
            "operations": [{"OP": "REPLACE", "Path": "displayName", "Value": "x"}]
        }))
        .unwrap();
        assert_eq!(req.operations[0].op, PatchOpKind::Replace);
        assert_eq!(req.operations[0].value, Some(json!("x")));
    }

    #[test]
    fn empty_path_counts_as_absent() {
        let req = parse_request(&body(json!([{"op": "replace", "path": "", "value": {"displayName": "x"}}]))).unwrap();
        assert!(req.operations[0].path.is_none());
        let req =
            parse_request(&body(json!([{"op": "replace", "path": null, "value": {"displayName": "x"}}]))).unwrap();
        assert!(req.operations[0].path.is_none());
    }

    #[test]
    fn request_syntax_errors() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "invalidSyntax"),
            (json!({"Operations": [{"op": "add", "path": "a", "value": 1}]}), "invalidSyntax"),
            (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}), "invalidSyntax"),
            (
                json!({"schemas": PATCH_OP_SCHEMA, "Operations": [{"op": "add", "path": "a", "value": 1}]}),
                "invalidSyntax",
            ),
            (json!({"schemas": [PATCH_OP_SCHEMA]}), "invalidSyntax"),
            (json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}), "invalidSyntax"),
            (body(json!([])), "invalidSyntax"),
            (body(json!(["add"])), "invalidSyntax"),
            (body(json!([{"path": "a", "value": 1}])), "invalidSyntax"),
            (body(json!([{"op": 1, "path": "a", "value": 1}])), "invalidSyntax"),
            (body(json!([{"op": "move", "path": "a", "value": 1}])), "invalidSyntax"),
            (body(json!([{"op": "add", "path": 7, "value": 1}])), "invalidSyntax"),
            (body(json!([{"op": "add", "path": "emails[type eq]", "value": 1}])), "invalidPath"),
            (body(json!([{"op": "add", "path": "a b", "value": 1}])), "invalidPath"),
            (body(json!([{"op": "add", "path": "displayName"}])), "invalidValue"),
            (body(json!([{"op": "replace", "value": "x"}])), "invalidValue"),
            (body(json!([{"op": "add", "value": [{"displayName": "x"}]}])), "invalidValue"),
            (body(json!([{"op": "remove"}])), "noTarget"),
            (body(json!([{"op": "remove", "value": {"displayName": "x"}}])), "noTarget"),
        ];
        for (b, scim_type) in cases {
            let e = parse_request(&b).expect_err(&b.to_string());
            assert_eq!(e.scim_type(), scim_type, "{b} -> {e}");
        }
    }

    #[test]
    fn error_details_name_the_operation() {
        let e = parse_request(&body(json!([
            {"op": "add", "path": "a", "value": 1},
            {"op": "add", "path": "emails[type eq]", "value": 1}
        ])))
        .unwrap_err();
        assert!(e.to_string().starts_with("Operations[1]: invalid path \"emails[type eq]\""), "{e}");
        let e = patch_err(&bare_user(), json!([{"op": "replace", "path": "id", "value": "x"}]));
        assert_eq!(e.to_string(), "Operations[0]: attribute \"id\" is immutable");
    }

    #[test]
    fn raw_bytes_parsing() {
        let ok = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#;
        assert_eq!(parse_request_slice(ok).unwrap().operations.len(), 1);
        let e = parse_request_slice(b"{not json").unwrap_err();
        assert_eq!(e.scim_type(), "invalidSyntax");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_request_slice(deep.as_bytes()).unwrap_err().scim_type(), "invalidSyntax");
    }

    #[test]
    fn operation_count_limit() {
        let ops: Vec<Value> =
            (0..=MAX_OPERATIONS).map(|i| json!({"op": "add", "path": "title", "value": i.to_string()})).collect();
        let e = parse_request(&body(Value::Array(ops.clone()))).unwrap_err();
        assert_eq!(e, PatchError::TooManyOperations { count: MAX_OPERATIONS + 1, max: MAX_OPERATIONS });
        assert_eq!(e.scim_type(), "invalidValue");
        let ok = parse_request(&body(Value::Array(ops[..MAX_OPERATIONS].to_vec()))).unwrap();
        assert_eq!(ok.operations.len(), MAX_OPERATIONS);
        let out = apply(&bare_user(), &ok).unwrap();
        assert_eq!(out.resource["title"], json!((MAX_OPERATIONS - 1).to_string()));
        // hand-built requests are checked too
        let mut big = ok.clone();
        big.operations.push(big.operations[0].clone());
        assert!(matches!(apply(&bare_user(), &big), Err(PatchError::TooManyOperations { .. })));
    }

    #[test]
    fn deep_values_and_paths_are_rejected() {
        let mut v = json!("x");
        for _ in 0..MAX_VALUE_DEPTH {
            v = json!([v]);
        }
        let e = parse_request(&body(json!([{"op": "add", "path": "x", "value": v}]))).unwrap_err();
        assert_eq!(e.scim_type(), "invalidValue");
        let mut ok = json!("x");
        for _ in 0..MAX_VALUE_DEPTH - 1 {
            ok = json!({"a": ok});
        }
        assert!(parse_request(&body(json!([{"op": "add", "path": "x", "value": ok}]))).is_ok());
        let deep_path = format!("emails[{}type pr{}]", "(".repeat(40), ")".repeat(40));
        let e = parse_request(&body(json!([{"op": "remove", "path": deep_path}]))).unwrap_err();
        assert_eq!(e.scim_type(), "invalidPath");
        assert!(e.to_string().contains("nested too deeply"), "{e}");
        // hand-built operations are validated on apply
        let req = PatchRequest {
            operations: vec![PatchOperation { op: PatchOpKind::Add, path: None, value: Some(json!({"a": v})) }],
        };
        assert_eq!(apply(&bare_user(), &req).unwrap_err().scim_type(), "invalidValue");
    }

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

    // --- path-less add / replace ---------------------------------------------

    #[test]
    fn entra_pathless_add_with_path_keys() {
        let out = patch(
            &bare_user(),
            json!([{
                "op": "Add",
                "value": {
                    "name.givenName": "Alice",
                    "name.familyName": "Liddell",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Eng",
                    "title": "Engineer",
                    "emails[type eq \"work\"].value": "alice@example.com"
                }
            }]),
        );
        assert_eq!(out.resource["name"], json!({"givenName": "Alice", "familyName": "Liddell"}));
        assert_eq!(out.resource[ENT], json!({"department": "Eng"}));
        assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, ENT]));
        assert_eq!(out.resource["title"], json!("Engineer"));
        assert_eq!(out.resource["emails"], json!([{"type": "work", "value": "alice@example.com"}]));
    }

    #[test]
    fn pathless_extension_object() {
        let out = patch(
            &full_user(),
            json!([{
                "op": "replace",
                "value": {ENT: {"manager": {"value": "m-2"}, "costCenter": "4130"}}
            }]),
        );
        assert_eq!(
            out.resource[ENT],
            json!({"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "m-2"}, "costCenter": "4130"})
        );
        // core-schema URN key holding attributes
        let out = patch(
            &bare_user(),
            json!([{
                "op": "replace",
                "value": {USER_SCHEMA: {"displayName": "A", "name": {"givenName": "A"}}}
            }]),
        );
        assert_eq!(out.resource["displayName"], json!("A"));
        assert_eq!(out.resource["name"], json!({"givenName": "A"}));
        // custom extension not yet on the resource
        let custom = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";
        let out = patch(&bare_user(), json!([{"op": "add", "value": {custom: {"badge": "42"}}}]));
        assert_eq!(out.resource[custom], json!({"badge": "42"}));
        assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, custom]));
    }

    #[test]
    fn pathless_values_ignore_schemas_meta_and_unchanged_id() {
        let out = patch(
            &full_user(),
            json!([{
                "op": "replace",
                "value": {
                    "schemas": ["urn:bogus"],
                    "meta": {"lastModified": "2030-01-01T00:00:00Z"},
                    "id": "2819c223-7f76-453a-919d-413861904646",
                    "meta.version": "W/\"x\"",
                    "displayName": "Babs Jensen"
                }
            }]),
        );
        assert_eq!(out.resource, full_user());
        assert!(!out.changed);
        let e = patch_err(&full_user(), json!([{"op": "replace", "value": {"id": "other"}}]));
        assert_eq!(e.scim_type(), "mutability");
    }

    #[test]
    fn okta_group_rename() {
        let out = patch(&group(), json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Platform"}}]));
        assert_eq!(out.resource["displayName"], json!("Platform"));
        assert!(out.changed);
        assert!(out.members_added.is_empty() && out.members_removed.is_empty());
        let out = patch(&group(), json!([{"op": "Replace", "value": {"displayName": "Platform"}}]));
        assert_eq!(out.resource["displayName"], json!("Platform"));
        let e = patch_err(&group(), json!([{"op": "replace", "value": {"id": "g-2", "displayName": "X"}}]));
        assert_eq!(e.scim_type(), "mutability");
    }

    #[test]
    fn pathless_invalid_key_is_invalid_path() {
        let e = patch_err(&bare_user(), json!([{"op": "add", "value": {"not a path": 1}}]));
        assert_eq!(e.scim_type(), "invalidPath");
    }

    // --- multi-valued add ----------------------------------------------------

    #[test]
    fn multi_valued_add_appends_and_deduplicates() {
        let out = patch(
            &full_user(),
            json!([{"op": "add", "path": "emails", "value": [
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "BJENSEN@example.com"},
                {"value": "b@other.org", "type": "other"}
            ]}]),
        );
        assert_eq!(out.resource["emails"].as_array().unwrap().len(), 3);
        assert_eq!(out.resource["emails"][2], json!({"value": "b@other.org", "type": "other"}));
        // single object value is appended too
        let out =
            patch(&bare_user(), json!([{"op": "add", "path": "emails", "value": {"value": "a@b", "type": "work"}}]));
        assert_eq!(out.resource["emails"], json!([{"value": "a@b", "type": "work"}]));
        // simple multi-valued
        let r = json!({"id": "x", "tags": ["a"]});
        let out = patch(&r, json!([{"op": "add", "path": "tags", "value": ["a", "b", "b"]}]));
        assert_eq!(out.resource["tags"], json!(["a", "b"]));
    }

    #[test]
    fn replace_multi_valued_without_filter_replaces_whole_array() {
        let out = patch(
            &full_user(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "n@x", "type": "work"}]}]),
        );
        assert_eq!(out.resource["emails"], json!([{"value": "n@x", "type": "work"}]));
        let out = patch(
            &full_user(),
            json!([{"op": "replace", "path": "phoneNumbers", "value": {"value": "1", "type": "fax"}}]),
        );
        assert_eq!(out.resource["phoneNumbers"], json!([{"value": "1", "type": "fax"}]));
        let out = patch(&full_user(), json!([{"op": "replace", "path": "emails", "value": []}]));
        assert!(out.resource.get("emails").is_none());
    }

    #[test]
    fn pathless_replace_of_multi_valued_replaces_and_add_appends() {
        let out = patch(&full_user(), json!([{"op": "replace", "value": {"emails": [{"value": "n@x"}]}}]));
        assert_eq!(out.resource["emails"], json!([{"value": "n@x"}]));
        let out = patch(&full_user(), json!([{"op": "add", "value": {"emails": [{"value": "n@x"}]}}]));
        assert_eq!(out.resource["emails"].as_array().unwrap().len(), 3);
    }

    // --- primary -------------------------------------------------------------

    #[test]
    fn primary_is_unique() {
        let out = patch(
            &full_user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other", "primary": true}]}]),
        );
        let emails = out.resource["emails"].as_array().unwrap();
        assert_eq!(emails[0]["primary"], json!(false));
        assert_eq!(emails[2]["primary"], json!(true));
        let out = patch(
            &full_user(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
        );
        let emails = out.resource["emails"].as_array().unwrap();
        assert_eq!(emails[0]["primary"], json!(false));
        assert_eq!(emails[1]["primary"], json!(true));
        let out = patch(
            &full_user(),
            json!([{"op": "replace", "path": "emails", "value": [
                {"value": "a", "primary": true}, {"value": "b", "primary": "true"}
            ]}]),
        );
        assert_eq!(out.resource["emails"], json!([{"value": "a", "primary": true}, {"value": "b", "primary": false}]));
        let out = patch(
            &full_user(),
            json!([{"op": "add", "path": "emails[type eq \"work2\" and primary eq true].value", "value": "w2@x"}]),
        );
        let emails = out.resource["emails"].as_array().unwrap();
        assert_eq!(emails.iter().filter(|e| e["primary"] == json!(true)).count(), 1);
        assert_eq!(emails[2]["primary"], json!(true));
    }

    // --- members -------------------------------------------------------------

    #[test]
    fn entra_add_members() {
        let out =
            patch(&group(), json!([{"op": "Add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-4"}]}]));
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
        let out =
            patch(&g, json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-3"}]}]));
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
        let out = patch(
            &group(),
            json!([{"op": "replace", "path": "members", "value": [{"value": "u-2"}, {"value": "u-7"}]}]),
        );
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
            assert_eq!(
                out.resource[ENT],
                json!({"employeeNumber": "701984", "department": "Tour Operations"}),
                "{ops}"
            );
        }
        let out = patch(&bare_user(), json!([{"op": "Replace", "path": mpath, "value": ""}]));
        assert!(!out.changed);
    }

    // --- mutability & atomicity ---------------------------------------------

    #[test]
    fn immutable_and_read_only_paths() {
        for (op, path) in [
            ("replace", "id"),
            ("add", "id"),
            ("remove", "id"),
            ("replace", "meta.lastModified"),
            ("remove", "meta"),
            ("add", "schemas"),
            ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:id"),
        ] {
            let e = patch_err(&full_user(), json!([{"op": op, "path": path, "value": "x"}]));
            assert_eq!(e.scim_type(), "mutability", "{op} {path}");
        }
    }

    #[test]
    fn failing_operation_fails_the_whole_patch() {
        let original = group();
        let result = apply_patch(
            &original,
            &body(json!([
                {"op": "add", "path": "members", "value": [{"value": "u-9"}]},
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "replace", "path": "id", "value": "nope"}
            ])),
        );
        assert_eq!(result.unwrap_err().scim_type(), "mutability");
        assert_eq!(original, group());
    }

    #[test]
    fn null_values_unassign() {
        let out = patch(
            &full_user(),
            json!([
                {"op": "replace", "path": "displayName", "value": null},
                {"op": "replace", "value": {"name": {"formatted": null}}}
            ]),
        );
        assert!(out.resource.get("displayName").is_none());
        assert_eq!(out.resource["name"], json!({"givenName": "Barbara", "familyName": "Jensen"}));
    }

    #[test]
    fn resource_must_be_an_object() {
        let e = apply_patch(&json!([1]), &body(json!([{"op": "add", "path": "a", "value": 1}]))).unwrap_err();
        assert_eq!(e.scim_type(), "invalidValue");
    }

    #[test]
    fn unchanged_patch_reports_not_changed() {
        let out = patch(
            &full_user(),
            json!([
                {"op": "replace", "path": "displayName", "value": "Babs Jensen"},
                {"op": "Replace", "path": "active", "value": "True"},
                {"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org"}]}
            ]),
        );
        assert!(!out.changed);
    }

    // --- property tests ------------------------------------------------------

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
}
