//! Claim rules: a small typed JSON language the app's operator writes per tenant and per client
//! to shape the tokens (map groups to roles, rename, set static or templated values, drop). Pure:
//! parsed and validated into Rust types on save, evaluated without executing anything.
//!
//! ```json
//! {"rules": [
//!   {"map_groups": {"claim": "roles", "map": {"Engineering": ["editor"], "Admins": ["admin"]}}},
//!   {"rename": {"from": "name", "to": "full_name"}},
//!   {"set": {"claim": "plan", "value": "enterprise"}},
//!   {"set": {"claim": "https://aws.amazon.com/tags",
//!            "value": {"principal_tags": {"org_id": ["{{org_id}}"]}, "transitive_tag_keys": ["org_id"]}}},
//!   {"drop": "groups"}
//! ]}
//! ```
//!
//! Templates: a string value anywhere inside `set.value` may reference a claim of the token as
//! fedgate built it *before any rule ran* (`{{org_id}}`, `{{sub}}`, `{{email}}`...). A string that
//! is exactly one reference takes the claim's value with its type (a list stays a list); a
//! reference inside a longer string is replaced by the claim's text (strings, numbers and booleans
//! only). A reference to a claim the token does not have makes the string empty (whole-string
//! references: the value is `null` and the claim is not set).
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Claims no rule (and no token hook) may set, rename or drop: the token's protocol claims and
/// fedgate's tenant and overage markers.
pub const PROTECTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "org_id",
    "client_id",
    "nonce",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "sid",
    "typ",
    "scope",
    "cnf",
    "_claim_names",
    "_claim_sources",
];

/// Most rules in one rule set (tenant or client).
pub const MAX_RULES: usize = 50;
/// Largest rule set, as JSON.
pub const MAX_RULES_BYTES: usize = 16 * 1024;
/// Longest claim name.
pub const MAX_CLAIM_NAME: usize = 128;
/// Most entries in one `map_groups` map.
pub const MAX_MAP_ENTRIES: usize = 200;
/// Most nesting of a `set` value.
const MAX_DEPTH: usize = 5;

