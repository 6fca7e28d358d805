//! The ACS input check: a base64 `SAMLResponse` becomes a [`ValidatedAssertion`] or a precise
//! [`SamlError`]. Pure apart from the XML libraries: no database, no clock (the caller passes `now`).
//!
//! Order of checks, and why:
//! 1. Size, base64, UTF-8, and no `<!DOCTYPE` / entity declarations anywhere (before any XML
//!    parser sees the bytes: no entity expansion, no external entities).
//! 2. Structure of the unsigned document: root `samlp:Response`; exactly one `Assertion` or
//!    `EncryptedAssertion` in the whole document, as a direct child of the Response. Any extra
//!    assertion anywhere (inside `Extensions`, `ds:Object`, a wrapper) is a signature-wrapping
//!    attempt.
//! 3. Status: a failure status is reported verbatim (it is usually unsigned; reporting it grants
//!    nothing).
//! 4. Signatures: algorithms allow-listed first (no SHA-1 unless the connection allows it), then
//!    xmlsec verifies every `ds:Signature` with the IdP's certificates and hands back the
//!    *pre-digest bytes* — exactly what was signed. Everything after this reads only those bytes
//!    (re-parsed), never the document the signature was found in.
//! 5. Encrypted assertions are decrypted (RSA-OAEP key transport; AES-GCM or AES-CBC content) and
//!    the decrypted assertion must itself be signed unless a verified Response signature covers it.
//! 6. Issuer, Conditions (required), Audience (required), time bounds with bounded skew, bearer
//!    SubjectConfirmation (Recipient = our ACS, NotOnOrAfter, InResponseTo), Destination.
use base64::Engine;
use roxmltree::{Document, Node};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};
use std::collections::BTreeMap;

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// Largest accepted SAMLResponse after base64 decoding.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Largest accepted base64 form field (with line breaks some IdPs add).
pub const MAX_RESPONSE_B64: usize = MAX_RESPONSE_BYTES / 3 * 4 + 16 * 1024;
/// Largest accepted clock skew.
pub const MAX_SKEW_SECS: i64 = 600;
const MAX_ATTRIBUTES: usize = 200;
const MAX_VALUES: usize = 1000;
const MAX_VALUE_LEN: usize = 4096;

/// Which request the response must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRequest<'a> {
    /// SP-initiated: InResponseTo must be this AuthnRequest ID (our LoginId).
    Id(&'a str),
    /// IdP-initiated (allowed by the connection): there must be no InResponseTo at all.
    Unsolicited,
}

/// What the response is checked against.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub idp_entity_id: &'a str,
    pub idp_certs_der: &'a [Vec<u8>],
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub allow_sha1: bool,
    pub skew_secs: i64,
    /// Unix seconds.
    pub now: i64,
    pub request: ExpectedRequest<'a>,
    /// PKCS#8 PEM of the SP's decryption key.
    pub decryption_key_pem: Option<&'a str>,
    pub require_encrypted: bool,
    /// Accept AES-CBC content encryption (off: AES-GCM only, which authenticates the ciphertext).
    pub allow_cbc: bool,
}

/// The statements of a verified assertion that fedgate uses.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidatedAssertion {
    pub assertion_id: String,
    /// Until when the assertion could be accepted (unix seconds, skew included): the replay
    /// cache keeps its ID at least that long.
    pub expires_at: i64,
    pub in_response_to: Option<String>,
    pub issuer: String,
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub authn_instant: Option<i64>,
    pub authn_context: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// How the assertion was protected: `response`, `assertion` or `response+assertion`, plus
    /// `encrypted`.
    pub protection: Vec<&'static str>,
}

impl std::fmt::Debug for ValidatedAssertion {
    // Personal data stays out of logs: only the shape is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedAssertion")
            .field("assertion_id", &self.assertion_id)
            .field("expires_at", &self.expires_at)
            .field("issuer", &self.issuer)
            .field("name_id_format", &self.name_id_format)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

/// Why a SAML response was refused. Each variant has a stable [`code`](SamlError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the request has no SAMLResponse")]
    Missing,
    #[error("the SAMLResponse is larger than {} KiB", MAX_RESPONSE_BYTES / 1024)]
    TooLarge,
    #[error("the SAMLResponse is malformed: {0}")]
    Malformed(String),
    #[error("the SAMLResponse contains a DTD or entity declaration, which is never allowed")]
    DtdForbidden,
    #[error("neither the Response nor the Assertion is signed")]
    SignatureMissing,
    #[error("the signature does not verify with the identity provider's certificates ({0})")]
    SignatureInvalid(String),
    #[error("the signature uses {0}, which this connection does not allow")]
    AlgorithmNotAllowed(String),
    #[error("the signed content is not the assertion being read ({0}): possible signature wrapping")]
    Wrapping(String),
    #[error("the identity provider answered with status {codes}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status { codes: String, message: Option<String> },
    #[error("the issuer was {got}, expected {expected}")]
    IssuerMismatch { got: String, expected: String },
    #[error("the assertion has no Conditions")]
    ConditionsMissing,
    #[error("the assertion's audience is {got}, expected {expected}")]
    AudienceMismatch { got: String, expected: String },
    #[error("the bearer confirmation's Recipient is {got}, expected {expected}")]
    RecipientMismatch { got: String, expected: String },
    #[error("the Response's Destination is {got}, expected {expected}")]
    DestinationMismatch { got: String, expected: String },
    #[error("the assertion expired at {0} (clock skew included)")]
    Expired(String),
    #[error("the assertion is not valid before {0} (clock skew included)")]
    NotYetValid(String),
    #[error("the response answers request {got}, which is not this sign-in ({expected})")]
    InResponseToMismatch { got: String, expected: String },
    #[error(
        "the identity provider sent an unsolicited response, and IdP-initiated sign-in is disabled for this connection"
    )]
    Unsolicited,
    #[error("the assertion {0} was already used")]
    Replay(String),
    #[error("the assertion has no usable subject: {0}")]
    SubjectMissing(String),
    #[error("the encrypted assertion cannot be decrypted: {0}")]
    Decryption(String),
    #[error("the assertion is not encrypted, and this connection requires encrypted assertions")]
    EncryptionRequired,
}

