//! XML Encryption of assertions: RSA-OAEP key transport (never RSA PKCS#1 v1.5, which is open to
//! Bleichenbacher's attack) and AES-GCM or AES-CBC content encryption, with the connection's SP
//! key. The decrypted assertion is checked by the caller like any other (its own signature, or a
//! verified Response signature around it).
use crate::validate::{child, is, SamlError, NS_DSIG, NS_XENC};
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use roxmltree::Node;

const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const MAX_CIPHERTEXT: usize = 512 * 1024;

fn fail(m: impl Into<String>) -> SamlError {
    SamlError::Decryption(m.into())
}

/// The one message for every failure that depends on the ciphertext's content (key unwrap,
/// authentication, padding, encoding, the plaintext's XML): telling them apart would give an
/// attacker a padding or OAEP oracle on an unsigned EncryptedAssertion.
pub const UNDECRYPTABLE: &str =
    "the encrypted assertion does not decrypt, with the SP key, to an assertion signed by the identity provider (encrypted for another certificate, altered, or not signed inside)";

pub fn undecryptable() -> SamlError {
    SamlError::Decryption(UNDECRYPTABLE.into())
}

fn cipher_value(n: Node) -> Result<Vec<u8>, SamlError> {
    let cv = child(n, NS_XENC, "CipherData")
        .and_then(|c| child(c, NS_XENC, "CipherValue"))
        .ok_or_else(|| fail("no CipherData/CipherValue"))?;
    let b64: String = cv
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if b64.len() > MAX_CIPHERTEXT {
        return Err(fail("the ciphertext is too large"));
    }
    base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).map_err(|_| fail("the CipherValue is not base64"))
}

fn algorithm<'a>(n: Node<'a, '_>) -> &'a str {
    child(n, NS_XENC, "EncryptionMethod").and_then(|m| m.attribute("Algorithm")).unwrap_or_default()
}

fn digest_of(uri: Option<&str>) -> Result<MessageDigest, SamlError> {
    match uri {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Ok(MessageDigest::sha1()),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Ok(MessageDigest::sha256()),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384") => Ok(MessageDigest::sha384()),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Ok(MessageDigest::sha512()),
        Some(other) => Err(fail(format!("unsupported OAEP digest {other}"))),
    }
}

fn mgf_of(uri: Option<&str>) -> Result<MessageDigest, SamlError> {
    match uri {
        None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => Ok(MessageDigest::sha1()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => Ok(MessageDigest::sha256()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha384") => Ok(MessageDigest::sha384()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha512") => Ok(MessageDigest::sha512()),
        Some(other) => Err(fail(format!("unsupported OAEP mask generation {other}"))),
    }
}

/// Unwraps the content key of an `EncryptedKey` with RSA-OAEP.
fn unwrap_key(ek: Node, key: &PKey<Private>) -> Result<Vec<u8>, SamlError> {
    let method = child(ek, NS_XENC, "EncryptionMethod").ok_or_else(|| fail("the EncryptedKey has no method"))?;
    let alg = method.attribute("Algorithm").unwrap_or_default();
    let dm = child(method, NS_DSIG, "DigestMethod").and_then(|d| d.attribute("Algorithm"));
    let (md, mgf) = match alg {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" => (digest_of(dm)?, MessageDigest::sha1()),
        "http://www.w3.org/2009/xmlenc11#rsa-oaep" => {
            let mgf = child(method, NS_XENC11, "MGF").and_then(|m| m.attribute("Algorithm"));
            (digest_of(dm)?, mgf_of(mgf)?)
        }
        "http://www.w3.org/2001/04/xmlenc#rsa-1_5" => {
            return Err(fail("RSA PKCS#1 v1.5 key transport is refused (configure RSA-OAEP at the identity provider)"))
        }
        other => return Err(fail(format!("unsupported key transport {other}"))),
    };
    let wrapped = cipher_value(ek)?;
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.decrypt_init()?;
        ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
        ctx.set_rsa_oaep_md(openssl::md::Md::from_nid(md.type_()).unwrap_or(openssl::md::Md::sha1()))?;
        ctx.set_rsa_mgf1_md(openssl::md::Md::from_nid(mgf.type_()).unwrap_or(openssl::md::Md::sha1()))?;
        let mut out = Vec::new();
        ctx.decrypt_to_vec(&wrapped, &mut out)?;
        Ok(out)
    };
    run().map_err(|_| undecryptable())
}