/// A tenant's or client's rule set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Applied in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule: exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Sets `claim` to the app roles the person's groups map to (every group of the person,
    /// also past the token's 200-group overage). De-duplicated, in first-seen order; an empty
    /// list when no group maps, unless `skip_empty`.
    MapGroups(MapGroups),
    /// Renames a claim (nothing happens when the token has no `from`).
    Rename(Rename),
    /// Sets a claim to a JSON value (strings may hold `{{claim}}` templates).
    Set(SetClaim),
    /// Removes a claim.
    Drop(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapGroups {
    pub claim: String,
    /// Group name -> role names.
    pub map: BTreeMap<String, Vec<String>>,
    /// Leave the claim unset when no group maps.
    #[serde(default)]
    pub skip_empty: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClaim {
    pub claim: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// Why a rule set was refused: the rule's index (None: the whole set) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub rule_index: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule_index {
            Some(i) => write!(f, "rule {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn err(i: Option<usize>, m: impl Into<String>) -> RuleError {
    RuleError { rule_index: i, message: m.into() }
}

pub fn is_protected(name: &str) -> bool {
    PROTECTED.contains(&name)
}

/// A claim name a rule or hook may write: 1 to 128 printable ASCII characters without spaces,
/// quotes or backslashes (URLs such as `https://aws.amazon.com/tags` are fine), not protected.
pub fn check_claim_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CLAIM_NAME {
        return Err(format!("claim names are 1 to {MAX_CLAIM_NAME} characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
        return Err(format!("claim name {name:?}: printable ASCII only, no spaces, quotes or backslashes"));
    }
    if is_protected(name) {
        return Err(format!("{name:?} is a protected claim: rules may not set, rename or drop it"));
    }
    Ok(())
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses and validates a rule set (unknown fields, bounds, protected and malformed names,
/// templates): the admin API calls this on save and on preview.
pub fn parse(v: &Value) -> Result<RuleSet, RuleError> {
    let size = serde_json::to_string(v).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > MAX_RULES_BYTES {
        return Err(err(None, format!("a rule set is at most {MAX_RULES_BYTES} bytes of JSON ({size})")));
    }
    // Rule by rule, so an error names its rule.
    let Some(obj) = v.as_object() else { return Err(err(None, "a rule set is an object {\"rules\": [...]}")) };
    if let Some(k) = obj.keys().find(|k| *k != "rules") {
        return Err(err(None, format!("unknown field {k:?} (expected \"rules\")")));
    }
    let raw = match obj.get("rules") {
        None | Some(Value::Null) => return Ok(RuleSet::default()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(err(None, "\"rules\" is a list")),
    };
    if raw.len() > MAX_RULES {
        return Err(err(None, format!("at most {MAX_RULES} rules ({})", raw.len())));
    }
    let mut rules = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let rule: Rule = serde_json::from_value(r.clone()).map_err(|e| err(Some(i), e.to_string()))?;
        validate_rule(&rule).map_err(|m| err(Some(i), m))?;
        rules.push(rule);
    }
    Ok(RuleSet { rules })
}

fn validate_rule(r: &Rule) -> Result<(), String> {
    match r {
        Rule::MapGroups(m) => {
            check_claim_name(&m.claim)?;
            if m.map.len() > MAX_MAP_ENTRIES {
                return Err(format!("map_groups: at most {MAX_MAP_ENTRIES} groups"));
            }
            for (g, roles) in &m.map {
                if g.is_empty() || g.len() > 256 {
                    return Err("map_groups: group names are 1 to 256 characters".into());
                }
                if roles.len() > 50 || roles.iter().any(|r| r.is_empty() || r.len() > 256) {
                    return Err(format!("map_groups: {g:?} maps to 1 to 50 role names of 1 to 256 characters"));
                }
            }
        }
        Rule::Rename(rn) => {
            check_claim_name(&rn.from)?;
            check_claim_name(&rn.to)?;
            if rn.from == rn.to {
                return Err("rename: from and to are the same claim".into());
            }
        }
        Rule::Set(s) => {
            check_claim_name(&s.claim)?;
            if s.value.is_null() {
                return Err("set: the value is null (use drop to remove a claim)".into());
            }
            if depth(&s.value) > MAX_DEPTH {
                return Err(format!("set: the value nests deeper than {MAX_DEPTH} levels"));
            }
            check_templates(&s.value)?;
        }
        Rule::Drop(name) => check_claim_name(name)?,
    }
    Ok(())
}

/// The `{{name}}` references in a string, or an error for a malformed one.
fn references(s: &str) -> Result<Vec<(usize, usize, &str)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = s[at..].find("{{") {
        let start = at + open;
        let Some(close) = s[start + 2..].find("}}") else {
            return Err(format!("template {s:?}: \"{{{{\" without \"}}}}\""));
        };
        let end = start + 2 + close + 2;
        let name = s[start + 2..end - 2].trim();
        if name.is_empty() || name.len() > MAX_CLAIM_NAME || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("template {s:?}: a reference is {{{{claim_name}}}}"));
        }
        out.push((start, end, name));
        at = end;
    }
    Ok(out)
}

fn check_templates(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => references(s).map(|_| ()),
        Value::Array(a) => a.iter().try_for_each(check_templates),
        Value::Object(o) => o.values().try_for_each(check_templates),
        _ => Ok(()),
    }
}

fn render(v: &Value, ctx: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let refs = references(s).unwrap_or_default();
            match refs.as_slice() {
                [] => v.clone(),
                [(0, end, name)] if *end == s.len() => ctx.get(*name).cloned().unwrap_or(Value::Null),
                _ => {
                    let mut out = String::new();
                    let mut at = 0;
                    for (start, end, name) in refs {
                        out.push_str(&s[at..start]);
                        match ctx.get(name) {
                            Some(Value::String(x)) => out.push_str(x),
                            Some(x @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&x.to_string()),
                            _ => {}
                        }
                        at = end;
                    }
                    out.push_str(&s[at..]);
                    Value::String(out)
                }
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render(x, ctx)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), render(x, ctx))).collect()),
        _ => v.clone(),
    }
}