impl SamlError {
    pub fn code(&self) -> &'static str {
        match self {
            SamlError::Missing => "saml_response_missing",
            SamlError::TooLarge => "saml_response_too_large",
            SamlError::Malformed(_) => "saml_response_malformed",
            SamlError::DtdForbidden => "saml_dtd_forbidden",
            SamlError::SignatureMissing => "saml_signature_missing",
            SamlError::SignatureInvalid(_) => "saml_signature_invalid",
            SamlError::AlgorithmNotAllowed(_) => "saml_signature_algorithm_not_allowed",
            SamlError::Wrapping(_) => "saml_signature_wrapping",
            SamlError::Status { .. } => "saml_status_not_success",
            SamlError::IssuerMismatch { .. } => "saml_issuer_mismatch",
            SamlError::ConditionsMissing => "saml_conditions_missing",
            SamlError::AudienceMismatch { .. } => "saml_audience_mismatch",
            SamlError::RecipientMismatch { .. } => "saml_recipient_mismatch",
            SamlError::DestinationMismatch { .. } => "saml_destination_mismatch",
            SamlError::Expired(_) => "saml_expired",
            SamlError::NotYetValid(_) => "saml_not_yet_valid",
            SamlError::InResponseToMismatch { .. } => "saml_in_response_to_mismatch",
            SamlError::Unsolicited => "saml_unsolicited_response",
            SamlError::Replay(_) => "saml_replay",
            SamlError::SubjectMissing(_) => "saml_subject_missing",
            SamlError::Decryption(_) => "saml_decryption_failed",
            SamlError::EncryptionRequired => "saml_encryption_required",
        }
    }

    /// What the administrator of connection `conn` should do about it.
    pub fn fix(&self, conn: &str) -> String {
        match self {
            SamlError::Missing | SamlError::Malformed(_) => format!("Check that the identity provider posts a SAML 2.0 Response to the ACS URL of connection {conn} (HTTP-POST binding)."),
            SamlError::TooLarge => "Send fewer or shorter attributes (large group lists are the usual cause), or send groups through SCIM instead.".into(),
            SamlError::DtdForbidden | SamlError::Wrapping(_) | SamlError::Replay(_) => "No configuration change: this response was forged, altered or replayed. Investigate where it came from if it repeats.".into(),
            SamlError::SignatureMissing => format!("Configure the identity provider to sign the assertion or the response (fedgate accepts either) for connection {conn}."),
            SamlError::SignatureInvalid(_) => format!("The identity provider signed with a certificate connection {conn} does not trust. If the IdP rotated its signing certificate, refresh the metadata or add the new certificate to the connection."),
            SamlError::AlgorithmNotAllowed(_) => "Configure the identity provider to sign with RSA-SHA256 (or stronger) and SHA-256 digests; only if impossible, allow SHA-1 on the connection (allow_sha1).".into(),
            SamlError::Status { .. } => "Read the status at the identity provider: usually the person is not assigned to the application or failed to authenticate.".into(),
            SamlError::IssuerMismatch { .. } => format!("Check the IdP entity ID of connection {conn}: it must equal the Issuer the identity provider sends (refresh the metadata)."),
            SamlError::ConditionsMissing | SamlError::AudienceMismatch { .. } => format!("Set the Audience (SP entity ID / Identifier) at the identity provider to the SP entity ID of connection {conn}."),
            SamlError::RecipientMismatch { .. } | SamlError::DestinationMismatch { .. } => format!("Set the ACS URL (Reply URL / Single sign-on URL) at the identity provider to the ACS URL of connection {conn}."),
            SamlError::Expired(_) | SamlError::NotYetValid(_) => "Check the clocks of the identity provider and of fedgate (NTP); if the person took long at the IdP, sign in again. The allowed skew is the connection's clock_skew_secs.".into(),
            SamlError::InResponseToMismatch { .. } => "Start the sign-in again from the application; a response to an old or another browser's request cannot be used.".into(),
            SamlError::Unsolicited => format!("Start the sign-in from the application, or enable IdP-initiated sign-in on connection {conn} (idp_initiated.enabled) with a default app."),
            SamlError::SubjectMissing(_) => format!("Configure a persistent NameID (or a unique, stable subject attribute) at the identity provider for connection {conn}; transient NameIDs change at every sign-in."),
            SamlError::Decryption(_) => format!("Give the identity provider the current SP certificate of connection {conn} (from its SP metadata) for assertion encryption, with RSA-OAEP and AES-GCM (or AES-CBC unless require_aes_gcm is set), and have it sign the assertion (or the whole response)."),
            SamlError::EncryptionRequired => format!("Enable assertion encryption at the identity provider with the SP certificate of connection {conn}, or turn off require_encrypted_assertions."),
        }
    }
}