/// Refuses AES-CBC content encryption when the connection accepts AES-GCM only. The algorithm
/// is the sender's choice, not a property of the plaintext: saying so reveals nothing.
pub fn check_content_algorithm(enc: Node, allow_cbc: bool) -> Result<(), SamlError> {
    let alg = child(enc, NS_XENC, "EncryptedData").map(algorithm).unwrap_or_default();
    if !allow_cbc && is_cbc(alg) {
        return Err(fail(
            "the assertion is encrypted with AES-CBC, and this connection accepts AES-GCM only (require_aes_gcm)",
        ));
    }
    Ok(())
}

/// Whether a content-encryption algorithm is AES-CBC (the ciphertext is not authenticated).
pub fn is_cbc(alg: &str) -> bool {
    alg.starts_with("http://www.w3.org/2001/04/xmlenc#aes") && alg.ends_with("-cbc")
}

/// Decrypts the content with the unwrapped key.
fn decrypt_content(alg: &str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, SamlError> {
    let (cipher, gcm) = match alg {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => (Cipher::aes_128_cbc(), false),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (Cipher::aes_192_cbc(), false),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (Cipher::aes_256_cbc(), false),
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => (Cipher::aes_128_gcm(), true),
        "http://www.w3.org/2009/xmlenc11#aes192-gcm" => (Cipher::aes_192_gcm(), true),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => (Cipher::aes_256_gcm(), true),
        other => return Err(fail(format!("unsupported content encryption {other}"))),
    };
    if key.len() != cipher.key_len() {
        return Err(undecryptable());
    }
    if gcm {
        // IV (96 bits) || ciphertext || tag (128 bits)
        if data.len() < 12 + 16 {
            return Err(undecryptable());
        }
        let (iv, rest) = data.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        openssl::symm::decrypt_aead(cipher, key, Some(iv), &[], ct, tag).map_err(|_| undecryptable())
    } else {
        // IV (128 bits) || ciphertext; XML Encryption padding: the last byte is the pad length.
        if data.len() < 32 || !data.len().is_multiple_of(16) {
            return Err(undecryptable());
        }
        let (iv, ct) = data.split_at(16);
        let mut c = openssl::symm::Crypter::new(cipher, openssl::symm::Mode::Decrypt, key, Some(iv))
            .map_err(|_| undecryptable())?;
        c.pad(false);
        let mut out = vec![0u8; ct.len() + 16];
        let mut n = c.update(ct, &mut out).map_err(|_| undecryptable())?;
        n += c.finalize(&mut out[n..]).map_err(|_| undecryptable())?;
        out.truncate(n);
        let pad = usize::from(*out.last().ok_or_else(undecryptable)?);
        if pad == 0 || pad > 16 || pad > out.len() {
            return Err(undecryptable());
        }
        out.truncate(out.len() - pad);
        Ok(out)
    }
}

/// Decrypts an `EncryptedAssertion` element with the SP private key (PKCS#8 or PKCS#1 PEM) and
/// returns the plaintext XML.
pub fn decrypt_assertion(enc: Node, sp_key_pem: &str) -> Result<String, SamlError> {
    let key = PKey::private_key_from_pem(sp_key_pem.as_bytes()).map_err(|_| fail("the SP key cannot be read"))?;
    let ed = child(enc, NS_XENC, "EncryptedData").ok_or_else(|| fail("no EncryptedData"))?;
    let data_alg = algorithm(ed);
    // The EncryptedKey sits in the EncryptedData's KeyInfo, or beside it in the EncryptedAssertion.
    let in_keyinfo: Vec<Node> = child(ed, NS_DSIG, "KeyInfo")
        .map(|ki| ki.children().filter(|c| is(*c, NS_XENC, "EncryptedKey")).collect())
        .unwrap_or_default();
    let beside: Vec<Node> = enc.children().filter(|c| is(*c, NS_XENC, "EncryptedKey")).collect();
    let keys: Vec<Node> = in_keyinfo.into_iter().chain(beside).collect();
    if keys.is_empty() {
        return Err(fail("no EncryptedKey"));
    }
    if keys.len() > 4 {
        return Err(fail("too many EncryptedKey elements"));
    }
    let data = cipher_value(ed)?;
    let mut last = undecryptable();
    for ek in keys {
        match unwrap_key(ek, &key).and_then(|k| decrypt_content(data_alg, &k, &data)) {
            Ok(plain) => return String::from_utf8(plain).map_err(|_| undecryptable()),
            Err(e) => last = e,
        }
    }
    Err(last)
}