/// What the rules did, for the login trace (counts, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Rules evaluated.
    pub rules: usize,
    /// Claims the rules wrote (set, mapped, renamed to), in order; these go in the access
    /// token too.
    pub written: Vec<String>,
    /// Claims the rules removed (dropped, renamed from).
    pub removed: Vec<String>,
}

/// Applies rule sets in order (the tenant's, then the client's) to `claims`. `groups` is every
/// group of the person (for `map_groups`, also past the token's overage). Templates read the
/// claims as they were before the first rule. Protected claims are never touched (validation
/// refuses such rules; this is a second fence).
pub fn apply(sets: &[&RuleSet], claims: &mut Map<String, Value>, groups: &[String]) -> Applied {
    let ctx = claims.clone();
    let mut applied = Applied::default();
    let wrote = |a: &mut Applied, k: &str| {
        a.removed.retain(|x| x != k);
        if !a.written.iter().any(|x| x == k) {
            a.written.push(k.to_string());
        }
    };
    for set in sets {
        for rule in &set.rules {
            applied.rules += 1;
            match rule {
                Rule::MapGroups(m) if !is_protected(&m.claim) => {
                    let roles = super::roles_for(groups, &m.map);
                    if roles.is_empty() && m.skip_empty {
                        continue;
                    }
                    claims.insert(m.claim.clone(), roles.into());
                    wrote(&mut applied, &m.claim);
                }
                Rule::Rename(r) if !is_protected(&r.from) && !is_protected(&r.to) => {
                    if let Some(v) = claims.remove(&r.from) {
                        claims.insert(r.to.clone(), v);
                        applied.written.retain(|x| x != &r.from);
                        applied.removed.push(r.from.clone());
                        wrote(&mut applied, &r.to);
                    }
                }
                Rule::Set(s) if !is_protected(&s.claim) => {
                    let v = render(&s.value, &ctx);
                    if v.is_null() {
                        continue;
                    }
                    claims.insert(s.claim.clone(), v);
                    wrote(&mut applied, &s.claim);
                }
                Rule::Drop(name) if !is_protected(name) && claims.remove(name).is_some() => {
                    applied.written.retain(|x| x != name);
                    applied.removed.push(name.clone());
                }
                _ => {}
            }
        }
    }
    applied
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({"iss": "https://i", "sub": "usr_1", "org_id": "org_1", "name": "Alice", "email": "a@x.com",
               "groups": ["Engineering", "Admins"]})
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn the_example_rule_set() {
        let set = parse(&json!({"rules": [
            {"map_groups": {"claim": "roles", "map": {"Engineering": ["editor"], "Admins": ["admin", "editor"]}}},
            {"rename": {"from": "name", "to": "full_name"}},
            {"set": {"claim": "plan", "value": "enterprise"}},
            {"drop": "groups"}
        ]}))
        .unwrap();
        let mut c = claims();
        let groups = vec!["Engineering".to_string(), "Admins".to_string()];
        let a = apply(&[&set], &mut c, &groups);
        assert_eq!(c["roles"], json!(["editor", "admin"]));
        assert_eq!(c["full_name"], json!("Alice"));
        assert!(!c.contains_key("name") && !c.contains_key("groups"));
        assert_eq!(c["plan"], json!("enterprise"));
        assert_eq!(a.rules, 4);
        assert_eq!(a.written, vec!["roles", "full_name", "plan"]);
        assert_eq!(a.removed, vec!["name", "groups"]);
    }

    #[test]
    fn templates_keep_types_or_interpolate() {
        let set = parse(&json!({"rules": [
            {"set": {"claim": "https://aws.amazon.com/tags",
                     "value": {"principal_tags": {"org_id": ["{{org_id}}"]}, "transitive_tag_keys": ["org_id"]}}},
            {"set": {"claim": "all_groups", "value": "{{ groups }}"}},
            {"set": {"claim": "label", "value": "{{org_id}}/{{sub}}{{missing}}"}},
            {"set": {"claim": "absent", "value": "{{missing}}"}}
        ]}))
        .unwrap();
        let mut c = claims();
        apply(&[&set], &mut c, &[]);
        assert_eq!(
            c["https://aws.amazon.com/tags"],
            json!({"principal_tags": {"org_id": ["org_1"]}, "transitive_tag_keys": ["org_id"]})
        );
        assert_eq!(c["all_groups"], json!(["Engineering", "Admins"]));
        assert_eq!(c["label"], json!("org_1/usr_1"));
        assert!(!c.contains_key("absent"));
    }

    #[test]
    fn protected_claims_and_bad_rules_are_refused_with_their_index() {
        for (rule, needle) in [
            (json!({"set": {"claim": "sub", "value": "x"}}), "protected"),
            (json!({"rename": {"from": "org_id", "to": "tenant"}}), "protected"),
            (json!({"rename": {"from": "email", "to": "aud"}}), "protected"),
            (json!({"drop": "amr"}), "protected"),
            (json!({"map_groups": {"claim": "scope", "map": {}}}), "protected"),
            (json!({"set": {"claim": "has space", "value": 1}}), "printable"),
            (json!({"set": {"claim": "", "value": 1}}), "1 to"),
            (json!({"set": {"claim": "x", "value": null}}), "null"),
            (json!({"set": {"claim": "x", "value": "{{oops"}}), "without"),
            (json!({"set": {"claim": "x", "value": [[[[[[1]]]]]]}}), "deeper"),
            (json!({"set": {"claim": "x", "value": 1, "extra": true}}), "unknown field"),
            (json!({"exec": "rm -rf /"}), "unknown variant"),
            (json!({"drop": "a", "set": {"claim": "b", "value": 1}}), ""),
        ] {
            let e = parse(&json!({"rules": [{"drop": "groups"}, rule]})).unwrap_err();
            assert_eq!(e.rule_index, Some(1), "{e}");
            assert!(e.message.contains(needle), "{e} should say {needle}");
        }
        let e = parse(&json!({"rules": [], "more": 1})).unwrap_err();
        assert_eq!(e.rule_index, None);
        let many: Vec<Value> = (0..=MAX_RULES).map(|i| json!({"drop": format!("c{i}")})).collect();
        assert!(parse(&json!({ "rules": many })).unwrap_err().message.contains("at most"));
        assert_eq!(parse(&json!({})).unwrap(), RuleSet::default());
    }

    #[test]
    fn tenant_rules_run_before_client_rules() {
        let tenant = parse(&json!({"rules": [{"set": {"claim": "plan", "value": "pro"}}]})).unwrap();
        let client = parse(&json!({"rules": [{"rename": {"from": "plan", "to": "tier"}}]})).unwrap();
        let mut c = claims();
        let a = apply(&[&tenant, &client], &mut c, &[]);
        assert_eq!(c["tier"], json!("pro"));
        assert!(!c.contains_key("plan"));
        assert_eq!(a.written, vec!["tier"]);
        assert_eq!(a.rules, 2);
    }

    #[test]
    fn a_rule_set_survives_a_round_trip() {
        let v = json!({"rules": [{"map_groups": {"claim": "roles", "map": {"a": ["b"]}, "skip_empty": true}},
                                  {"drop": "groups"}]});
        let set = parse(&v).unwrap();
        assert_eq!(serde_json::to_value(&set).unwrap(), v);
    }
}
