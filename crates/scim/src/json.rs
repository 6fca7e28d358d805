//! Case-insensitive access to JSON objects: SCIM attribute names are case-insensitive
//! (RFC 7643 §2.1), and an existing key keeps its spelling.
use serde_json::{Map, Value};

/// Case-insensitive lookup (exact match preferred).
pub fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The existing key matching `name` case-insensitively (exact match preferred).
pub fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The key to write `name` under: the existing spelling, or `name` as given.
pub fn key_for(map: &Map<String, Value>, name: &str) -> String {
    find_key(map, name).unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_key_preferred_then_any_case() {
        let m = json!({"Value": 1, "value": 2, "Type": 3});
        let m = m.as_object().unwrap();
        assert_eq!(get_ci(m, "value"), Some(&json!(2)));
        assert_eq!(get_ci(m, "TYPE"), Some(&json!(3)));
        assert_eq!(get_ci(m, "x"), None);
        assert_eq!(find_key(m, "type").as_deref(), Some("Type"));
        assert_eq!(key_for(m, "display"), "display");
    }
}
