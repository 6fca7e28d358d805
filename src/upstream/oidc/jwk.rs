//! The IdP's signing keys as `openidconnect` sees them, with the signature check done by
//! aws-lc (the library fedgate signs its own tokens with) instead of the pure-Rust `p256` and
//! `rsa` crates `openidconnect` ships: profiled, an upstream ES256 ID token's check was about 8 %
//! of a whole brokered login's server CPU (docs/performance.md).
//!
//! [`IdpKey`] is `openidconnect`'s own [`CoreJsonWebKey`] (parsed, serialized, selected by `kid`
//! and `alg` exactly as before) plus the raw public key material read from the same JSON object.
//! Only the final step changes, and only for the algorithms below; every other algorithm, and an
//! RSA key under 2,048 bits (which aws-lc refuses), is checked by `openidconnect` as before.
//! The same key checks run first either way: a key whose `use` is not `sig`, whose `kty` or
//! curve does not fit the algorithm, or whose `alg` names another algorithm, is refused.
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm, SignatureVerificationError,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Public key material aws-lc verifies with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Material {
    /// RSA modulus and exponent, big-endian, without leading zero octets.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed EC point (`04 || x || y`) and its curve name.
    Ec { crv: String, point: Vec<u8> },
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
    /// Anything else: `openidconnect` checks it.
    Other,
}

/// An IdP's JWKS entry: see the module documentation.
#[derive(Clone, Debug)]
pub struct IdpKey {
    core: CoreJsonWebKey,
    material: Material,
}

impl Serialize for IdpKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(s)
    }
}

impl<'de> Deserialize<'de> for IdpKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        let core = CoreJsonWebKey::deserialize(&raw).map_err(serde::de::Error::custom)?;
        let material = material_of(&raw);
        Ok(IdpKey { core, material })
    }
}

fn b64(v: &serde_json::Value, name: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let s = v.get(name)?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let lead = b.iter().take_while(|x| **x == 0).count();
    b.drain(..lead);
    b
}

/// The key material of a JWK object; [`Material::Other`] when a member is missing or malformed
/// (then `openidconnect` reads the key as before, and refuses it as before).
fn material_of(v: &serde_json::Value) -> Material {
    let kty = v.get("kty").and_then(|k| k.as_str());
    let got = match kty {
        Some("RSA") => {
            b64(v, "n").zip(b64(v, "e")).map(|(n, e)| Material::Rsa { n: strip_zeros(n), e: strip_zeros(e) })
        }
        Some("EC") => {
            let crv = v.get("crv").and_then(|c| c.as_str());
            let size = match crv {
                Some("P-256") => 32,
                Some("P-384") => 48,
                _ => 0,
            };
            match (crv, b64(v, "x"), b64(v, "y")) {
                (Some(crv), Some(x), Some(y)) if size > 0 && x.len() == size && y.len() == size => {
                    let mut point = Vec::with_capacity(1 + 2 * size);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    Some(Material::Ec { crv: crv.to_string(), point })
                }
                _ => None,
            }
        }
        Some("OKP") if v.get("crv").and_then(|c| c.as_str()) == Some("Ed25519") => {
            b64(v, "x").filter(|x| x.len() == 32).map(Material::Ed25519)
        }
        _ => None,
    };
    got.unwrap_or(Material::Other)
}

/// `openidconnect`'s key checks (its `check_key_compatibility`, which is private).
fn compatible(key: &IdpKey, alg: &CoreJwsSigningAlgorithm) -> Result<(), SignatureVerificationError> {
    let bad = |m: &str| Err(SignatureVerificationError::InvalidKey(m.to_string()));
    if key.key_use().is_some_and(|u| !u.allows_signature()) {
        return bad("key usage not permitted for digital signatures");
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return bad("key type does not match signature algorithm");
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => Ok(()),
        JsonWebKeyAlgorithm::Unsupported => bad("key algorithm is not a signing algorithm"),
        JsonWebKeyAlgorithm::Algorithm(a) if a == alg => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(_) => bad("incompatible key algorithm"),
    }
}

