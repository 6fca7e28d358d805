//! SCIM User and Group resources <-> rows. The stored document (`scim` column) is the resource
//! as the client sent it — core schema, enterprise extension and any unknown extension — with
//! attribute names in their canonical spelling, and without `id`, `meta`, `password` and the
//! read-only `groups` (users) or `members` (groups, kept in `scim_group_members`).
use crate::scim::error::ScimError;
use crate::scim::path::{AttrPath, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use crate::store::entities::{scim_group, user};
use crate::util::rfc3339;
use serde_json::{json, Map, Value};

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    /// The SQL alias of the resource's table in generated queries.
    pub fn alias(self) -> &'static str {
        match self {
            Kind::User => "u",
            Kind::Group => "g",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
}

/// Canonical spelling of the core and enterprise attribute names (RFC 7643 §4).
const NAMES: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "userName",
    "name",
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "value",
    "display",
    "type",
    "primary",
    "$ref",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "members",
    "resourceType",
    "created",
    "lastModified",
    "location",
    "version",
];

use crate::scim::patch::MULTI_VALUED as MULTI;

/// The canonical spelling of a known attribute name; unknown names are returned as given.
pub fn canonical_name(n: &str) -> &str {
    NAMES.iter().find(|k| k.eq_ignore_ascii_case(n)).copied().unwrap_or(n)
}

/// The canonical spelling of a known schema URN.
pub fn canonical_urn(u: &str) -> String {
    [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]
        .iter()
        .find(|k| k.eq_ignore_ascii_case(u))
        .map(|s| s.to_string())
        .unwrap_or_else(|| u.to_string())
}

/// Whether a core attribute is multi-valued.
pub fn is_multi_valued(n: &str) -> bool {
    MULTI.iter().any(|k| k.eq_ignore_ascii_case(n))
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

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn opt_str(m: &Map<String, Value>, k: &str, what: &str) -> Result<Option<String>, ScimError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{what} must be a string"))),
    }
}

/// Validates and normalizes a User document for storage.
pub fn normalize_user(input: Value) -> Result<Value, ScimError> {
    let Value::Object(mut m) = canonicalize(input) else {
        return Err(ScimError::bad("invalidSyntax", "the request body must be a JSON object"));
    };
    for k in ["id", "meta", "password", "groups"] {
        m.remove(k);
    }
    m.retain(|_, v| !v.is_null());
    let user_name = opt_str(&m, "userName", "userName")?.map(|s| s.trim().to_string()).unwrap_or_default();
    if user_name.is_empty() {
        return Err(ScimError::invalid_value("userName is required"));
    }
    if user_name.chars().count() > 256 {
        return Err(ScimError::invalid_value("userName is longer than 256 characters"));
    }
    m.insert("userName".into(), user_name.into());
    opt_str(&m, "externalId", "externalId")?;
    opt_str(&m, "displayName", "displayName")?;
    // An absent `active` means active (and stays absent, as the client left it).
    if let Some(v) = m.get("active") {
        let active = as_bool(v).ok_or_else(|| ScimError::invalid_value("active must be a boolean"))?;
        m.insert("active".into(), active.into());
    }
    if let Some(n) = m.get("name") {
        if !n.is_object() {
            return Err(ScimError::invalid_value("name must be an object"));
        }
    }
    for k in MULTI {
        if let Some(v) = m.get_mut(*k) {
            if !v.is_array() {
                return Err(ScimError::invalid_value(format!("{k} must be an array")));
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
    fix_schemas(&mut m, USER_SCHEMA);
    Ok(Value::Object(m))
}

/// Validates and normalizes a Group document; returns it (without members) and the member ids
/// when `members` was sent.
pub fn normalize_group(input: Value) -> Result<(Value, Option<Vec<String>>), ScimError> {
    let Value::Object(mut m) = canonicalize(input) else {
        return Err(ScimError::bad("invalidSyntax", "the request body must be a JSON object"));
    };
    for k in ["id", "meta"] {
        m.remove(k);
    }
    m.retain(|_, v| !v.is_null());
    let name = opt_str(&m, "displayName", "displayName")?.map(|s| s.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err(ScimError::invalid_value("displayName is required"));
    }
    m.insert("displayName".into(), name.into());
    opt_str(&m, "externalId", "externalId")?;
    let members = match m.remove("members") {
        None => None,
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for e in a {
                let id = e
                    .get("value")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ScimError::invalid_value("every member needs a string \"value\" (the user's id)"))?;
                if !ids.iter().any(|x: &String| x == id) {
                    ids.push(id.to_string());
                }
            }
            Some(ids)
        }
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    };
    fix_schemas(&mut m, GROUP_SCHEMA);
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

/// The ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn meta(kind: Kind, base: &str, id: &str, created: i64, modified: i64, version: i64) -> Value {
    json!({
        "resourceType": kind.resource_type(),
        "created": rfc3339(created),
        "lastModified": rfc3339(modified),
        "location": format!("{base}/{}/{id}", kind.endpoint()),
        "version": etag(version),
    })
}

fn parse_doc(s: &str) -> Map<String, Value> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The User resource as returned: stored document + id, meta and (read-only) groups.
pub fn user_resource(u: &user::Model, groups: &[(String, String)], base: &str) -> Value {
    let mut m = parse_doc(u.scim.as_deref().unwrap_or("{}"));
    m.insert("id".into(), u.id.clone().into());
    if m.contains_key("active") || !u.active {
        m.insert("active".into(), u.active.into());
    }
    if !groups.is_empty() {
        let gs: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({"value": id, "display": name, "type": "direct", "$ref": format!("{base}/Groups/{id}")})
            })
            .collect();
        m.insert("groups".into(), Value::Array(gs));
    }
    m.insert("meta".into(), meta(Kind::User, base, &u.id, u.created_at, u.updated_at, u.version));
    Value::Object(m)
}

