//! Signing keys (rotation, JWKS) and secrets at rest.
pub mod ring;
pub mod secrets;
pub mod signing;

pub use ring::{KeyError, KeyRing, RotationReport};
pub use secrets::{constant_time_eq, new_token, sha256_b64url, sha256_hex, verify_hashed, MasterKey};
pub use signing::{Alg, PublicKey, SigningKey, UnverifiedJws};