/// Decodes the base64 form field, checking size and refusing DTDs before any XML parser runs.
pub fn decode(saml_response_b64: &str) -> Result<String, SamlError> {
    if saml_response_b64.trim().is_empty() {
        return Err(SamlError::Missing);
    }
    if saml_response_b64.len() > MAX_RESPONSE_B64 {
        return Err(SamlError::TooLarge);
    }
    let compact: String = saml_response_b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| SamlError::Malformed("not valid base64".into()))?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::TooLarge);
    }
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::Malformed("not UTF-8".into()))?;
    // UTF-8 XML 1.0 only, no DTD, no bytes the two XML parsers would read apart: checked here,
    // before any parser sees the document.
    let checked = crate::xml::check_bytes(&xml)?;
    if checked.len() != xml.len() {
        return Ok(checked.to_string());
    }
    Ok(xml)
}

/// Reads the InResponseTo of an unverified response, to find the sign-in it claims to answer.
/// Only a lookup key: everything is checked again on the signed bytes.
pub fn peek_in_response_to(xml: &str) -> Result<Option<String>, SamlError> {
    let doc = parse(crate::xml::check_bytes(xml)?)?;
    let root = doc.root_element();
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(SamlError::Malformed("the document is not a SAML 2.0 Response".into()));
    }
    Ok(root.attribute("InResponseTo").map(str::to_string))
}

fn parse(xml: &str) -> Result<Document<'_>, SamlError> {
    crate::xml::parse(xml)
}

/// Whether `n` is the element `{ns}local`.
pub fn is(n: Node, ns: &str, local: &str) -> bool {
    n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
}

/// The first child element `{ns}local` of `n`.
pub fn child<'a, 'i>(n: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(*c, ns, local))
}

fn children<'a, 'i>(n: Node<'a, 'i>, ns: &'a str, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| is(*c, ns, local))
}

/// The whole text content of an element: every descendant text node, concatenated, so that a
/// comment (`alice@example.com<!---->.evil.test`) cannot cut a value short.
fn text(n: Node) -> String {
    n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect::<String>().trim().to_string()
}

/// Verifies the response and returns the assertion's statements.
pub fn validate_response(saml_response_b64: &str, e: &Expectations) -> Result<ValidatedAssertion, SamlError> {
    let xml = decode(saml_response_b64)?;
    validate_xml(&xml, e)
}

/// [`validate_response`] on already-decoded XML.
pub fn validate_xml(xml: &str, e: &Expectations) -> Result<ValidatedAssertion, SamlError> {
    // Both parsers (roxmltree here, libxml2 in xmlsec) must read one and the same document.
    let xml = crate::xml::check_bytes(xml)?;
    let doc = crate::xml::parse(xml)?;
    crate::xml::libxml_agrees(xml, &doc)?;
    check_ids(&doc)?;
    let root = doc.root_element();
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(SamlError::Malformed("the document is not a SAML 2.0 Response".into()));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(SamlError::Malformed("the Response is not SAML version 2.0".into()));
    }
    let response_id = root.attribute("ID").unwrap_or_default().to_string();

    // Status first: a failure has no assertion, and is usually unsigned.
    check_status(root)?;

    // Exactly one assertion in the whole document, directly under the Response.
    let assertions: Vec<Node> = root
        .descendants()
        .filter(|n| is(*n, NS_ASSERTION, "Assertion") || is(*n, NS_ASSERTION, "EncryptedAssertion"))
        .collect();
    match assertions.as_slice() {
        [] => return Err(SamlError::Malformed("the Response has no assertion".into())),
        [one] if one.parent() == Some(root) => {}
        [_] => return Err(SamlError::Wrapping("the assertion is not a direct child of the Response".into())),
        _ => return Err(SamlError::Wrapping(format!("the document holds {} assertions", assertions.len()))),
    }
    let encrypted = is(assertions[0], NS_ASSERTION, "EncryptedAssertion");
    if e.require_encrypted && !encrypted {
        return Err(SamlError::EncryptionRequired);
    }
    let response_signed = child(root, NS_DSIG, "Signature").is_some();
    // Signatures may stand only as the direct child of the Response or of the Assertion, one
    // each, and each must have the shape checked by `check_signature` (one same-document
    // reference to its parent, allow-listed algorithms and transforms, nothing to load).
    let signatures: Vec<Node> = root.descendants().filter(|n| is(*n, NS_DSIG, "Signature")).collect();
    for s in &signatures {
        let parent_ok = s.parent().is_some_and(|p| p == root || p == assertions[0]);
        if !parent_ok {
            return Err(SamlError::Wrapping("a signature stands outside the Response and the Assertion".into()));
        }
        check_signature(*s, e.allow_sha1)?;
    }
    if children(root, NS_DSIG, "Signature").count() > 1 || children(assertions[0], NS_DSIG, "Signature").count() > 1 {
        return Err(SamlError::Wrapping("an element carries more than one signature".into()));
    }

    // What the verified bytes say about the Response (only when the Response itself is signed).
    let mut protection = Vec::new();
    let signed_response: Option<String> = if response_signed {
        let pre = verify(xml, e)?;
        protection.push("response");
        Some(pre)
    } else {
        None
    };
    let signed_response_doc = match &signed_response {
        Some(p) => Some(parse(p)?),
        None => None,
    };
    let response_view = match &signed_response_doc {
        Some(d) => {
            let r = d.root_element();
            if !is(r, NS_PROTOCOL, "Response") || r.attribute("ID").unwrap_or_default() != response_id {
                return Err(SamlError::Wrapping("the Response signature covers another element".into()));
            }
            r
        }
        None => root,
    };

    // The assertion bytes we will trust.
    let assertion_doc_src: String = if encrypted {
        let enc = match &signed_response_doc {
            Some(d) => child(d.root_element(), NS_ASSERTION, "EncryptedAssertion")
                .ok_or_else(|| SamlError::Wrapping("the signed Response has no EncryptedAssertion".into()))?,
            None => assertions[0],
        };
        let key = e
            .decryption_key_pem
            .ok_or_else(|| SamlError::Decryption("the connection has no SP decryption key".into()))?;
        let authenticated = signed_response_doc.is_some();
        crate::decrypt::check_content_algorithm(enc, e.allow_cbc)?;
        match decrypted_assertion(enc, key, e, authenticated) {
            Ok((pre, signed_inside)) => {
                protection.push("encrypted");
                if signed_inside {
                    protection.push("assertion");
                }
                pre
            }
            // Without a verified Response signature around it, the ciphertext is the
            // attacker's: every failure from the decryption to the verified inner signature
            // reads the same (code, message; the caller evens out the time), so nothing can be
            // learnt about the plaintext (no padding oracle on AES-CBC).
            Err(err) if !authenticated => {
                tracing::debug!(reason = %err.code(), "unauthenticated encrypted assertion refused");
                return Err(crate::decrypt::undecryptable());
            }
            Err(err) => return Err(err),
        }
    } else if let Some(pre) = &signed_response {
        // samael verified every signature in the document, the assertion's included.
        if child(assertions[0], NS_DSIG, "Signature").is_some() {
            protection.push("assertion");
        }
        pre.clone()
    } else if child(assertions[0], NS_DSIG, "Signature").is_some() {
        let pre = verify_assertion(xml, e)?;
        protection.push("assertion");
        pre
    } else {
        return Err(SamlError::SignatureMissing);
    };

    let adoc = parse(&assertion_doc_src)?;
    let a = find_assertion(&adoc)?;
    // The assertion we read must be the one in the document (same ID): no moved or swapped copy.
    if !encrypted {
        let outer_id = assertions[0].attribute("ID").unwrap_or_default();
        if a.attribute("ID").unwrap_or_default() != outer_id {
            return Err(SamlError::Wrapping("the signed assertion is not the assertion in the Response".into()));
        }
    }
    check_statements(response_view, response_signed, a, e, protection)
}

