//! SCIM User and Group resources: normalization for storage, rendering and projection.
//!
//! The stored document is the resource as the client sent it — core schema, enterprise
//! extension and any unknown extension — with attribute names in their canonical spelling
//! (from the schema table), and without what the server assigns or keeps elsewhere (`id`,
//! `meta`, the write-only `password`, the read-only `groups` of a user; a group's `members` are
//! taken out and kept in the membership table).
use serde_json::{Map, Value};

use crate::schema::{self, canonical_name, canonical_urn, Mutability, ResourceKind, Storage};

mod project;
mod render;

pub use project::{mentions, parse_attr_list, project};
pub use render::{etag, group_resource, user_resource, RowMeta};

/// A resource (or projection list) a client sent that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Not a JSON object (`invalidSyntax`).
    #[error("{0}")]
    InvalidSyntax(String),
    /// A missing or ill-typed attribute (`invalidValue`).
    #[error("{0}")]
    InvalidValue(String),
    /// A malformed attribute path in `attributes` / `excludedAttributes` (`invalidPath`).
    #[error("{0}")]
    InvalidPath(String),
}

impl ResourceError {
    /// The SCIM `scimType` for the error response (all map to HTTP 400).
    pub fn scim_type(&self) -> &'static str {
        match self {
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::InvalidValue(_) => "invalidValue",
            Self::InvalidPath(_) => "invalidPath",
        }
    }
}

/// Renames keys to their canonical spelling, recursively (extension URNs included).
pub fn canonicalize(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let key = if k.contains(':') { canonical_urn(&k) } else { canonical_name(&k).to_string() };
                out.insert(key, canonicalize(val));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonicalize).collect()),
        other => other,
    }
}

/// Removes the top-level attributes a client may send but the stored document never holds:
/// the server-assigned common attributes (`id`, `meta`; `schemas` is rebuilt) and the kind's
/// read-only and discarded ones (a user's `groups` and `password`).
fn drop_not_stored(m: &mut Map<String, Value>, kind: ResourceKind) {
    let common = schema::common_attributes().iter().filter(|a| a.mutability != Mutability::ReadWrite);
    let own = kind
        .schema()
        .attributes
        .iter()
        .filter(|a| a.mutability == Mutability::ReadOnly || a.storage == Storage::Discarded);
    for a in common.chain(own) {
        m.remove(a.name);
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn opt_str(m: &Map<String, Value>, k: &str, what: &str) -> Result<Option<String>, ResourceError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ResourceError::InvalidValue(format!("{what} must be a string"))),
    }
}

/// Validates and normalizes a User document for storage.
pub fn normalize_user(input: Value) -> Result<Value, ResourceError> {
    let Value::Object(mut m) = canonicalize(input) else {
        return Err(ResourceError::InvalidSyntax("the request body must be a JSON object".into()));
    };
    drop_not_stored(&mut m, ResourceKind::User);
    m.retain(|_, v| !v.is_null());
    let user_name = opt_str(&m, "userName", "userName")?.map(|s| s.trim().to_string()).unwrap_or_default();
    if user_name.is_empty() {
        return Err(ResourceError::InvalidValue("userName is required".into()));
    }
    if user_name.chars().count() > 256 {
        return Err(ResourceError::InvalidValue("userName is longer than 256 characters".into()));
    }
    m.insert("userName".into(), user_name.into());
    opt_str(&m, "externalId", "externalId")?;
    opt_str(&m, "displayName", "displayName")?;
    // An absent `active` means active (and stays absent, as the client left it).
    if let Some(v) = m.get("active") {
        let active = as_bool(v).ok_or_else(|| ResourceError::InvalidValue("active must be a boolean".into()))?;
        m.insert("active".into(), active.into());
    }
    if let Some(n) = m.get("name") {
        if !n.is_object() {
            return Err(ResourceError::InvalidValue("name must be an object".into()));
        }
    }
    for k in schema::multi_valued_core_attributes().map(|a| a.name) {
        if let Some(v) = m.get_mut(k) {
            if !v.is_array() {
                return Err(ResourceError::InvalidValue(format!("{k} must be an array")));
            }
            if let Value::Array(a) = v {
                for e in a.iter_mut() {
                    if let Some(p) = e.get("primary").and_then(as_bool) {
                        e["primary"] = p.into();
                    }
                }
            }
        }
    }
    fix_schemas(&mut m, ResourceKind::User.schema().id);
    Ok(Value::Object(m))
}

/// Validates and normalizes a Group document; returns it (without members) and the member ids
/// when `members` was sent.
pub fn normalize_group(input: Value) -> Result<(Value, Option<Vec<String>>), ResourceError> {
    let Value::Object(mut m) = canonicalize(input) else {
        return Err(ResourceError::InvalidSyntax("the request body must be a JSON object".into()));
    };
    drop_not_stored(&mut m, ResourceKind::Group);
    m.retain(|_, v| !v.is_null());
    let name = opt_str(&m, "displayName", "displayName")?.map(|s| s.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err(ResourceError::InvalidValue("displayName is required".into()));
    }
    m.insert("displayName".into(), name.into());
    opt_str(&m, "externalId", "externalId")?;
    let members = match m.remove("members") {
        None => None,
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for e in a {
                let id = e.get("value").and_then(Value::as_str).ok_or_else(|| {
                    ResourceError::InvalidValue("every member needs a string \"value\" (the user's id)".into())
                })?;
                if !ids.iter().any(|x: &String| x == id) {
                    ids.push(id.to_string());
                }
            }
            Some(ids)
        }
        Some(_) => return Err(ResourceError::InvalidValue("members must be an array".into())),
    };
    fix_schemas(&mut m, ResourceKind::Group.schema().id);
    Ok((Value::Object(m), members))
}

/// `schemas` lists the core schema and every extension object present, nothing else.
fn fix_schemas(m: &mut Map<String, Value>, core: &str) {
    let mut schemas = vec![Value::String(core.into())];
    for (k, v) in m.iter() {
        if k.starts_with("urn:") && v.is_object() && !k.eq_ignore_ascii_case(core) {
            schemas.push(Value::String(k.clone()));
        }
    }
    m.insert("schemas".into(), Value::Array(schemas));
}

/// Row columns derived from a normalized User document.
pub struct UserColumns {
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// The row columns of a normalized User document: the email is the primary one (or the first).
pub fn user_columns(doc: &Value) -> UserColumns {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let emails = doc.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|a| a.iter().find(|e| e.get("primary") == Some(&Value::Bool(true))).or_else(|| a.first()))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = doc.get("name");
    UserColumns {
        user_name: s(doc.get("userName")).unwrap_or_default(),
        external_id: s(doc.get("externalId")),
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        email,
        name: s(doc.get("displayName")).or_else(|| s(name.and_then(|n| n.get("formatted")))),
        given_name: s(name.and_then(|n| n.get("givenName"))),
        family_name: s(name.and_then(|n| n.get("familyName"))),
    }
}

#[cfg(test)]
mod tests;
