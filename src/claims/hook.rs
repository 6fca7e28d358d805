//! The token hook's rules, pure: its configuration, and what fedgate accepts from the app's
//! answer (claims inside the namespace the app owns, bounded). The HTTPS call itself is made by
//! the issuer (`issuer::hook`).
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Time budget when none is configured, and the most a tenant may configure (milliseconds).
pub const DEFAULT_TIMEOUT_MS: u64 = 1500;
pub const MAX_TIMEOUT_MS: u64 = 5000;
pub const MIN_TIMEOUT_MS: u64 = 100;
/// Largest answer fedgate reads (bytes); a longer one is a failure.
pub const MAX_RESPONSE_BYTES: usize = 4000;
/// Most claims an answer may add.
pub const MAX_CLAIMS: usize = 20;

/// What happens when the hook fails (timeout, unreachable, non-2xx, bad JSON, a claim outside
/// the namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The token request fails (`access_denied`); the grant just opened is revoked.
    #[default]
    Deny,
    /// The tokens are issued without the hook's claims.
    Continue,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Deny => "deny",
            OnFailure::Continue => "continue",
        }
    }
}

/// A tenant's hook as stored (the secret sealed with the master key, AAD `token_hook:<tenant>`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHook {
    pub url: String,
    pub secret_enc: String,
    pub timeout_ms: u64,
    pub on_failure: OnFailure,
    pub namespace: String,
}

impl std::fmt::Debug for StoredHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredHook")
            .field("url", &self.url)
            .field("secret_enc", &"[redacted]")
            .field("timeout_ms", &self.timeout_ms)
            .field("on_failure", &self.on_failure)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Checks a time budget (None: the default).
pub fn check_timeout(ms: Option<u64>) -> Result<u64, String> {
    let ms = ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(format!("timeout_ms is {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}"));
    }
    Ok(ms)
}

/// Checks a namespace: an `https://` URL ending in `/` (`https://app.example.com/`) or a claim
/// prefix of 3 to 64 characters ending in `_`, `:`, `/` or `.` (`acme_`), that no protected
/// claim starts with.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    let ends_ok = ns.ends_with(['_', ':', '/', '.']);
    if ns.len() < 3 || ns.len() > 64 || !ends_ok || !ns.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return Err("a namespace is an https URL ending in \"/\" or a prefix of 3 to 64 characters ending in \"_\", \":\", \"/\" or \".\"".into());
    }
    if ns.contains("://") && !ns.starts_with("https://") {
        return Err("a URL namespace starts with https://".into());
    }
    if super::rules::PROTECTED.iter().any(|p| p.starts_with(ns)) || ns.starts_with('_') {
        return Err(format!("{ns:?} would reach fedgate's own claims"));
    }
    Ok(())
}

/// Why an answer was not used: (short cause for the trace, the fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub cause: String,
    pub fix: &'static str,
}

fn refused(cause: impl Into<String>, fix: &'static str) -> Refused {
    Refused { cause: cause.into(), fix }
}

/// The claims of a 2xx answer: `{"claims": {...}}` (or `{}`: nothing to add), every name inside
/// `namespace`, a valid claim name, at most [`MAX_CLAIMS`], the body at most
/// [`MAX_RESPONSE_BYTES`].
pub fn accept(namespace: &str, status: u16, body: &str) -> Result<Map<String, Value>, Refused> {
    if !(200..300).contains(&status) {
        return Err(refused(
            format!("the hook answered HTTP {status}"),
            "Make the hook endpoint answer 200 with {\"claims\": {...}}; check its logs for this request's webhook-id.",
        ));
    }
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(refused(
            format!("the answer is longer than {MAX_RESPONSE_BYTES} bytes"),
            "Return fewer or smaller claims: tokens stay small (see docs/tokens.md#size-budget).",
        ));
    }
    if body.trim().is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_str(body).map_err(|e| {
        refused(format!("the answer is not JSON ({e})"), "Answer with a JSON object {\"claims\": {...}}.")
    })?;
    let Some(obj) = v.as_object() else {
        return Err(refused("the answer is not a JSON object", "Answer with a JSON object {\"claims\": {...}}."));
    };
    let claims = match obj.get("claims") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(refused(
                "\"claims\" is not an object",
                "Answer with {\"claims\": {\"<namespace>name\": value}}.",
            ))
        }
    };
    if claims.len() > MAX_CLAIMS {
        return Err(refused(format!("more than {MAX_CLAIMS} claims"), "Return at most 20 claims."));
    }
    for k in claims.keys() {
        if !k.starts_with(namespace) || k.len() == namespace.len() {
            return Err(refused(
                format!("claim {k:?} is outside the hook's namespace {namespace:?}"),
                "The hook may only add claims whose names start with the tenant's token hook namespace; rename the claim, or change the namespace with PUT /admin/v1/tenants/{tenant}/token-hook.",
            ));
        }
        if let Err(e) = super::rules::check_claim_name(k) {
            return Err(refused(e, "Use printable ASCII claim names without spaces."));
        }
    }
    Ok(claims)
}