/// Decrypts an EncryptedAssertion and returns the assertion bytes to trust and whether the
/// assertion carried its own (verified) signature. Unless `authenticated` (a verified Response
/// signature covers the ciphertext), the decrypted assertion must be signed itself.
fn decrypted_assertion(
    enc: Node,
    key: &str,
    e: &Expectations,
    authenticated: bool,
) -> Result<(String, bool), SamlError> {
    let plain = crate::decrypt::decrypt_assertion(enc, key)?;
    // The plaintext may use prefixes declared outside it: declare them on its root.
    let in_scope: Vec<(Option<String>, String)> =
        enc.namespaces().map(|ns| (ns.name().map(str::to_string), ns.uri().to_string())).collect();
    let plain = add_declarations(strip_xml_declaration(&plain), &in_scope);
    let signed_inside = {
        // The decrypted assertion is read by both parsers too (xmlsec verifies it).
        let checked = crate::xml::check_bytes(&plain)?;
        let d = crate::xml::parse(checked)?;
        crate::xml::libxml_agrees(checked, &d)?;
        check_ids(&d)?;
        let a = d.root_element();
        if !is(a, NS_ASSERTION, "Assertion") {
            return Err(SamlError::Malformed("the decrypted content is not an Assertion".into()));
        }
        if a.descendants().filter(|n| is(*n, NS_ASSERTION, "Assertion")).count() != 1 {
            return Err(SamlError::Wrapping("the decrypted content holds more than one assertion".into()));
        }
        let sigs: Vec<Node> = a.descendants().filter(|n| is(*n, NS_DSIG, "Signature")).collect();
        for s in &sigs {
            if s.parent() != Some(a) {
                return Err(SamlError::Wrapping("a signature stands outside the decrypted Assertion".into()));
            }
            check_signature(*s, e.allow_sha1)?;
        }
        if sigs.len() > 1 {
            return Err(SamlError::Wrapping("the decrypted Assertion carries more than one signature".into()));
        }
        !sigs.is_empty()
    };
    if signed_inside {
        Ok((verify_assertion(&plain, e)?, true))
    } else if authenticated {
        Ok((plain, false))
    } else {
        Err(SamlError::SignatureMissing)
    }
}

