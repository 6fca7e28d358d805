//! `attributes` / `excludedAttributes` (RFC 7644 §3.9).
use serde_json::{Map, Value};

use super::ResourceError;
use crate::path::AttrPath;

/// Parses an `attributes` / `excludedAttributes` list.
pub fn parse_attr_list(s: Option<&str>) -> Result<Vec<AttrPath>, ResourceError> {
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else { return Ok(Vec::new()) };
    s.split(',').map(|p| AttrPath::parse(p.trim()).map_err(|e| ResourceError::InvalidPath(e.to_string()))).collect()
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
