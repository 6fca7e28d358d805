//! Secrets at rest and in transit: the master key (AES-256-GCM envelope for IdP secrets and
//! private keys), high-entropy token generation, SHA-256 hashing and constant-time comparison.
use crate::clock::Rng;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("ciphertext is malformed or was encrypted with another master key")]
    Decrypt,
    #[error("master key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The master key. Encrypts with AES-256-GCM; the ciphertext format is
/// `v1.` + base64(nonce || ciphertext || tag), with associated data binding it to its use.
pub struct MasterKey {
    key: LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::BadMasterKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self { key: LessSafeKey::new(key) })
    }

    pub fn from_base64(s: &str) -> Result<Self, SecretError> {
        let s = s.trim();
        let bytes = STANDARD.decode(s).or_else(|_| URL_SAFE_NO_PAD.decode(s)).map_err(|_| SecretError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    /// Reads `master.key` from the data directory, creating it (mode 0600) when absent.
    /// Returns the key and whether it was generated now.
    pub fn load_or_create(dir: &Path, rng: &dyn Rng) -> Result<(Self, bool), SecretError> {
        let path = dir.join("master.key");
        let io = |source| SecretError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut raw = [0u8; 32];
                rng.fill(&mut raw);
                let encoded = STANDARD.encode(raw);
                write_private(&path, format!("{encoded}\n").as_bytes()).map_err(io)?;
                Ok((Self::from_bytes(&raw)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str, rng: &dyn Rng) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut buf = plaintext.to_vec();
        // Sealing with a valid key and a fresh nonce cannot fail for inputs under 64 GiB.
        if self
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut buf)
            .is_err()
        {
            buf.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>, SecretError> {
        let body = sealed.strip_prefix("v1.").ok_or(SecretError::Decrypt)?;
        let raw = STANDARD.decode(body).map_err(|_| SecretError::Decrypt)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf).map_err(|_| SecretError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// A high-entropy bearer secret: `prefix` + 32 random bytes, base64url.
pub fn new_token(prefix: &str, rng: &dyn Rng) -> String {
    let mut raw = [0u8; 32];
    rng.fill(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// SHA-256, hex. Used to store and look up high-entropy tokens and secrets.
pub fn sha256_hex(data: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256, base64url (PKCE S256).
pub fn sha256_b64url(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks a presented secret against a stored SHA-256 hex hash in constant time.
pub fn verify_hashed(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(&sha256_hex(presented), stored_hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::clock::SystemRng;

    #[test]
    fn seal_open_roundtrip_and_aad_binding() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let s = k.seal(b"secret", "key:abc", &SystemRng);
        assert!(!s.contains("secret"));
        assert_eq!(k.open(&s, "key:abc").unwrap(), b"secret");
        assert!(k.open(&s, "key:other").is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(&s, "key:abc").is_err());
        assert!(k.open("v1.AAAA", "x").is_err());
        assert!(k.open("garbage", "x").is_err());
    }

    #[test]
    fn master_key_file_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let (_, created) = MasterKey::load_or_create(dir.path(), &SystemRng).unwrap();
        assert!(created);
        let (_, created) = MasterKey::load_or_create(dir.path(), &SystemRng).unwrap();
        assert!(!created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn hashing_and_compare() {
        let t = new_token("fgx_", &SystemRng);
        assert!(t.len() > 40);
        assert!(verify_hashed(&t, &sha256_hex(&t)));
        assert!(!verify_hashed("nope", &sha256_hex(&t)));
        // RFC 7636 appendix B
        assert_eq!(
            sha256_b64url(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