/// Every `ID` attribute value is unique and plain (an NCName), and no element carries an ID
/// in another namespace (`xml:id`, `p:ID`): libxml2 and samael would resolve `#id` references
/// to such elements while fedgate's checks read only the plain `ID`.
fn check_ids(doc: &Document) -> Result<(), SamlError> {
    let mut seen = std::collections::HashSet::new();
    for n in doc.descendants().filter(Node::is_element) {
        for a in n.attributes() {
            let named_id = a.name() == "ID" || a.name().eq_ignore_ascii_case("id");
            match a.namespace() {
                Some(_) if named_id => {
                    return Err(SamlError::Wrapping(format!("an element carries a namespaced {} attribute", a.name())))
                }
                None if a.name() == "ID" => {
                    if !is_ncname(a.value()) {
                        return Err(SamlError::Malformed("an ID attribute is not a plain name".into()));
                    }
                    if !seen.insert(a.value()) {
                        return Err(SamlError::Wrapping(format!("the ID {} is used twice", shown(a.value()))));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// An ASCII NCName: a letter or `_`, then letters, digits, `_`, `-`, `.`; at most 256 bytes.
fn is_ncname(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// The one assertion of a verified document: the root itself, or the Response's only child
/// assertion.
fn find_assertion<'a, 'i>(d: &'a Document<'i>) -> Result<Node<'a, 'i>, SamlError> {
    let r = d.root_element();
    if is(r, NS_ASSERTION, "Assertion") {
        return Ok(r);
    }
    let mut found = r.descendants().filter(|n| is(*n, NS_ASSERTION, "Assertion"));
    match (found.next(), found.next()) {
        (Some(a), None) if a.parent() == Some(r) => Ok(a),
        (None, _) => Err(SamlError::Malformed("no assertion in the signed content".into())),
        _ => Err(SamlError::Wrapping("the signed content holds more than one assertion".into())),
    }
}

/// `xml` without a leading BOM, whitespace and `<?xml …?>` declaration.
pub fn strip_xml_declaration(xml: &str) -> &str {
    let xml = xml.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map(|(_, r)| r.trim_start()).unwrap_or_default(),
        None => xml,
    }
}

/// Adds the namespace declarations of `ns` that the start tag of `xml`'s root does not write
/// itself, so a fragment taken out of its document parses (and canonicalizes) alone.
fn add_declarations(xml: &str, ns: &[(Option<String>, String)]) -> String {
    let start_tag_end = xml.find('>').unwrap_or(xml.len());
    let start_tag = &xml[..start_tag_end];
    let name_end = start_tag.find(|c: char| c.is_whitespace() || c == '/').unwrap_or(start_tag.len());
    let mut extra = String::new();
    for (prefix, uri) in ns {
        let attr = match prefix.as_deref() {
            Some("xml") => continue,
            Some(p) => format!("xmlns:{p}="),
            None => "xmlns=".to_string(),
        };
        if !start_tag.contains(&attr) {
            extra.push(' ');
            extra.push_str(&attr);
            extra.push('"');
            extra.push_str(&crate::text::escape(uri));
            extra.push('"');
        }
    }
    format!("{}{}{}", &xml[..name_end], extra, &xml[name_end..])
}

fn check_status(root: Node) -> Result<(), SamlError> {
    let status = child(root, NS_PROTOCOL, "Status").ok_or_else(|| SamlError::Malformed("no Status".into()))?;
    let mut codes = Vec::new();
    let mut cur = child(status, NS_PROTOCOL, "StatusCode");
    while let Some(c) = cur {
        codes.push(c.attribute("Value").unwrap_or_default().to_string());
        cur = child(c, NS_PROTOCOL, "StatusCode");
        if codes.len() > 4 {
            break;
        }
    }
    if codes.first().map(String::as_str) == Some(STATUS_SUCCESS) {
        return Ok(());
    }
    let message = child(status, NS_PROTOCOL, "StatusMessage").map(text).map(|m| m.chars().take(500).collect());
    Err(SamlError::Status {
        codes: if codes.is_empty() { "(none)".into() } else { codes.join(" / ").chars().take(500).collect() },
        message,
    })
}

const SIG_OK: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SIG_SHA1: [&str; 2] =
    ["http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"];
const DIGEST_OK: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// Transforms a Reference may list: the enveloped-signature transform and exclusive c14n.
const TRANSFORMS_OK: [&str; 3] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
];
/// Canonicalization of SignedInfo: exclusive (with or without comments) or inclusive c14n 1.0.
const C14N_OK: [&str; 3] = [
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
];
const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// The element children of `n`.
fn elements<'a, 'i>(n: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    n.children().filter(Node::is_element).collect()
}

fn shape(why: &str) -> SamlError {
    SamlError::Wrapping(format!("the signature is not of the accepted form ({why})"))
}

/// Checks a `ds:Signature` before xmlsec sees it, so that verification can neither load
/// anything nor cost more than a fixed amount:
/// - children: `SignedInfo`, `SignatureValue`, an optional `KeyInfo` (X509Data, KeyName or
///   KeyValue only: no RetrievalMethod, no `Object`, hence no `Manifest`);
/// - `SignedInfo`: an allow-listed c14n method, an allow-listed signature method (no SHA-1
///   unless allowed), and exactly one `Reference`;
/// - the `Reference` URI is `#` followed by the ID of the element the Signature is a direct
///   child of: no XPointer, no other same-document form, no `http:`/`file:`/relative URI;
/// - at most two transforms, each the enveloped-signature transform or exclusive c14n, and an
///   allow-listed digest.
fn check_signature(sig: Node, allow_sha1: bool) -> Result<(), SamlError> {
    let parent = sig.parent_element().ok_or_else(|| shape("no parent"))?;
    let parent_id =
        parent.attribute("ID").filter(|id| is_ncname(id)).ok_or_else(|| shape("the signed element has no ID"))?;
    let kids = elements(sig);
    let (si, rest) = kids.split_first().ok_or_else(|| SamlError::SignatureInvalid("no SignedInfo".into()))?;
    if !is(*si, NS_DSIG, "SignedInfo") {
        return Err(SamlError::SignatureInvalid("no SignedInfo".into()));
    }
    match rest {
        [sv] if is(*sv, NS_DSIG, "SignatureValue") => {}
        [sv, ki] if is(*sv, NS_DSIG, "SignatureValue") && is(*ki, NS_DSIG, "KeyInfo") => {
            for k in elements(*ki) {
                let ok = k.tag_name().namespace() == Some(NS_DSIG)
                    && matches!(k.tag_name().name(), "X509Data" | "KeyName" | "KeyValue");
                if !ok {
                    return Err(shape(&format!("KeyInfo holds {}", k.tag_name().name())));
                }
            }
        }
        _ => return Err(shape("only SignedInfo, SignatureValue and KeyInfo may appear")),
    }
    let si_kids = elements(*si);
    let [c14n, method, r] = si_kids.as_slice() else {
        return Err(shape("SignedInfo must hold a c14n method, a signature method and one reference"));
    };
    if !is(*c14n, NS_DSIG, "CanonicalizationMethod") || !is(*method, NS_DSIG, "SignatureMethod") {
        return Err(shape("SignedInfo must hold a c14n method, a signature method and one reference"));
    }
    if !is(*r, NS_DSIG, "Reference") {
        let n = si_kids.iter().filter(|k| is(**k, NS_DSIG, "Reference")).count();
        return Err(SamlError::Wrapping(format!("the signature has {n} references, expected 1")));
    }
    let alg = method.attribute("Algorithm").unwrap_or_default();
    if !(SIG_OK.contains(&alg) || (allow_sha1 && SIG_SHA1.contains(&alg))) {
        return Err(SamlError::AlgorithmNotAllowed(if alg.is_empty() { "no algorithm".into() } else { shown(alg) }));
    }
    if !elements(*method).is_empty() {
        return Err(shape("the signature method has parameters"));
    }
    let c14n_alg = c14n.attribute("Algorithm").unwrap_or_default();
    if !C14N_OK.contains(&c14n_alg) {
        return Err(SamlError::AlgorithmNotAllowed(format!("canonicalization {}", shown(c14n_alg))));
    }
    check_c14n_params(*c14n)?;
    // The one reference: to the signed element itself.
    let uri = r.attribute("URI").unwrap_or_default();
    if uri.strip_prefix('#') != Some(parent_id) {
        return Err(SamlError::Wrapping(
            "the signature reference is not the ID of the element the signature stands in".into(),
        ));
    }
    let mut r_kids = elements(*r).into_iter().peekable();
    if let Some(ts) = r_kids.next_if(|k| is(*k, NS_DSIG, "Transforms")) {
        let transforms = elements(ts);
        if transforms.is_empty() || transforms.len() > 2 {
            return Err(shape("a reference has one or two transforms"));
        }
        for t in transforms {
            let alg = t.attribute("Algorithm").unwrap_or_default();
            if !is(t, NS_DSIG, "Transform") || !TRANSFORMS_OK.contains(&alg) {
                return Err(SamlError::AlgorithmNotAllowed(format!("transform {}", shown(alg))));
            }
            check_c14n_params(t)?;
        }
    }
    let digest = r_kids.next().filter(|d| is(*d, NS_DSIG, "DigestMethod")).ok_or_else(|| shape("no DigestMethod"))?;
    let dalg = digest.attribute("Algorithm").unwrap_or_default();
    if !(DIGEST_OK.contains(&dalg) || (allow_sha1 && dalg == DIGEST_SHA1)) {
        return Err(SamlError::AlgorithmNotAllowed(if dalg.is_empty() { "no digest".into() } else { shown(dalg) }));
    }
    if !r_kids.next().is_some_and(|d| is(d, NS_DSIG, "DigestValue")) || r_kids.next().is_some() {
        return Err(shape("a reference ends with its DigestValue"));
    }
    Ok(())
}

/// A c14n method or transform may only carry exclusive c14n's `InclusiveNamespaces`.
fn check_c14n_params(n: Node) -> Result<(), SamlError> {
    match elements(n).as_slice() {
        [] => Ok(()),
        [p] if is(*p, NS_EXC_C14N, "InclusiveNamespaces") && elements(*p).is_empty() => Ok(()),
        _ => Err(shape("a transform has parameters")),
    }
}

/// The trusted certificates, the one the signature names in its KeyInfo first (when trusted):
/// during a rotation this saves a failed verification. The embedded certificate is only a hint
/// for the order; trust comes from the connection's list alone.
fn certs(xml: &str, e: &Expectations) -> Vec<CertificateDer> {
    let mut out: Vec<CertificateDer> = e.idp_certs_der.iter().map(|c| CertificateDer::from(c.clone())).collect();
    if out.len() > 1 {
        let hint = xml
            .find("X509Certificate>")
            .map(|i| &xml[i + "X509Certificate>".len()..])
            .and_then(|rest| rest.split('<').next())
            .map(|b64| b64.chars().filter(|c| !c.is_ascii_whitespace()).collect::<String>())
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).ok());
        if let Some(h) = hint {
            if let Some(i) = out.iter().position(|c| c.der_data() == h.as_slice()) {
                let c = out.remove(i);
                out.insert(0, c);
            }
        }
    }
    out
}

/// Verifies every signature of `xml` and returns the pre-digest bytes: exactly what was signed.
fn verify(xml: &str, e: &Expectations) -> Result<String, SamlError> {
    crate::xml::harden_libraries();
    if e.idp_certs_der.is_empty() {
        return Err(SamlError::SignatureInvalid("the connection trusts no certificate".into()));
    }
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(xml, &certs(xml, e), ReduceMode::PreDigest, None).map_err(
        |err| {
            // The library's text stays in the server log (debug): people and traces get our words.
            tracing::debug!(detail = %crypto_error(&err), "SAML signature verification failed");
            SamlError::SignatureInvalid("no trusted certificate verifies it".into())
        },
    )
}

/// Verifies an assertion standing alone and returns its pre-digest.
fn verify_assertion(xml: &str, e: &Expectations) -> Result<String, SamlError> {
    let pre = verify(xml, e)?;
    let d = parse(&pre)?;
    if !is(d.root_element(), NS_ASSERTION, "Assertion") {
        return Err(SamlError::Wrapping("the assertion signature covers another element".into()));
    }
    Ok(pre)
}

/// samael's errors, flattened to text (the source is not always `Send + Sync`).
fn crypto_error(e: &samael::crypto::CryptoError) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
        depth += 1;
        if depth > 4 {
            break;
        }
    }
    s.chars().take(300).collect()
}

/// Parses an `xs:dateTime` (`2026-01-01T00:00:00Z`, optional fraction, `Z` or `±hh:mm`) into
/// unix seconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if rest.starts_with('+') {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (yy, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn instant_attr(n: Node, name: &str) -> Result<Option<i64>, SamlError> {
    match n.attribute(name) {
        None => Ok(None),
        Some(v) => parse_instant(v).map(Some).ok_or_else(|| {
            SamlError::Malformed(format!("{name} is not a valid dateTime: {}", v.chars().take(40).collect::<String>()))
        }),
    }
}

