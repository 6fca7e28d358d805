//! Webhook endpoints and the Standard Webhooks signature
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `id.timestamp.body`, secret `whsec_<base64>`).
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const SECRET_PREFIX: &str = "whsec_";

pub use crate::store::webhooks::type_matches;

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret(rng: &dyn crate::clock::Rng) -> String {
    let mut raw = [0u8; 32];
    rng.fill(&mut raw);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(raw))
}

/// `v1,<signature>` for the given message id, timestamp and body.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }
    #[test]
    fn type_filters() {
        assert!(type_matches(&[], "user.created"));
        assert!(type_matches(&["user.*".into()], "user.created"));
        assert!(!type_matches(&["user.*".into()], "group.created"));
        assert!(!type_matches(&["user.created".into()], "user.deleted"));
    }
}
