//! The replay cache (`saml_assertions`): a use-once key per connection, kept until it could no
//! longer be accepted. The unique key makes a second use fail on every instance. Client
//! assertions (`private_key_jwt`) use it too, in the namespace `client_assertion:<client_id>`
//! (their `jti`s, kept until the assertion's `exp`).
use super::entities::saml_assertion;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

/// Records `key` for `connection_id`. `Ok(false)`: it was already used.
pub async fn consume(
    db: &impl ConnectionTrait,
    connection_id: &str,
    key: &str,
    until: i64,
    now: i64,
) -> Result<bool, DbErr> {
    let r = entry(connection_id, key, until, now).insert(db).await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The replay cache's row for `key`.
pub(super) fn entry(connection_id: &str, key: &str, until: i64, now: i64) -> saml_assertion::ActiveModel {
    saml_assertion::ActiveModel {
        connection_id: Set(connection_id.to_string()),
        assertion_id: Set(key.to_string()),
        expires_at: Set(until),
        consumed_at: Set(now),
    }
}