fn at(secs: i64) -> String {
    crate::text::rfc3339(secs)
}

fn check_statements(
    response: Node,
    response_signed: bool,
    a: Node,
    e: &Expectations,
    protection: Vec<&'static str>,
) -> Result<ValidatedAssertion, SamlError> {
    let skew = e.skew_secs.clamp(0, MAX_SKEW_SECS);
    if a.attribute("Version") != Some("2.0") {
        return Err(SamlError::Malformed("the Assertion is not SAML version 2.0".into()));
    }
    let assertion_id = a.attribute("ID").unwrap_or_default().to_string();
    if assertion_id.is_empty() || assertion_id.len() > 256 {
        return Err(SamlError::Malformed("the Assertion has no usable ID".into()));
    }
    // Issuer: the assertion's is required; the Response's, when present, must agree.
    let issuer = child(a, NS_ASSERTION, "Issuer").map(text).unwrap_or_default();
    if issuer != e.idp_entity_id {
        return Err(SamlError::IssuerMismatch { got: shown(&issuer), expected: e.idp_entity_id.into() });
    }
    if let Some(ri) = child(response, NS_ASSERTION, "Issuer").map(text) {
        if ri != e.idp_entity_id {
            return Err(SamlError::IssuerMismatch { got: shown(&ri), expected: e.idp_entity_id.into() });
        }
    }
    // Destination: required on a signed Response, and always equal to our ACS when present.
    match response.attribute("Destination") {
        Some(d) if d == e.acs_url => {}
        Some(d) => return Err(SamlError::DestinationMismatch { got: shown(d), expected: e.acs_url.into() }),
        None if response_signed => {
            return Err(SamlError::DestinationMismatch { got: "(none)".into(), expected: e.acs_url.into() })
        }
        None => {}
    }
    // InResponseTo on the Response.
    let resp_irt = response.attribute("InResponseTo");
    check_irt(resp_irt, e)?;

    // Conditions: required, time bounds, audience.
    let cond = child(a, NS_ASSERTION, "Conditions").ok_or(SamlError::ConditionsMissing)?;
    let mut expires_at: Option<i64> = None;
    if let Some(nb) = instant_attr(cond, "NotBefore")? {
        if e.now + skew < nb {
            return Err(SamlError::NotYetValid(at(nb - skew)));
        }
    }
    if let Some(noa) = instant_attr(cond, "NotOnOrAfter")? {
        if e.now >= noa + skew {
            return Err(SamlError::Expired(at(noa + skew)));
        }
        expires_at = Some(noa + skew);
    }
    let restrictions: Vec<Node> = children(cond, NS_ASSERTION, "AudienceRestriction").collect();
    if restrictions.is_empty() {
        return Err(SamlError::AudienceMismatch { got: "(none)".into(), expected: e.sp_entity_id.into() });
    }
    for r in restrictions {
        let auds: Vec<String> = children(r, NS_ASSERTION, "Audience").map(text).collect();
        if !auds.iter().any(|x| x == e.sp_entity_id) {
            let got = if auds.is_empty() { "(none)".to_string() } else { shown(&auds.join(", ")) };
            return Err(SamlError::AudienceMismatch { got, expected: e.sp_entity_id.into() });
        }
    }

    // Subject and a bearer confirmation that holds.
    let subject = child(a, NS_ASSERTION, "Subject").ok_or_else(|| SamlError::SubjectMissing("no Subject".into()))?;
    let bearers: Vec<Node> = children(subject, NS_ASSERTION, "SubjectConfirmation")
        .filter(|c| c.attribute("Method") == Some(CM_BEARER))
        .collect();
    if bearers.is_empty() {
        return Err(SamlError::SubjectMissing("no bearer SubjectConfirmation".into()));
    }
    let mut first_err: Option<SamlError> = None;
    let mut confirmed: Option<(Option<String>, Option<i64>)> = None;
    for b in bearers {
        match check_bearer(b, e, skew) {
            Ok(v) => {
                confirmed = Some(v);
                break;
            }
            Err(err) => {
                first_err.get_or_insert(err);
            }
        }
    }
    let (scd_irt, scd_noa) = match confirmed {
        Some(v) => v,
        None => {
            return Err(first_err.unwrap_or_else(|| SamlError::SubjectMissing("no valid bearer confirmation".into())))
        }
    };
    if let Some(n) = scd_noa {
        expires_at = Some(expires_at.map_or(n + skew, |x| x.min(n + skew)));
    }
    // For an SP-initiated login the assertion itself must name our request.
    if let ExpectedRequest::Id(id) = e.request {
        if scd_irt.as_deref() != Some(id) {
            return Err(SamlError::InResponseToMismatch {
                got: scd_irt.unwrap_or_else(|| "(none)".into()),
                expected: id.into(),
            });
        }
    }
    let (name_id, name_id_format) = match child(subject, NS_ASSERTION, "NameID") {
        Some(n) => {
            let v = text(n);
            (Some(v).filter(|v| !v.is_empty() && v.len() <= 1024), n.attribute("Format").map(str::to_string))
        }
        None => (None, None),
    };

    // Authentication statement.
    let authn = child(a, NS_ASSERTION, "AuthnStatement");
    let authn_instant = match authn {
        Some(s) => instant_attr(s, "AuthnInstant")?,
        None => None,
    };
    let session_index = authn.and_then(|s| s.attribute("SessionIndex")).map(|s| s.chars().take(256).collect());
    let authn_context = authn
        .and_then(|s| child(s, NS_ASSERTION, "AuthnContext"))
        .and_then(|c| child(c, NS_ASSERTION, "AuthnContextClassRef"))
        .map(text)
        .map(|s| s.chars().take(256).collect());

    // Attributes: every AttributeStatement, multi-valued, nil values skipped.
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut values = 0usize;
    for st in children(a, NS_ASSERTION, "AttributeStatement") {
        for at in children(st, NS_ASSERTION, "Attribute") {
            let Some(name) = at.attribute("Name").filter(|n| !n.is_empty() && n.len() <= 512) else { continue };
            if attributes.len() >= MAX_ATTRIBUTES && !attributes.contains_key(name) {
                continue;
            }
            let entry = attributes.entry(name.to_string()).or_default();
            for v in children(at, NS_ASSERTION, "AttributeValue") {
                if v.attribute((NS_XSI, "nil")).is_some_and(|n| n == "true" || n == "1") {
                    continue;
                }
                values += 1;
                if values > MAX_VALUES {
                    break;
                }
                entry.push(text(v).chars().take(MAX_VALUE_LEN).collect());
            }
        }
    }
    let expires_at = expires_at.ok_or_else(|| {
        SamlError::Malformed("neither the Conditions nor the bearer confirmation has NotOnOrAfter".into())
    })?;
    Ok(ValidatedAssertion {
        assertion_id,
        expires_at,
        in_response_to: scd_irt.or_else(|| resp_irt.map(str::to_string)),
        issuer,
        name_id,
        name_id_format,
        session_index,
        authn_instant,
        authn_context,
        attributes,
        protection,
    })
}

