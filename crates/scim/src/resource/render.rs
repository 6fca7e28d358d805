//! Rendering a stored resource: the stored document plus `id`, `meta` and the membership
//! attribute (a user's read-only `groups`, a group's `members`).
use serde_json::{json, Map, Value};

use crate::schema::ResourceKind;

/// What the row adds to the stored document: its id, RFC 3339 times and version.
#[derive(Debug, Clone, Copy)]
pub struct RowMeta<'a> {
    pub id: &'a str,
    /// `meta.created`, RFC 3339.
    pub created: &'a str,
    /// `meta.lastModified`, RFC 3339.
    pub last_modified: &'a str,
    pub version: i64,
}

/// The ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn meta(kind: ResourceKind, base: &str, row: &RowMeta<'_>) -> Value {
    json!({
        "resourceType": kind.name(),
        "created": row.created,
        "lastModified": row.last_modified,
        "location": format!("{base}{}/{}", kind.endpoint(), row.id),
        "version": etag(row.version),
    })
}

fn parse_doc(s: &str) -> Map<String, Value> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The User resource as returned: stored document + id, meta and (read-only) groups, given as
/// (group id, displayName). `active` is the row's; it is shown when the document has it or it
/// is false.
pub fn user_resource(stored: &str, row: &RowMeta<'_>, active: bool, groups: &[(String, String)], base: &str) -> Value {
    let mut m = parse_doc(stored);
    m.insert("id".into(), row.id.into());
    if m.contains_key("active") || !active {
        m.insert("active".into(), active.into());
    }
    if !groups.is_empty() {
        let gs: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({"value": id, "display": name, "type": "direct", "$ref": format!("{base}{}/{id}", ResourceKind::Group.endpoint())})
            })
            .collect();
        m.insert("groups".into(), Value::Array(gs));
    }
    m.insert("meta".into(), meta(ResourceKind::User, base, row));
    Value::Object(m)
}

/// The Group resource as returned: stored document + id, members (given as (user id,
/// userName)) and meta. `members` is None when members were not loaded.
pub fn group_resource(stored: &str, row: &RowMeta<'_>, members: Option<&[(String, String)]>, base: &str) -> Value {
    let mut m = parse_doc(stored);
    m.insert("id".into(), row.id.into());
    if let Some(ms) = members {
        if !ms.is_empty() {
            let v: Vec<Value> = ms
                .iter()
                .map(|(id, _)| {
                    json!({"value": id, "type": "User", "$ref": format!("{base}{}/{id}", ResourceKind::User.endpoint())})
                })
                .collect();
            m.insert("members".into(), Value::Array(v));
        }
    }
    m.insert("meta".into(), meta(ResourceKind::Group, base, row));
    Value::Object(m)
}
