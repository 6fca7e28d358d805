//! A fixture SAML 2.0 identity provider, for fast tests, the attack corpus and the README demo.
//! Written by us; it signs with the test-only keys in `idp-fixtures/saml/keys/` (see the README
//! there). No real data, no network: it only builds XML.
//!
//! Include it with `#[path = ".../idp-fixtures/saml_idp.rs"] mod saml_idp;` (from the library or
//! from tests). It uses only crates fedgate already depends on (samael with xmlsec, openssl,
//! base64, chrono) and never panics: every fallible function returns `Result<_, String>`.
//!
//! API:
//! - [`FixtureIdp::from_pem`]`(entity_id, key_pem, cert_pem)` / [`FixtureIdp::test`]`(entity_id)`
//!   (the `idp` test key) / [`FixtureIdp::untrusted`]`(entity_id)` (the attacker key).
//! - [`FixtureIdp::metadata_xml`]`(sso_redirect, sso_post)`: an `md:EntityDescriptor` with an
//!   `IDPSSODescriptor` carrying the signing certificate.
//! - [`FixtureIdp::response`]`(&ResponseParams)`: the `samlp:Response` XML (not base64), signed and/or
//!   encrypted as asked. [`ResponseParams::new`] gives a valid, signed-Response default.
//! - Building blocks for string surgery (the attack corpus): [`FixtureIdp::assertion_xml`]
//!   (the Assertion, signed when `sign` covers it), [`FixtureIdp::response_around`] (a Response around
//!   any inner XML, signed when `sign` covers it), [`FixtureIdp::sign_root`] (sign the root element
//!   of any document whose root has an `ID`), [`encrypt_assertion`] (an `saml:EncryptedAssertion`).
//! - [`post_form_fields`]`(xml)`: the base64 `SAMLResponse` form value.
//! - [`IDP_KEY_PEM`], [`IDP_CERT_PEM`], [`UNTRUSTED_KEY_PEM`], [`UNTRUSTED_CERT_PEM`], [`SP_KEY_PEM`],
//!   [`SP_CERT_PEM`]: the test keys, embedded.
//!
//! Signatures are enveloped, exclusive c14n, RSA-SHA256 (or RSA-SHA1 on request), one Reference
//! `URI="#ID"`, placed right after the signed element's `Issuer` (SAML schema order) and made by
//! xmlsec through `samael::crypto::Crypto::sign_xml`. With [`Sign::Both`] the Assertion is signed
//! first, then the Response. With encryption, the Assertion is signed (if asked) and then encrypted
//! (XML Encryption 1.1: `EncryptedData` with the `EncryptedKey` in its `ds:KeyInfo`, RSA-OAEP-MGF1P
//! key transport, AES-GCM or AES-CBC content). RSA PKCS#1 v1.5 signatures are deterministic, so the
//! same parameters give the same bytes; encryption is random unless [`Encrypt::seed`] is set.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Datelike, Timelike};
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::{encrypt_aead, Cipher, Crypter, Mode};
use openssl::x509::X509;
use samael::crypto::{Crypto, CryptoProvider};

/// The fixture IdP's private key (test only).
pub const IDP_KEY_PEM: &str = include_str!("saml/keys/idp.key.pem");
/// The fixture IdP's self-signed certificate.
pub const IDP_CERT_PEM: &str = include_str!("saml/keys/idp.crt.pem");
/// An attacker's key, never trusted.
pub const UNTRUSTED_KEY_PEM: &str = include_str!("saml/keys/untrusted.key.pem");
/// An attacker's certificate.
pub const UNTRUSTED_CERT_PEM: &str = include_str!("saml/keys/untrusted.crt.pem");
/// A fixed SP key: the corpus's encrypted cases are encrypted to [`SP_CERT_PEM`].
pub const SP_KEY_PEM: &str = include_str!("saml/keys/sp.key.pem");
/// The fixed SP certificate.
pub const SP_CERT_PEM: &str = include_str!("saml/keys/sp.crt.pem");

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
pub const ATTRNAME_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
pub const AUTHN_PPT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ALG_RSA_OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const ALG_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// Which elements carry a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    None,
    Response,
    Assertion,
    /// The Assertion first, then the Response around it.
    Both,
}

impl Sign {
    fn assertion(self) -> bool {
        matches!(self, Sign::Assertion | Sign::Both)
    }
    fn response(self) -> bool {
        matches!(self, Sign::Response | Sign::Both)
    }
}

/// Signature algorithm (SignatureMethod and DigestMethod).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigAlg {
    /// rsa-sha256 with a sha256 digest.
    #[default]
    RsaSha256,
    /// rsa-sha1 with a sha1 digest (the SHA-1 corpus case).
    RsaSha1,
    /// rsa-sha256 over a sha1 digest (an allowed signature method with a forbidden digest).
    RsaSha256DigestSha1,
}