fn check_irt(irt: Option<&str>, e: &Expectations) -> Result<(), SamlError> {
    match (e.request, irt) {
        (ExpectedRequest::Id(id), Some(got)) if got != id => {
            Err(SamlError::InResponseToMismatch { got: shown(got), expected: id.into() })
        }
        (ExpectedRequest::Unsolicited, Some(got)) => {
            Err(SamlError::InResponseToMismatch { got: shown(got), expected: "(unsolicited)".into() })
        }
        _ => Ok(()),
    }
}

/// One bearer SubjectConfirmationData: Recipient, time bounds, InResponseTo.
fn check_bearer(b: Node, e: &Expectations, skew: i64) -> Result<(Option<String>, Option<i64>), SamlError> {
    let Some(scd) = child(b, NS_ASSERTION, "SubjectConfirmationData") else {
        return Err(SamlError::RecipientMismatch { got: "(none)".into(), expected: e.acs_url.into() });
    };
    match scd.attribute("Recipient") {
        Some(r) if r == e.acs_url => {}
        other => {
            return Err(SamlError::RecipientMismatch {
                got: other.map(shown).unwrap_or_else(|| "(none)".into()),
                expected: e.acs_url.into(),
            })
        }
    }
    if let Some(nb) = instant_attr(scd, "NotBefore")? {
        if e.now + skew < nb {
            return Err(SamlError::NotYetValid(at(nb - skew)));
        }
    }
    let noa = instant_attr(scd, "NotOnOrAfter")?
        .ok_or_else(|| SamlError::Malformed("the bearer confirmation has no NotOnOrAfter".into()))?;
    if e.now >= noa + skew {
        return Err(SamlError::Expired(at(noa + skew)));
    }
    let irt = scd.attribute("InResponseTo");
    check_irt(irt, e)?;
    Ok((irt.map(str::to_string), Some(noa)))
}