/// The size budget of a token's payload (bytes of JSON).
pub const TOKEN_BUDGET_BYTES: usize = 8 * 1024;

/// What [`fit`] had to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trim {
    /// The hook's claims were left out.
    HookClaims,
    /// `groups` was replaced by the overage marker (`_claim_names` / `_claim_sources`).
    GroupsOverage,
    /// The claims the rules wrote were left out.
    RuleClaims,
}

fn size(m: &Map<String, Value>) -> usize {
    serde_json::to_string(m).map(|s| s.len()).unwrap_or(usize::MAX)
}

/// Keeps a token's payload within `budget` bytes: past it, first the hook's claims go, then
/// `groups` becomes the overage marker (`overage` adds it), then the rules' claims go. What is
/// left (fedgate's own claims, each bounded) always fits in 8 KiB.
pub fn fit(
    claims: &mut Map<String, Value>,
    budget: usize,
    hook_claims: &[String],
    rule_claims: &[String],
    overage: impl FnOnce(&mut Map<String, Value>),
) -> Vec<Trim> {
    let mut done = Vec::new();
    if size(claims) <= budget {
        return done;
    }
    if hook_claims.iter().any(|k| claims.contains_key(k)) {
        for k in hook_claims {
            claims.remove(k);
        }
        done.push(Trim::HookClaims);
        if size(claims) <= budget {
            return done;
        }
    }
    if claims.remove("groups").is_some() {
        overage(claims);
        done.push(Trim::GroupsOverage);
        if size(claims) <= budget {
            return done;
        }
    }
    if rule_claims.iter().any(|k| claims.contains_key(k)) {
        for k in rule_claims {
            claims.remove(k);
        }
        done.push(Trim::RuleClaims);
    }
    done
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces() {
        for ok in ["https://app.example.com/", "acme_", "app:", "x.y."] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ab", "acme", "http://app.example.com/", "a b_", "_x_", "or", "org_", "sco"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers() {
        let ns = "https://app.example.com/";
        let ok = accept(ns, 200, r#"{"claims": {"https://app.example.com/plan": "pro"}}"#).unwrap();
        assert_eq!(ok["https://app.example.com/plan"], json!("pro"));
        assert!(accept(ns, 204, "").unwrap().is_empty());
        assert!(accept(ns, 200, "{}").unwrap().is_empty());
        assert!(accept(ns, 500, "{}").unwrap_err().cause.contains("HTTP 500"));
        assert!(accept(ns, 200, "nope").unwrap_err().cause.contains("not JSON"));
        assert!(accept(ns, 200, r#"{"claims": {"sub": "x"}}"#).unwrap_err().cause.contains("outside"));
        assert!(accept(ns, 200, r#"{"claims": {"https://app.example.com/": 1}}"#).is_err());
        assert!(accept(ns, 200, &format!(r#"{{"claims": {{"{ns}x": "{}"}}}}"#, "a".repeat(5000))).is_err());
        assert!(check_timeout(None).unwrap() == 1500 && check_timeout(Some(5001)).is_err());
    }

    #[test]
    fn the_budget_trims_in_order() {
        let mk = || {
            json!({"sub": "s", "groups": ["g".repeat(3000)], "app_x": "h".repeat(3000), "plan": "r".repeat(3000)})
                .as_object()
                .cloned()
                .unwrap()
        };
        let hook = vec!["app_x".to_string()];
        let rules = vec!["plan".to_string()];
        let mark = |m: &mut Map<String, Value>| {
            m.insert("_claim_names".into(), json!({"groups": "src1"}));
        };
        let mut c = mk();
        assert_eq!(fit(&mut c, 8192, &hook, &rules, mark), vec![Trim::HookClaims]);
        assert!(c.contains_key("groups") && c.contains_key("plan"));
        let mut c = mk();
        assert_eq!(fit(&mut c, 4000, &hook, &rules, mark), vec![Trim::HookClaims, Trim::GroupsOverage]);
        assert!(c.contains_key("_claim_names") && c.contains_key("plan"));
        let mut c = mk();
        assert_eq!(
            fit(&mut c, 1000, &hook, &rules, mark),
            vec![Trim::HookClaims, Trim::GroupsOverage, Trim::RuleClaims]
        );
        let mut c = mk();
        assert!(fit(&mut c, 100_000, &hook, &rules, mark).is_empty());
    }
}