impl SigAlg {
    pub fn signature_uri(self) -> &'static str {
        match self {
            SigAlg::RsaSha256 | SigAlg::RsaSha256DigestSha1 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SigAlg::RsaSha1 => "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        }
    }
    pub fn digest_uri(self) -> &'static str {
        match self {
            SigAlg::RsaSha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            SigAlg::RsaSha1 | SigAlg::RsaSha256DigestSha1 => ALG_SHA1,
        }
    }
}

/// Content-encryption algorithm of an EncryptedAssertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAlg {
    Aes128Gcm,
    Aes256Gcm,
    Aes128Cbc,
    Aes256Cbc,
}

impl DataAlg {
    pub fn uri(self) -> &'static str {
        match self {
            DataAlg::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            DataAlg::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            DataAlg::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            DataAlg::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }
    fn cipher(self) -> Cipher {
        match self {
            DataAlg::Aes128Gcm => Cipher::aes_128_gcm(),
            DataAlg::Aes256Gcm => Cipher::aes_256_gcm(),
            DataAlg::Aes128Cbc => Cipher::aes_128_cbc(),
            DataAlg::Aes256Cbc => Cipher::aes_256_cbc(),
        }
    }
    fn key_len(self) -> usize {
        match self {
            DataAlg::Aes128Gcm | DataAlg::Aes128Cbc => 16,
            DataAlg::Aes256Gcm | DataAlg::Aes256Cbc => 32,
        }
    }
    fn iv_len(self) -> usize {
        match self {
            DataAlg::Aes128Gcm | DataAlg::Aes256Gcm => 12,
            DataAlg::Aes128Cbc | DataAlg::Aes256Cbc => 16,
        }
    }
    fn is_gcm(self) -> bool {
        matches!(self, DataAlg::Aes128Gcm | DataAlg::Aes256Gcm)
    }
}

/// Key transport of the content key (only RSA-OAEP-MGF1P with SHA-1, as every IdP sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyTransport {
    #[default]
    RsaOaepMgf1p,
}

/// Encrypt the Assertion to the SP.
#[derive(Debug, Clone)]
pub struct Encrypt {
    /// The SP's encryption certificate (PEM).
    pub sp_cert_pem: String,
    pub data_alg: DataAlg,
    pub key_transport: KeyTransport,
    /// `Some` makes the content key, IV and OAEP seed derive from this seed (SHA-256), so the output
    /// is byte-stable (the corpus); `None` draws them at random (everything else).
    pub seed: Option<[u8; 32]>,
}

impl Encrypt {
    /// AES-256-GCM to `sp_cert_pem`, random.
    pub fn to(sp_cert_pem: &str) -> Self {
        Self {
            sp_cert_pem: sp_cert_pem.to_owned(),
            data_alg: DataAlg::Aes256Gcm,
            key_transport: KeyTransport::RsaOaepMgf1p,
            seed: None,
        }
    }
}

/// The top-level `samlp:Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Top-level code, e.g. `urn:oasis:names:tc:SAML:2.0:status:Responder`.
    pub code: String,
    /// Second-level code, e.g. `urn:oasis:names:tc:SAML:2.0:status:AuthnFailed`.
    pub sub_code: Option<String>,
    pub message: Option<String>,
}

/// Everything that goes into a Response. Times are unix seconds.
#[derive(Debug, Clone)]
pub struct ResponseParams {
    pub response_id: String,
    pub assertion_id: String,
    /// Issuer of the Response (`None`: no Response Issuer, which SAML allows).
    pub response_issuer: Option<String>,
    /// Issuer of the Assertion.
    pub assertion_issuer: String,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    /// `None`: Conditions without an AudienceRestriction.
    pub audience: Option<String>,
    /// SubjectConfirmationData Recipient.
    pub recipient: Option<String>,
    /// `None`: a Subject without NameID.
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    /// (Name, values), NameFormat uri when the name contains ':' else basic.
    pub attributes: Vec<(String, Vec<String>)>,
    pub issue_instant: i64,
    pub authn_instant: i64,
    pub not_before: i64,
    pub not_on_or_after: i64,
    pub subject_conf_not_on_or_after: i64,
    pub session_index: Option<String>,
    pub authn_context: String,
    pub include_conditions: bool,
    /// `false`: a Response without Assertion (failure statuses).
    pub include_assertion: bool,
    /// `None` = Success.
    pub status: Option<Status>,
    pub sign: Sign,
    pub sig_alg: SigAlg,
    pub encrypt: Option<Encrypt>,
}

