//! JWS signing and verification (compact serialization) with ES256, EdDSA (Ed25519) and RS256,
//! through aws-lc. Parsed keys live in memory; only PKCS#8 bytes are ever persisted (encrypted).
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::EdDSA, Alg::RS256];
    pub fn as_str(&self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
        }
    }
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key is malformed")]
    BadKey,
    #[error("signing failed")]
    Sign,
}

enum Inner {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// A private signing key with its id. `Debug` shows only the kid and alg.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    inner: Inner,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, {})", self.kid, self.alg.as_str())
    }
}

/// A public key in JWK form plus what is needed to verify with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKey {
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &Option<String>) -> Option<Vec<u8>> {
    s.as_ref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
}

impl SigningKey {
    /// Generates a fresh key; returns it and its PKCS#8 DER encoding (to be encrypted at rest).
    pub fn generate(alg: Alg, kid: String) -> Result<(Self, Vec<u8>), SigningError> {
        let pkcs8 = match alg {
            Alg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| SigningError::Generate)?
                .as_ref()
                .to_vec(),
            Alg::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| SigningError::Generate)?
                .as_ref()
                .to_vec(),
            Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| SigningError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(alg, kid, &pkcs8)?;
        Ok((key, pkcs8))
    }

    pub fn from_pkcs8(alg: Alg, kid: String, pkcs8: &[u8]) -> Result<Self, SigningError> {
        let (inner, mut public) = match alg {
            Alg::ES256 => {
                let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| SigningError::BadKey)?;
                let point = k.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(SigningError::BadKey);
                }
                let public = PublicKey {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64(&point[1..33])),
                    y: Some(b64(&point[33..65])),
                    n: None,
                    e: None,
                    kid: String::new(),
                    alg: String::new(),
                    use_: String::new(),
                };
                (Inner::Es256(k), public)
            }
            Alg::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::BadKey)?;
                let public = PublicKey {
                    kty: "OKP".into(),
                    crv: Some("Ed25519".into()),
                    x: Some(b64(k.public_key().as_ref())),
                    y: None,
                    n: None,
                    e: None,
                    kid: String::new(),
                    alg: String::new(),
                    use_: String::new(),
                };
                (Inner::EdDsa(k), public)
            }
            Alg::RS256 => {
                let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::BadKey)?;
                let pk = k.public_key();
                let public = PublicKey {
                    kty: "RSA".into(),
                    crv: None,
                    x: None,
                    y: None,
                    n: Some(b64(pk.modulus().big_endian_without_leading_zero())),
                    e: Some(b64(pk.exponent().big_endian_without_leading_zero())),
                    kid: String::new(),
                    alg: String::new(),
                    use_: String::new(),
                };
                (Inner::Rs256(k), public)
            }
        };
        public.kid = kid.clone();
        public.alg = alg.as_str().into();
        public.use_ = "sig".into();
        Ok(Self { kid, alg, inner, public })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Es256(k) => k.sign(&rng, msg).map(|s| s.as_ref().to_vec()).map_err(|_| SigningError::Sign),
            Inner::EdDsa(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Inner::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig).map_err(|_| SigningError::Sign)?;
                Ok(sig)
            }
        }
    }

    /// Signs `claims` as a compact JWS with header `{alg, kid, typ}`.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SigningError> {
        let header = serde_json::json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": typ});
        let h = b64(&serde_json::to_vec(&header).map_err(|_| SigningError::Sign)?);
        let p = b64(&serde_json::to_vec(claims).map_err(|_| SigningError::Sign)?);
        let input = format!("{h}.{p}");
        let sig = self.sign_bytes(input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

impl PublicKey {
    /// Verifies a signature made with this key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self.alg.as_str() {
            "ES256" => {
                let (Some(x), Some(y)) = (unb64(&self.x), unb64(&self.y)) else {
                    return false;
                };
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig).is_ok()
            }
            // "Ed25519" is the fully-specified name of EdDSA with Ed25519 (RFC 9864); clients
            // may sign assertions with it.
            "EdDSA" | "Ed25519" => {
                let Some(x) = unb64(&self.x) else {
                    return false;
                };
                UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).is_ok()
            }
            "RS256" => {
                let (Some(n), Some(e)) = (unb64(&self.n), unb64(&self.e)) else {
                    return false;
                };
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                    .is_ok()
            }
            // Verification only (client assertions, RFC 7523): fedgate never signs with PS256.
            "PS256" => {
                let (Some(n), Some(e)) = (unb64(&self.n), unb64(&self.e)) else {
                    return false;
                };
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(&signature::RSA_PSS_2048_8192_SHA256, msg, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// A compact JWS split into its parts, NOT yet verified.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    pub header: JwsHeader,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

#[derive(Debug, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

impl<'a> UnverifiedJws<'a> {
    pub fn parse(token: &'a str) -> Option<Self> {
        if token.len() > 16 * 1024 {
            return None;
        }
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: JwsHeader = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        Some(Self { header, signing_input, payload_b64: p, signature })
    }

    /// The payload, NOT verified (to learn who claims to have signed it before finding the key).
    pub fn unverified_claims(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(self.payload_b64).ok()?).ok()
    }

    /// Verifies with `key` (whose alg must equal the header's) and returns the payload.
    pub fn verify(&self, key: &PublicKey) -> Option<serde_json::Value> {
        if key.alg != self.header.alg || !key.verify(self.signing_input.as_bytes(), &self.signature) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(self.payload_b64).ok()?).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_every_alg_and_reload_from_pkcs8() {
        for alg in Alg::ALL {
            let (k, der) = SigningKey::generate(alg, format!("k-{}", alg.as_str())).unwrap();
            let jwt = k.sign_jwt("JWT", &serde_json::json!({"sub": "x"})).unwrap();
            let parsed = UnverifiedJws::parse(&jwt).unwrap();
            assert_eq!(parsed.header.alg, alg.as_str());
            assert_eq!(parsed.verify(k.public()).unwrap()["sub"], "x");
            let k2 = SigningKey::from_pkcs8(alg, k.kid.clone(), &der).unwrap();
            assert_eq!(k2.public(), k.public());
            // Tampered payload fails.
            let mut bad = jwt.clone();
            bad.insert(jwt.find('.').unwrap() + 2, 'A');
            if let Some(p) = UnverifiedJws::parse(&bad) {
                assert!(p.verify(k.public()).is_none());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn jws_parse_never_panics(s in ".{0,300}") {
            let _ = UnverifiedJws::parse(&s);
        }
        #[test]
        fn jws_parse_of_dotted_base64_never_panics(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}") {
            let _ = UnverifiedJws::parse(&format!("{a}.{b}.{c}"));
        }
    }

    #[test]
    fn alg_none_and_hmac_are_never_accepted() {
        let (es, _) = SigningKey::generate(Alg::ES256, "a".into()).unwrap();
        let good = es.sign_jwt("JWT", &serde_json::json!({"sub": "x"})).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        for alg in ["none", "HS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!("{{\"alg\":\"{alg}\",\"kid\":\"a\"}}"));
            for sig in ["", parts[2]] {
                let forged = format!("{h}.{}.{sig}", parts[1]);
                let p = UnverifiedJws::parse(&forged).unwrap();
                assert!(p.verify(es.public()).is_none(), "{alg} accepted");
            }
        }
    }

    #[test]
    fn alg_confusion_rejected() {
        let (es, _) = SigningKey::generate(Alg::ES256, "a".into()).unwrap();
        let (ed, _) = SigningKey::generate(Alg::EdDSA, "b".into()).unwrap();
        let jwt = ed.sign_jwt("JWT", &serde_json::json!({})).unwrap();
        assert!(UnverifiedJws::parse(&jwt).unwrap().verify(es.public()).is_none());
        assert!(UnverifiedJws::parse("a.b").is_none());
        assert!(UnverifiedJws::parse("a.b.c.d").is_none());
    }
}