/// The Group resource as returned: stored document + id, members and meta. `members` is None
/// when members were excluded.
pub fn group_resource(g: &scim_group::Model, members: Option<&[(String, String)]>, base: &str) -> Value {
    let mut m = parse_doc(&g.scim);
    m.insert("id".into(), g.id.clone().into());
    if let Some(ms) = members {
        if !ms.is_empty() {
            let v: Vec<Value> = ms
                .iter()
                .map(|(id, _)| json!({"value": id, "type": "User", "$ref": format!("{base}/Users/{id}")}))
                .collect();
            m.insert("members".into(), Value::Array(v));
        }
    }
    m.insert("meta".into(), meta(Kind::Group, base, &g.id, g.created_at, g.updated_at, g.version));
    Value::Object(m)
}

/// Parses an `attributes` / `excludedAttributes` list.
pub fn parse_attr_list(s: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else { return Ok(Vec::new()) };
    s.split(',').map(|p| AttrPath::parse(p.trim()).map_err(|e| ScimError::bad("invalidPath", e.to_string()))).collect()
}

/// Whether the listed attributes ask for (or exclude) `members`.
pub fn mentions(list: &[AttrPath], attr: &str) -> bool {
    list.iter().any(|p| p.is_core() && p.attr_is(attr))
}

fn key_of<'m>(m: &'m Map<String, Value>, name: &str) -> Option<&'m String> {
    m.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// Applies `attributes` (keep only these, plus `id`, `schemas` and `meta`) or
/// `excludedAttributes` (drop these; `id` and `schemas` are always returned).
pub fn project(resource: Value, attributes: &[AttrPath], excluded: &[AttrPath]) -> Value {
    let Value::Object(mut m) = resource else { return resource };
    if !attributes.is_empty() {
        let mut out = Map::new();
        for k in ["schemas", "id", "meta"] {
            if let Some(v) = m.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        for p in attributes {
            let container: Option<(String, &Map<String, Value>)> = match p.extension_urn() {
                Some(urn) => key_of(&m, urn).and_then(|k| m.get(k).and_then(Value::as_object).map(|o| (k.clone(), o))),
                None => None,
            };
            let (src, dst_key) = match &container {
                Some((k, o)) => (*o, Some(k.clone())),
                None if p.extension_urn().is_some() => continue,
                None => (&m, None),
            };
            let Some(attr_key) = key_of(src, &p.attr).cloned() else { continue };
            let mut val = src.get(&attr_key).cloned().unwrap_or(Value::Null);
            if let Some(sub) = &p.sub_attr {
                val = match val {
                    Value::Object(o) => {
                        let mut r = Map::new();
                        if let Some(k) = key_of(&o, sub) {
                            r.insert(k.clone(), o[k].clone());
                        }
                        Value::Object(r)
                    }
                    Value::Array(a) => Value::Array(
                        a.into_iter()
                            .map(|e| {
                                let mut r = Map::new();
                                if let Some(o) = e.as_object() {
                                    if let Some(k) = key_of(o, sub) {
                                        r.insert(k.clone(), o[k].clone());
                                    }
                                }
                                Value::Object(r)
                            })
                            .collect(),
                    ),
                    other => other,
                };
            }
            let target = match dst_key {
                Some(k) => {
                    let e = out.entry(k).or_insert_with(|| Value::Object(Map::new()));
                    match e.as_object_mut() {
                        Some(o) => o,
                        None => continue,
                    }
                }
                None => &mut out,
            };
            match (target.get_mut(&attr_key), val) {
                (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
                (_, v) => {
                    target.insert(attr_key, v);
                }
            }
        }
        return Value::Object(out);
    }
    for p in excluded {
        if p.is_core() && (p.attr_is("id") || p.attr_is("schemas")) {
            continue;
        }
        let holder = match p.extension_urn() {
            Some(urn) => match key_of(&m, urn).cloned() {
                Some(k) => m.get_mut(&k).and_then(Value::as_object_mut),
                None => None,
            },
            None => Some(&mut m),
        };
        let Some(holder) = holder else { continue };
        let Some(k) = key_of(holder, &p.attr).cloned() else { continue };
        match &p.sub_attr {
            None => {
                holder.remove(&k);
            }
            Some(sub) => match holder.get_mut(&k) {
                Some(Value::Object(o)) => {
                    if let Some(sk) = key_of(o, sub).cloned() {
                        o.remove(&sk);
                    }
                }
                Some(Value::Array(a)) => {
                    for e in a.iter_mut() {
                        if let Some(o) = e.as_object_mut() {
                            if let Some(sk) = key_of(o, sub).cloned() {
                                o.remove(&sk);
                            }
                        }
                    }
                }
                _ => {}
            },
        }
    }
    Value::Object(m)
}
