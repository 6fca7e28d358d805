//! The token hook call: a signed HTTPS POST (Standard Webhooks headers, as for events) to the
//! tenant's endpoint before tokens are issued, within the tenant's time budget. What fedgate
//! accepts from the answer is decided in `claims::hook`.
use crate::claims::hook::{accept, Refused, StoredHook};
use crate::http::AppState;
use crate::traces::Step;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The event type in the hook's body.
pub const EVENT_TYPE: &str = "token.issuing";

/// A hook call's result: the claims to add (empty on failure), its trace step, and the failure.
pub struct Called {
    pub claims: Map<String, Value>,
    pub step: Step,
    pub failure: Option<Refused>,
}

/// The AAD binding a tenant's sealed hook secret to its tenant.
pub fn secret_aad(tenant_id: &str) -> String {
    format!("token_hook:{tenant_id}")
}

/// Calls the hook with `data` (grant type, tenant, client, user, connection, the claims about to
/// be issued). Never fails itself: every failure is in [`Called::failure`].
pub async fn call(st: &AppState, tenant_id: &str, hook: &StoredHook, data: Value) -> Called {
    let now_ms = st.clock.now_ms();
    let msg_id = format!("msg_{}", crate::ids::sortable(now_ms, &*st.rng));
    let ts = now_ms / 1000;
    let body = json!({ "type": EVENT_TYPE, "timestamp": crate::util::rfc3339(ts), "data": data }).to_string();
    let started = Instant::now();
    let failed = |cause: String, fix: &'static str| (None::<(u16, String)>, Some(Refused { cause, fix }));
    let secret = st.master.open(&hook.secret_enc, &secret_aad(tenant_id)).ok().and_then(|s| String::from_utf8(s).ok());
    let (answer, mut failure) = match secret
        .as_deref()
        .and_then(|s| crate::events::webhooks::sign(s, &msg_id, ts, &body))
    {
        None => failed(
            "the hook's signing secret cannot be opened (master key changed?)".into(),
            "Set the hook again with PUT /admin/v1/tenants/{tenant}/token-hook and \"rotate_secret\": true.",
        ),
        Some(sig) => {
            let headers =
                [("webhook-id", msg_id.clone()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)];
            let budget = Duration::from_millis(hook.timeout_ms);
            match tokio::time::timeout(budget, st.outbound.post(&hook.url, "application/json", &headers, body)).await {
                Err(_) => failed(
                    format!("the hook did not answer within its time budget of {} ms", hook.timeout_ms),
                    "Make the hook endpoint answer faster (it runs while the person waits), or raise timeout_ms (at most 5000).",
                ),
                Ok(Err(e)) => failed(
                    format!("the hook could not be reached: {e}"),
                    "Check the hook URL and that the endpoint is up and reachable from fedgate.",
                ),
                Ok(Ok(r)) => (Some(r), None),
            }
        }
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let status = answer.as_ref().map(|(s, _)| *s);
    let mut claims = Map::new();
    if let Some((s, text)) = &answer {
        match accept(&hook.namespace, *s, text) {
            Ok(c) => claims = c,
            Err(r) => failure = Some(r),
        }
    }
    let mut detail = json!({
        "webhook_id": msg_id,
        "url": hook.url,
        "status": status,
        "duration_ms": duration_ms,
        "timeout_ms": hook.timeout_ms,
        "on_failure": hook.on_failure.as_str(),
    });
    match &failure {
        Some(f) => {
            detail["outcome"] = "failed".into();
            detail["cause"] = f.cause.clone().into();
            detail["fix"] = f.fix.into();
            claims.clear();
        }
        None => {
            detail["outcome"] = "ok".into();
            // Claim names only, never values.
            detail["claims_added"] = claims.keys().cloned().collect::<Vec<_>>().into();
        }
    }
    Called { claims, step: Step { step: "token_hook".into(), at_ms: st.clock.now_ms(), duration_ms, detail }, failure }
}
