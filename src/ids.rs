//! Newtypes for every identifier. `parse` is the only way to build one from outside input;
//! `new` generates a fresh one.
//!
//! Ids are a short prefix plus 26 Crockford base32 characters (128 bits). Resource ids (tenants,
//! clients, connections, users) are sortable: 48 bits of milliseconds then 80 random bits, so
//! listing by id lists by creation. Secret-bearing or correlation ids (logins, sessions, grants)
//! are 128 random bits.
use crate::clock::Rng;
use std::fmt;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Encodes 128 bits as 26 lowercase Crockford base32 characters.
fn encode128(v: u128) -> String {
    let mut out = [0u8; 26];
    let mut n = v;
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(n & 31) as usize];
        n >>= 5;
    }
    out.iter().map(|b| *b as char).collect()
}

fn valid_body(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| CROCKFORD.contains(&b)) && s.as_bytes()[0] <= b'7'
}

/// A sortable 128-bit value: 48 bits of Unix milliseconds then 80 random bits.
pub fn sortable(now_ms: i64, rng: &dyn Rng) -> String {
    let mut r = [0u8; 10];
    rng.fill(&mut r);
    let mut v: u128 = (now_ms.max(0) as u128 & 0xffff_ffff_ffff) << 80;
    for (i, b) in r.iter().enumerate() {
        v |= (*b as u128) << (8 * (9 - i));
    }
    encode128(v)
}

/// 128 random bits.
pub fn random128(rng: &dyn Rng) -> String {
    let mut r = [0u8; 16];
    rng.fill(&mut r);
    encode128(u128::from_be_bytes(r))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

macro_rules! define_id {
    ($name:ident, $prefix:literal, $gen:ident) => {
        /// Stored as its text in the database (a typed column of the store's rows).
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, sea_orm::DeriveValueType)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix(concat!($prefix, "_")) {
                    Some(body) if valid_body(body) => Ok(Self(s.to_owned())),
                    _ => Err(IdError { kind: $prefix }),
                }
            }
            /// Trusted constructor for values read back from our own database.
            pub fn from_db(s: String) -> Self {
                Self(s)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }
        define_id!(@gen $name, $prefix, $gen);
    };
    (@gen $name:ident, $prefix:literal, sortable) => {
        impl $name {
            pub fn new(now_ms: i64, rng: &dyn Rng) -> Self {
                Self(format!("{}_{}", $prefix, sortable(now_ms, rng)))
            }
        }
    };
    (@gen $name:ident, $prefix:literal, random) => {
        impl $name {
            pub fn new(rng: &dyn Rng) -> Self {
                Self(format!("{}_{}", $prefix, random128(rng)))
            }
        }
    };
}

define_id!(TenantId, "org", sortable);
define_id!(ConnectionId, "conn", sortable);
define_id!(ClientId, "cli", sortable);
define_id!(UserId, "usr", sortable);
define_id!(IdentityId, "idn", sortable);
define_id!(AdminKeyId, "adk", sortable);
define_id!(ScimGroupId, "grp", sortable);
define_id!(ScimTokenId, "sct", sortable);
define_id!(ScimRequestId, "scr", sortable);
define_id!(SetupLinkId, "stl", sortable);
define_id!(LoginId, "lgn", random);
define_id!(SessionId, "ses", random);
define_id!(GrantId, "grt", random);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::clock::SystemRng;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let rng = SystemRng;
        let a = TenantId::new(1_700_000_000_000, &rng);
        let b = TenantId::new(1_700_000_000_001, &rng);
        assert!(a < b);
        assert_eq!(TenantId::parse(a.as_str()).unwrap(), a);
        assert!(ConnectionId::parse(a.as_str()).is_err());
        let l = LoginId::new(&rng);
        assert_eq!(l.as_str().len(), 4 + 26);
        assert!(LoginId::parse(l.as_str()).is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = TenantId::parse(&s);
            let _ = LoginId::parse(&s);
        }
        #[test]
        fn encode_roundtrip_is_valid(v in any::<u128>()) {
            prop_assert!(valid_body(&encode128(v)));
        }
    }
}