impl ResponseParams {
    /// A valid response for `sp_entity_id`/`acs_url`, issued `now`, valid 5 minutes, NameID
    /// persistent `name_id`, attribute `email`, the Response signed with RSA-SHA256. IDs are random.
    pub fn new(
        idp_entity_id: &str,
        sp_entity_id: &str,
        acs_url: &str,
        in_response_to: Option<&str>,
        name_id: &str,
        email: &str,
        now: i64,
    ) -> Self {
        Self {
            response_id: random_id(),
            assertion_id: random_id(),
            response_issuer: Some(idp_entity_id.to_owned()),
            assertion_issuer: idp_entity_id.to_owned(),
            destination: Some(acs_url.to_owned()),
            in_response_to: in_response_to.map(str::to_owned),
            audience: Some(sp_entity_id.to_owned()),
            recipient: Some(acs_url.to_owned()),
            name_id: Some(name_id.to_owned()),
            name_id_format: Some(NAMEID_PERSISTENT.to_owned()),
            attributes: vec![("email".to_owned(), vec![email.to_owned()])],
            issue_instant: now,
            authn_instant: now,
            not_before: now,
            not_on_or_after: now + 300,
            subject_conf_not_on_or_after: now + 300,
            session_index: Some(format!("_session_{}", &random_id()[1..17])),
            authn_context: AUTHN_PPT.to_owned(),
            include_conditions: true,
            include_assertion: true,
            status: None,
            sign: Sign::Response,
            sig_alg: SigAlg::RsaSha256,
            encrypt: None,
        }
    }

    /// Shift every instant by `secs`.
    pub fn shift_times(&mut self, secs: i64) {
        self.issue_instant += secs;
        self.authn_instant += secs;
        self.not_before += secs;
        self.not_on_or_after += secs;
        self.subject_conf_not_on_or_after += secs;
    }
}