/// A value from the response, bounded for messages.
fn shown(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    if s.is_empty() {
        "(empty)".into()
    } else {
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_instant("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse_instant("2026-01-01T00:00:00.123Z"), Some(1_767_225_600));
        assert_eq!(parse_instant("2026-01-01T01:00:00+01:00"), Some(1_767_225_600));
        assert_eq!(parse_instant("2026-01-01T00:00:00"), None);
        assert_eq!(parse_instant("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_instant("garbage"), None);
    }

    #[test]
    fn declarations_refused_before_parsing() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"x\">]><r>&a;</r>";
        assert_eq!(decode(&b64(dtd)), Err(SamlError::DtdForbidden));
        assert_eq!(decode(""), Err(SamlError::Missing));
        assert!(matches!(decode("!!!"), Err(SamlError::Malformed(_))));
        assert_eq!(decode(&"A".repeat(MAX_RESPONSE_B64 + 1)), Err(SamlError::TooLarge));
        assert!(decode(&b64("<r><!-- c --><![CDATA[x]]></r>")).is_ok());
    }

    #[test]
    fn text_is_not_truncated_by_comments() {
        let d = Document::parse("<n>alice@example.com<!---->.evil.test</n>").unwrap();
        assert_eq!(text(d.root_element()), "alice@example.com.evil.test");
    }
}