impl JsonWebKey for IdpKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }
    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }
    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }
    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }
    fn new_symmetric(key: Vec<u8>) -> Self {
        IdpKey { core: CoreJsonWebKey::new_symmetric(key), material: Material::Other }
    }
    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
        use CoreJwsSigningAlgorithm as A;
        let rsa_alg = matches!(
            alg,
            A::RsaSsaPkcs1V15Sha256
                | A::RsaSsaPkcs1V15Sha384
                | A::RsaSsaPkcs1V15Sha512
                | A::RsaSsaPssSha256
                | A::RsaSsaPssSha384
                | A::RsaSsaPssSha512
        );
        let ours = match &self.material {
            // aws-lc refuses RSA keys under 2,048 bits: those stay with openidconnect, as before.
            Material::Rsa { n, .. } => rsa_alg && n.len() >= 256,
            Material::Ec { .. } => matches!(alg, A::EcdsaP256Sha256 | A::EcdsaP384Sha384),
            Material::Ed25519(_) => *alg == A::EdDsa,
            Material::Other => false,
        };
        if !ours {
            return self.core.verify_signature(alg, message, signature);
        }
        compatible(self, alg)?;
        let outcome = match (alg, &self.material) {
            (_, Material::Rsa { n, e }) => {
                let params = match alg {
                    A::RsaSsaPkcs1V15Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    A::RsaSsaPkcs1V15Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    A::RsaSsaPkcs1V15Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    A::RsaSsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
                    A::RsaSsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
                    _ => &sig::RSA_PSS_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
            (_, Material::Ec { crv, point }) => {
                let params = match (alg, crv.as_str()) {
                    (A::EcdsaP256Sha256, "P-256") => &sig::ECDSA_P256_SHA256_FIXED,
                    (A::EcdsaP384Sha384, "P-384") => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => {
                        return Err(SignatureVerificationError::InvalidKey(
                            "key curve does not match the signature algorithm".into(),
                        ))
                    }
                };
                UnparsedPublicKey::new(params, point).verify(message, signature)
            }
            (_, Material::Ed25519(x)) => UnparsedPublicKey::new(&sig::ED25519, x).verify(message, signature),
            (_, Material::Other) => return self.core.verify_signature(alg, message, signature),
        };
        outcome.map_err(|_| SignatureVerificationError::CryptoError("the signature is invalid".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
    use base64::Engine;
    use CoreJwsSigningAlgorithm as A;

    fn b(x: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x)
    }

    fn key(v: serde_json::Value) -> IdpKey {
        serde_json::from_value(v).unwrap()
    }

    fn ec_key(alg: &'static sig::EcdsaSigningAlgorithm, crv: &str) -> (EcdsaKeyPair, serde_json::Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
        let p = kp.public_key().as_ref().to_vec();
        let half = (p.len() - 1) / 2;
        let jwk =
            serde_json::json!({"kty": "EC", "crv": crv, "x": b(&p[1..1 + half]), "y": b(&p[1 + half..]), "kid": "ec"});
        (kp, jwk)
    }

    #[test]
    fn ecdsa_p256_and_p384_verify_and_refuse() {
        let rng = SystemRandom::new();
        let msg = b"header.payload";
        for (signing, crv, alg) in [
            (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", A::EcdsaP256Sha256),
            (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", A::EcdsaP384Sha384),
        ] {
            let (kp, jwk) = ec_key(signing, crv);
            let k = key(jwk.clone());
            assert!(matches!(k.material, Material::Ec { .. }));
            let s = kp.sign(&rng, msg).unwrap();
            assert!(k.verify_signature(&alg, msg, s.as_ref()).is_ok());
            // openidconnect's own check agrees on the same bytes.
            assert!(k.core.verify_signature(&alg, msg, s.as_ref()).is_ok());
            assert!(k.verify_signature(&alg, b"header.other", s.as_ref()).is_err());
            let mut bad = s.as_ref().to_vec();
            bad[3] ^= 1;
            assert!(k.verify_signature(&alg, msg, &bad).is_err());
            // Another algorithm than the key's curve, or a key meant for encryption: refused.
            let other = if alg == A::EcdsaP256Sha256 { A::EcdsaP384Sha384 } else { A::EcdsaP256Sha256 };
            assert!(k.verify_signature(&other, msg, s.as_ref()).is_err());
            assert!(k.verify_signature(&A::RsaSsaPkcs1V15Sha256, msg, s.as_ref()).is_err());
            let mut enc = jwk.clone();
            enc["use"] = "enc".into();
            assert!(matches!(
                key(enc).verify_signature(&alg, msg, s.as_ref()),
                Err(SignatureVerificationError::InvalidKey(_))
            ));
            let mut pinned = jwk;
            pinned["alg"] = "ES512".into();
            assert!(matches!(
                key(pinned).verify_signature(&alg, msg, s.as_ref()),
                Err(SignatureVerificationError::InvalidKey(_))
            ));
        }
    }

    #[test]
    fn rsa_pkcs1_and_pss_verify_and_refuse() {
        // A 2048-bit key from the SAML fixtures' test material is not at hand here: generate one.
        let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pk = kp.public_key();
        let comps: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = pk.into();
        // A leading zero octet on n (seen in the wild) is tolerated.
        let mut n0 = vec![0u8];
        n0.extend_from_slice(&comps.n);
        let jwk = serde_json::json!({"kty": "RSA", "n": b(&n0), "e": b(&comps.e), "use": "sig", "kid": "rsa"});
        let k = key(jwk);
        assert!(matches!(&k.material, Material::Rsa { n, .. } if n.len() == 256));
        let rng = SystemRandom::new();
        let msg = b"header.payload";
        for (enc, alg) in [
            (&sig::RSA_PKCS1_SHA256, A::RsaSsaPkcs1V15Sha256),
            (&sig::RSA_PKCS1_SHA384, A::RsaSsaPkcs1V15Sha384),
            (&sig::RSA_PKCS1_SHA512, A::RsaSsaPkcs1V15Sha512),
            (&sig::RSA_PSS_SHA256, A::RsaSsaPssSha256),
            (&sig::RSA_PSS_SHA512, A::RsaSsaPssSha512),
        ] {
            let mut s = vec![0u8; kp.public_modulus_len()];
            kp.sign(enc, &rng, msg, &mut s).unwrap();
            assert!(k.verify_signature(&alg, msg, &s).is_ok(), "{alg:?}");
            assert!(k.core.verify_signature(&alg, msg, &s).is_ok(), "openidconnect agrees: {alg:?}");
            assert!(k.verify_signature(&alg, b"tampered", &s).is_err());
        }
        let mut s = vec![0u8; kp.public_modulus_len()];
        kp.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut s).unwrap();
        assert!(k.verify_signature(&A::RsaSsaPkcs1V15Sha384, msg, &s).is_err(), "another hash");
        assert!(k.verify_signature(&A::EcdsaP256Sha256, msg, &s).is_err(), "another key type");
        assert!(k.verify_signature(&A::HmacSha256, msg, &s).is_err());
    }

    #[test]
    fn ed25519_verifies_and_others_fall_back() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let k = key(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b(kp.public_key().as_ref())}));
        let s = kp.sign(b"m");
        assert!(k.verify_signature(&A::EdDsa, b"m", s.as_ref()).is_ok());
        assert!(k.verify_signature(&A::EdDsa, b"n", s.as_ref()).is_err());
        // Malformed material is left to openidconnect, which refuses it as before.
        let broken = key(serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}));
        assert_eq!(broken.material, Material::Other);
        assert!(broken.verify_signature(&A::EcdsaP256Sha256, b"m", &[0u8; 64]).is_err());
        // The JWKS round-trips as openidconnect wrote it.
        let j = serde_json::to_value(&k).unwrap();
        assert_eq!(j["kty"], "OKP");
    }
}