/// A fixture IdP: an entity ID and a signing key pair.
pub struct FixtureIdp {
    pub entity_id: String,
    key: PKey<Private>,
    /// The private key as DER, the form xmlsec loads.
    key_der: Vec<u8>,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl FixtureIdp {
    /// An IdP from a PEM private key (PKCS#8 or PKCS#1) and its PEM certificate.
    pub fn from_pem(entity_id: &str, key_pem: &str, cert_pem: &str) -> Result<Self, String> {
        let key = PKey::private_key_from_pem(key_pem.as_bytes()).map_err(|e| format!("idp key: {e}"))?;
        let key_der = key.private_key_to_der().map_err(|e| format!("idp key: {e}"))?;
        let cert = X509::from_pem(cert_pem.as_bytes()).map_err(|e| format!("idp certificate: {e}"))?;
        let cert_der = cert.to_der().map_err(|e| format!("idp certificate: {e}"))?;
        Ok(Self { entity_id: entity_id.to_owned(), key, key_der, cert_der, cert_pem: cert_pem.to_owned() })
    }

    /// The fixture IdP with the test key `idp-fixtures/saml/keys/idp.key.pem`.
    pub fn test(entity_id: &str) -> Result<Self, String> {
        Self::from_pem(entity_id, IDP_KEY_PEM, IDP_CERT_PEM)
    }

    /// An attacker's IdP under the same entity ID, signing with `untrusted.key.pem`.
    pub fn untrusted(entity_id: &str) -> Result<Self, String> {
        Self::from_pem(entity_id, UNTRUSTED_KEY_PEM, UNTRUSTED_CERT_PEM)
    }

    /// The signing certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The signing certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The signing certificate, base64 DER on one line (as in `ds:X509Certificate`).
    pub fn cert_b64(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }

    /// IdP metadata: `md:EntityDescriptor` with an `IDPSSODescriptor`, the signing certificate and
    /// a `SingleSignOnService` for each given binding.
    pub fn metadata_xml(&self, sso_url_redirect: Option<&str>, sso_url_post: Option<&str>) -> String {
        let mut sso = String::new();
        if let Some(url) = sso_url_redirect {
            sso.push_str(&format!(
                r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{}"/>"#,
                esc(url)
            ));
        }
        if let Some(url) = sso_url_post {
            sso.push_str(&format!(
                r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{}"/>"#,
                esc(url)
            ));
        }
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" entityID="{entity}">"#,
                r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="{proto}">"#,
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                r#"<md:NameIDFormat>{persistent}</md:NameIDFormat>"#,
                r#"<md:NameIDFormat>{email}</md:NameIDFormat>"#,
                "{sso}",
                r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#,
                "\n"
            ),
            md = NS_METADATA,
            ds = NS_DSIG,
            entity = esc(&self.entity_id),
            proto = NS_PROTOCOL,
            cert = self.cert_b64(),
            persistent = NAMEID_PERSISTENT,
            email = NAMEID_EMAIL,
            sso = sso,
        )
    }

    /// The `samlp:Response` XML (with an XML declaration, not base64): the Assertion signed if
    /// `p.sign` covers it, then encrypted if `p.encrypt`, then the Response signed if `p.sign`
    /// covers it.
    pub fn response(&self, p: &ResponseParams) -> Result<String, String> {
        let inner = if !p.include_assertion {
            String::new()
        } else {
            let assertion = self.assertion_xml(p)?;
            match &p.encrypt {
                Some(enc) => encrypt_assertion(&assertion, enc)?,
                None => assertion,
            }
        };
        Ok(format!("{}{}\n", XML_DECL, self.response_around(p, &inner)?))
    }

    /// The `saml:Assertion` alone (namespaces declared on it, no XML declaration), signed when
    /// `p.sign` is `Assertion` or `Both`.
    pub fn assertion_xml(&self, p: &ResponseParams) -> Result<String, String> {
        let xml = unsigned_assertion(p);
        if p.sign.assertion() {
            self.sign_root(&xml, p.sig_alg)
        } else {
            Ok(xml)
        }
    }

    /// A `samlp:Response` (no XML declaration) with `p`'s header and status around `inner`, signed
    /// when `p.sign` is `Response` or `Both`.
    pub fn response_around(&self, p: &ResponseParams, inner: &str) -> Result<String, String> {
        let xml = unsigned_response(p, inner);
        if p.sign.response() {
            self.sign_root(&xml, p.sig_alg)
        } else {
            Ok(xml)
        }
    }

    /// Sign the root element of `xml` (no DOCTYPE; its root must have an `ID`): a signature
    /// template goes right after the root's first child if that is an `Issuer` (else first), and
    /// xmlsec fills it in. Returns the document without XML declaration.
    pub fn sign_root(&self, xml: &str, alg: SigAlg) -> Result<String, String> {
        let body = strip_decl(xml);
        let (root_start_end, id) = root_start_tag(body)?;
        let insert_at = match body[root_start_end..].find('<') {
            Some(rel) if body[root_start_end + rel..].starts_with("<saml:Issuer") => {
                let from = root_start_end + rel;
                let close = body[from..].find("</saml:Issuer>").ok_or("unterminated Issuer")?;
                from + close + "</saml:Issuer>".len()
            }
            _ => root_start_end,
        };
        let template = self.signature_template(&id, alg);
        let unsigned = format!("{}{}{}", &body[..insert_at], template, &body[insert_at..]);
        let signed = Crypto::sign_xml(unsigned.as_bytes(), &self.key_der).map_err(|e| format!("sign: {e}"))?;
        Ok(strip_decl(&signed).trim_end().to_owned())
    }

    fn signature_template(&self, id: &str, alg: SigAlg) -> String {
        format!(
            concat!(
                r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>"#,
                r#"<ds:CanonicalizationMethod Algorithm="{c14n}"/>"#,
                r#"<ds:SignatureMethod Algorithm="{sig}"/>"#,
                r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
                r#"<ds:Transform Algorithm="{env}"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms>"#,
                r#"<ds:DigestMethod Algorithm="{dig}"/><ds:DigestValue></ds:DigestValue></ds:Reference>"#,
                r#"</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
                r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
                r#"</ds:Signature>"#
            ),
            ds = NS_DSIG,
            c14n = ALG_EXC_C14N,
            sig = alg.signature_uri(),
            id = esc(id),
            env = ALG_ENVELOPED,
            dig = alg.digest_uri(),
            cert = self.cert_b64(),
        )
    }

    /// The private key (for callers that sign other things, e.g. a LogoutRequest).
    pub fn private_key(&self) -> &PKey<Private> {
        &self.key
    }
}

/// The `SAMLResponse` form field of the HTTP-POST binding: base64 of the XML.
pub fn post_form_fields(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// `saml:EncryptedAssertion` holding `assertion_xml` encrypted to `enc.sp_cert_pem`.
pub fn encrypt_assertion(assertion_xml: &str, enc: &Encrypt) -> Result<String, String> {
    let cert = X509::from_pem(enc.sp_cert_pem.as_bytes()).map_err(|e| format!("sp certificate: {e}"))?;
    let rsa = cert.public_key().and_then(|k| k.rsa()).map_err(|e| format!("sp certificate is not RSA: {e}"))?;
    let alg = enc.data_alg;
    let derive = |label: &[u8], len: usize| -> Result<Vec<u8>, String> {
        match enc.seed {
            Some(seed) => {
                let mut input = seed.to_vec();
                input.extend_from_slice(label);
                let d = hash(MessageDigest::sha256(), &input).map_err(|e| e.to_string())?;
                Ok(d[..len].to_vec())
            }
            None => {
                let mut buf = vec![0u8; len];
                openssl::rand::rand_bytes(&mut buf).map_err(|e| e.to_string())?;
                Ok(buf)
            }
        }
    };
    let key = derive(b"content-key", alg.key_len())?;
    let iv = derive(b"iv", alg.iv_len())?;
    let plaintext = strip_decl(assertion_xml).as_bytes();
    let mut cipher_value = iv.clone();
    if alg.is_gcm() {
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(alg.cipher(), &key, Some(&iv), &[], plaintext, &mut tag).map_err(|e| e.to_string())?;
        cipher_value.extend_from_slice(&ct);
        cipher_value.extend_from_slice(&tag);
    } else {
        // PKCS#7 padding is a valid XML Encryption padding (last byte = pad length).
        let mut crypter = Crypter::new(alg.cipher(), Mode::Encrypt, &key, Some(&iv)).map_err(|e| e.to_string())?;
        crypter.pad(true);
        let mut out = vec![0u8; plaintext.len() + 32];
        let mut n = crypter.update(plaintext, &mut out).map_err(|e| e.to_string())?;
        n += crypter.finalize(&mut out[n..]).map_err(|e| e.to_string())?;
        cipher_value.extend_from_slice(&out[..n]);
    }
    let seed = derive(b"oaep-seed", 20)?;
    let em = oaep_sha1_encode(&key, &seed, rsa.size() as usize)?;
    let mut ek = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&em, &mut ek, Padding::NONE).map_err(|e| e.to_string())?;
    ek.truncate(n);
    let cert_b64 = cert.to_der().map(|d| STANDARD.encode(d)).map_err(|e| e.to_string())?;
    Ok(format!(
        concat!(
            r#"<saml:EncryptedAssertion xmlns:saml="{saml}">"#,
            r#"<xenc:EncryptedData xmlns:xenc="{xenc}" Id="_enc_{idsuffix}" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{data_alg}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="{ds}"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{oaep}"><ds:DigestMethod Algorithm="{sha1}"/></xenc:EncryptionMethod>"#,
            r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{ek}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{cv}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        saml = NS_ASSERTION,
        xenc = NS_XENC,
        idsuffix = hex(&derive(b"id", 8)?),
        data_alg = alg.uri(),
        ds = NS_DSIG,
        oaep = ALG_RSA_OAEP,
        sha1 = ALG_SHA1,
        cert = cert_b64,
        ek = STANDARD.encode(&ek),
        cv = STANDARD.encode(&cipher_value),
    ))
}

/// EME-OAEP encoding (RFC 8017 §7.1.1) with SHA-1, MGF1-SHA-1 and an empty label, with a given
/// seed so that the result can be deterministic; the caller applies raw RSA.
fn oaep_sha1_encode(msg: &[u8], seed: &[u8], k: usize) -> Result<Vec<u8>, String> {
    const H: usize = 20;
    if seed.len() != H || msg.len() + 2 * H + 2 > k {
        return Err("oaep: bad lengths".into());
    }
    let lhash = hash(MessageDigest::sha1(), b"").map_err(|e| e.to_string())?;
    let mut db = Vec::with_capacity(k - H - 1);
    db.extend_from_slice(&lhash);
    db.resize(k - H - 1 - msg.len() - 1, 0);
    db.push(1);
    db.extend_from_slice(msg);
    let db_mask = mgf1_sha1(seed, db.len())?;
    let masked_db: Vec<u8> = db.iter().zip(&db_mask).map(|(a, b)| a ^ b).collect();
    let seed_mask = mgf1_sha1(&masked_db, H)?;
    let mut em = vec![0u8];
    em.extend(seed.iter().zip(&seed_mask).map(|(a, b)| a ^ b));
    em.extend_from_slice(&masked_db);
    Ok(em)
}

fn mgf1_sha1(seed: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(len + 20);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash(MessageDigest::sha1(), &input).map_err(|e| e.to_string())?);
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

fn unsigned_assertion(p: &ResponseParams) -> String {
    let mut s = format!(
        r#"<saml:Assertion xmlns:saml="{}" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="{}" Version="2.0" IssueInstant="{}">"#,
        NS_ASSERTION,
        esc(&p.assertion_id),
        instant(p.issue_instant)
    );
    s.push_str(&format!("<saml:Issuer>{}</saml:Issuer>", esc(&p.assertion_issuer)));
    s.push_str("<saml:Subject>");
    if let Some(name_id) = &p.name_id {
        match &p.name_id_format {
            Some(f) => s.push_str(&format!(r#"<saml:NameID Format="{}">{}</saml:NameID>"#, esc(f), esc(name_id))),
            None => s.push_str(&format!("<saml:NameID>{}</saml:NameID>", esc(name_id))),
        }
    }
    s.push_str(&format!(r#"<saml:SubjectConfirmation Method="{BEARER}"><saml:SubjectConfirmationData"#));
    if let Some(irt) = &p.in_response_to {
        s.push_str(&format!(r#" InResponseTo="{}""#, esc(irt)));
    }
    s.push_str(&format!(r#" NotOnOrAfter="{}""#, instant(p.subject_conf_not_on_or_after)));
    if let Some(r) = &p.recipient {
        s.push_str(&format!(r#" Recipient="{}""#, esc(r)));
    }
    s.push_str("/></saml:SubjectConfirmation></saml:Subject>");
    if p.include_conditions {
        s.push_str(&format!(
            r#"<saml:Conditions NotBefore="{}" NotOnOrAfter="{}">"#,
            instant(p.not_before),
            instant(p.not_on_or_after)
        ));
        if let Some(a) = &p.audience {
            s.push_str(&format!(
                "<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>",
                esc(a)
            ));
        }
        s.push_str("</saml:Conditions>");
    }
    s.push_str(&format!(r#"<saml:AuthnStatement AuthnInstant="{}""#, instant(p.authn_instant)));
    if let Some(si) = &p.session_index {
        s.push_str(&format!(r#" SessionIndex="{}""#, esc(si)));
    }
    s.push_str(&format!(
        "><saml:AuthnContext><saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>",
        esc(&p.authn_context)
    ));
    if !p.attributes.is_empty() {
        s.push_str("<saml:AttributeStatement>");
        for (name, values) in &p.attributes {
            let format = if name.contains(':') { ATTRNAME_URI } else { ATTRNAME_BASIC };
            s.push_str(&format!(r#"<saml:Attribute Name="{}" NameFormat="{}">"#, esc(name), format));
            for v in values {
                s.push_str(&format!(r#"<saml:AttributeValue xsi:type="xs:string">{}</saml:AttributeValue>"#, esc(v)));
            }
            s.push_str("</saml:Attribute>");
        }
        s.push_str("</saml:AttributeStatement>");
    }
    s.push_str("</saml:Assertion>");
    s
}

fn unsigned_response(p: &ResponseParams, inner: &str) -> String {
    let mut s = format!(
        r#"<samlp:Response xmlns:samlp="{}" xmlns:saml="{}" ID="{}" Version="2.0" IssueInstant="{}""#,
        NS_PROTOCOL,
        NS_ASSERTION,
        esc(&p.response_id),
        instant(p.issue_instant)
    );
    if let Some(d) = &p.destination {
        s.push_str(&format!(r#" Destination="{}""#, esc(d)));
    }
    if let Some(irt) = &p.in_response_to {
        s.push_str(&format!(r#" InResponseTo="{}""#, esc(irt)));
    }
    s.push('>');
    if let Some(i) = &p.response_issuer {
        s.push_str(&format!("<saml:Issuer>{}</saml:Issuer>", esc(i)));
    }
    match &p.status {
        None => s.push_str(&format!(r#"<samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status>"#)),
        Some(st) => {
            s.push_str(&format!(r#"<samlp:Status><samlp:StatusCode Value="{}""#, esc(&st.code)));
            match &st.sub_code {
                Some(sub) => s.push_str(&format!(r#"><samlp:StatusCode Value="{}"/></samlp:StatusCode>"#, esc(sub))),
                None => s.push_str("/>"),
            }
            if let Some(m) = &st.message {
                s.push_str(&format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", esc(m)));
            }
            s.push_str("</samlp:Status>");
        }
    }
    s.push_str(strip_decl(inner));
    s.push_str("</samlp:Response>");
    s
}

/// (byte offset just past the root start tag, value of its ID attribute).
fn root_start_tag(body: &str) -> Result<(usize, String), String> {
    let start = body.find('<').ok_or("no root element")?;
    let end = start + body[start..].find('>').ok_or("unterminated root start tag")? + 1;
    let tag = &body[start..end];
    let at = tag.find(" ID=\"").ok_or("root element has no ID")? + " ID=\"".len();
    let len = tag[at..].find('"').ok_or("unterminated ID")?;
    Ok((end, tag[at..at + len].to_owned()))
}

/// Drop a leading `<?xml ...?>` declaration and surrounding whitespace.
fn strip_decl(xml: &str) -> &str {
    let t = xml.trim_start();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return t[end + 2..].trim_start();
        }
    }
    t
}

/// `xs:dateTime` in UTC, seconds precision.
pub fn instant(unix: i64) -> String {
    match chrono::DateTime::from_timestamp(unix, 0) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => "1970-01-01T00:00:00Z".to_owned(),
    }
}

/// Escape text or an attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `_` + 40 hex digits (160 random bits), an NCName.
pub fn random_id() -> String {
    let mut buf = [0u8; 20];
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        // Never expected; keep IDs unique within the process anyway.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        return format!("_{t:032x}{n:08x}");
    }
    format!("_{}", hex(&buf))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, ReduceMode};

    const IDP: &str = "https://idp.fixture.test/saml";
    const SP: &str = "https://sp.test/metadata";
    const ACS: &str = "https://sp.test/acs";
    const NOW: i64 = 1_767_225_600;

    fn params(sign: Sign) -> ResponseParams {
        let mut p = ResponseParams::new(IDP, SP, ACS, Some("lgn_x"), "u-1001", "alice@example.com", NOW);
        p.sign = sign;
        p
    }

    fn verify(xml: &str, cert_der: &[u8], allowed: &[AllowedSignatureAlgorithm]) -> Result<String, String> {
        let certs = [CertificateDer::from(cert_der.to_vec())];
        Crypto::reduce_xml_to_signed_with_allowed_algorithms(xml, &certs, ReduceMode::PreDigest, Some(allowed))
            .map_err(|e| format!("{e:?}"))
    }

    const SHA256: &[AllowedSignatureAlgorithm] = &[AllowedSignatureAlgorithm::RsaSha256];

    #[test]
    fn signed_response_verifies_and_covers_the_response() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let p = params(Sign::Response);
        let xml = idp.response(&p).unwrap();
        let signed = verify(&xml, idp.cert_der(), SHA256).unwrap();
        assert!(signed.starts_with("<samlp:Response"), "{signed}");
        assert!(signed.contains("u-1001"));
        assert!(signed.contains(&p.assertion_id));
        // Placement: right after the Response Issuer.
        let after_issuer = xml.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
        assert!(xml[after_issuer..].starts_with("<ds:Signature"), "{xml}");
    }

    #[test]
    fn signed_assertion_verifies_and_covers_the_assertion() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let p = params(Sign::Assertion);
        let xml = idp.response(&p).unwrap();
        let signed = verify(&xml, idp.cert_der(), SHA256).unwrap();
        assert!(signed.starts_with("<saml:Assertion"), "{signed}");
        assert!(signed.contains(&format!("ID=\"{}\"", p.assertion_id)));
        let a = xml.find("<saml:Assertion").unwrap();
        let after_issuer = a + xml[a..].find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
        assert!(xml[after_issuer..].starts_with("<ds:Signature"), "{xml}");
    }

    #[test]
    fn both_signatures_verify() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let xml = idp.response(&params(Sign::Both)).unwrap();
        assert_eq!(xml.matches("<ds:SignatureValue>").count(), 2);
        // PreDigest with two references returns the Response's.
        let signed = verify(&xml, idp.cert_der(), SHA256).unwrap();
        assert!(signed.starts_with("<samlp:Response"), "{signed}");
        // The Assertion's own signature verifies on its own too.
        let a = xml.find("<saml:Assertion").unwrap();
        let e = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
        let signed_a = verify(&xml[a..e], idp.cert_der(), SHA256).unwrap();
        assert!(signed_a.starts_with("<saml:Assertion"));
    }

    #[test]
    fn signing_is_deterministic() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let p = params(Sign::Both);
        assert_eq!(idp.response(&p).unwrap(), idp.response(&p).unwrap());
    }

    #[test]
    fn tampering_and_other_keys_fail() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let xml = idp.response(&params(Sign::Response)).unwrap();
        assert!(verify(&xml.replace("u-1001", "u-1002"), idp.cert_der(), SHA256).is_err());
        let evil = FixtureIdp::untrusted(IDP).unwrap();
        let xml = evil.response(&params(Sign::Response)).unwrap();
        assert!(verify(&xml, idp.cert_der(), SHA256).is_err());
        assert!(verify(&xml, evil.cert_der(), SHA256).is_ok());
    }

    #[test]
    fn sha1_is_rejected_when_not_allowed() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let mut p = params(Sign::Response);
        p.sig_alg = SigAlg::RsaSha1;
        let xml = idp.response(&p).unwrap();
        assert!(xml.contains("xmldsig#rsa-sha1"));
        assert!(verify(&xml, idp.cert_der(), SHA256).is_err());
        // Verifies when SHA-1 is allowed (no allow-list).
        let certs = [CertificateDer::from(idp.cert_der().to_vec())];
        assert!(Crypto::reduce_xml_to_signed(&xml, &certs, ReduceMode::PreDigest).is_ok());
    }

    fn decrypt(xml: &str, sp_key_pem: &str) -> String {
        let grab = |from: usize, tag: &str| -> (usize, String) {
            let open = format!("<{tag}>");
            let s = from + xml[from..].find(&open).unwrap() + open.len();
            let e = s + xml[s..].find(&format!("</{tag}>")).unwrap();
            (e, xml[s..e].to_owned())
        };
        let alg_at = xml.find("<xenc:EncryptionMethod Algorithm=\"").unwrap() + 34;
        let alg = &xml[alg_at..alg_at + xml[alg_at..].find('"').unwrap()];
        let (after_key, ek) = grab(0, "xenc:CipherValue");
        let (_, cv) = grab(after_key, "xenc:CipherValue");
        let key = PKey::private_key_from_pem(sp_key_pem.as_bytes()).unwrap();
        let rsa = key.rsa().unwrap();
        let mut cek = vec![0u8; rsa.size() as usize];
        let n = rsa.private_decrypt(&STANDARD.decode(ek).unwrap(), &mut cek, Padding::PKCS1_OAEP).unwrap();
        cek.truncate(n);
        let cv = STANDARD.decode(cv).unwrap();
        let plain = if alg.contains("gcm") {
            let cipher = if cek.len() == 16 { Cipher::aes_128_gcm() } else { Cipher::aes_256_gcm() };
            let (iv, rest) = cv.split_at(12);
            let (ct, tag) = rest.split_at(rest.len() - 16);
            openssl::symm::decrypt_aead(cipher, &cek, Some(iv), &[], ct, tag).unwrap()
        } else {
            let cipher = if cek.len() == 16 { Cipher::aes_128_cbc() } else { Cipher::aes_256_cbc() };
            let (iv, ct) = cv.split_at(16);
            openssl::symm::decrypt(cipher, &cek, Some(iv), ct).unwrap()
        };
        String::from_utf8(plain).unwrap()
    }

    #[test]
    fn encryption_round_trips_for_every_algorithm() {
        let idp = FixtureIdp::test(IDP).unwrap();
        for alg in [DataAlg::Aes128Gcm, DataAlg::Aes256Gcm, DataAlg::Aes128Cbc, DataAlg::Aes256Cbc] {
            let mut p = params(Sign::Assertion);
            p.encrypt = Some(Encrypt { data_alg: alg, ..Encrypt::to(SP_CERT_PEM) });
            let xml = idp.response(&p).unwrap();
            assert!(!xml.contains("u-1001"));
            assert!(xml.contains(alg.uri()));
            let assertion = decrypt(&xml, SP_KEY_PEM);
            assert!(assertion.starts_with("<saml:Assertion"), "{assertion}");
            assert_eq!(assertion, idp.assertion_xml(&p).unwrap());
            // The decrypted Assertion carries a signature that verifies on its own.
            let signed = verify(&assertion, idp.cert_der(), SHA256).unwrap();
            assert!(signed.contains("u-1001"));
        }
    }

    #[test]
    fn seeded_encryption_is_deterministic_and_samael_decrypts_aes128() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let mut p = params(Sign::Assertion);
        p.encrypt = Some(Encrypt { seed: Some([7; 32]), data_alg: DataAlg::Aes128Gcm, ..Encrypt::to(SP_CERT_PEM) });
        let a = idp.response(&p).unwrap();
        assert_eq!(a, idp.response(&p).unwrap());
        // An independent decryptor (samael's, AES-128 only) reads it too.
        let resp: samael::schema::Response = a.parse().unwrap();
        let key = PKey::private_key_from_pem(SP_KEY_PEM.as_bytes()).unwrap();
        let assertion = resp.encrypted_assertion.unwrap().decrypt(&key).unwrap();
        assert_eq!(assertion.id, p.assertion_id);
    }

    #[test]
    fn metadata_carries_the_signing_certificate() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let md = idp.metadata_xml(Some("https://idp/sso/redirect"), Some("https://idp/sso/post"));
        let ed: samael::metadata::EntityDescriptor = md.parse().unwrap();
        assert_eq!(ed.entity_id.as_deref(), Some(IDP));
        assert!(md.contains(&idp.cert_b64()));
        assert!(md.contains("HTTP-Redirect") && md.contains("HTTP-POST"));
    }

    #[test]
    fn failure_status_without_assertion() {
        let idp = FixtureIdp::test(IDP).unwrap();
        let mut p = params(Sign::Response);
        p.include_assertion = false;
        p.status = Some(Status {
            code: "urn:oasis:names:tc:SAML:2.0:status:Responder".into(),
            sub_code: Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed".into()),
            message: Some("User <bob> & co".into()),
        });
        let xml = idp.response(&p).unwrap();
        assert!(!xml.contains("<saml:Assertion"));
        assert!(xml.contains("User &lt;bob&gt; &amp; co"));
        verify(&xml, idp.cert_der(), SHA256).unwrap();
    }

    #[test]
    fn post_form_field_is_base64_of_the_xml() {
        assert_eq!(post_form_fields("<a/>"), "PGEvPg==");
        assert_eq!(instant(NOW), "2026-01-01T00:00:00Z");
    }
}
