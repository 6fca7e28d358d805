//! The SAML attack corpus (`idp-fixtures/saml/corpus/`): its generator and its checks.
//!
//! - `cargo test --test it saml_corpus::regenerate -- --ignored` rewrites every corpus file,
//!   `manifest.json` and `README.md` from [`cases`] (byte-stable: RSA PKCS#1 v1.5 signatures are
//!   deterministic and the encrypted cases use a fixed seed).
//! - `corpus_is_up_to_date` fails when the files on disk differ from what [`cases`] builds.
//! - `corpus_cases_are_what_they_claim` checks each file's construction with samael/xmlsec directly
//!   (e.g. every wrapping case carries signatures that really verify with the trusted key, so
//!   a rejection can only come from the wrapping check, not from a broken digest).
//! - The contract test runs each case through the connector's pure validator.
pub use fedgate_fixtures::saml_idp;

use saml_idp::*;
use serde_json::{json, Value};
use std::path::PathBuf;

pub const IDP_ENTITY_ID: &str = "https://idp.fixture.test/saml";
pub const SP_ENTITY_ID: &str = "https://fedgate.test/sso/saml/conn_corpus/metadata";
pub const ACS_URL: &str = "https://fedgate.test/sso/saml/conn_corpus/acs";
/// The pending request (a LoginId: `lgn_` + 26 base32 characters).
pub const REQUEST_ID: &str = "lgn_corpus00000000000000000000";
/// 2026-01-01T00:00:00Z: IssueInstant of every case (NotOnOrAfter is 5 minutes later).
pub const T0: i64 = 1_767_225_600;
/// The validator's clock: 2026-01-01T00:01:00Z.
pub const NOW: i64 = T0 + 60;
pub const SKEW_SECS: i64 = 120;
const EVIL_NAME_ID: &str = "u-666-admin";
const EVIL_EMAIL: &str = "attacker@evil.test";

/// One corpus file.
pub struct Case {
    pub file: String,
    /// A `SamlError::code()`, or `ok`.
    pub expect: &'static str,
    pub note: String,
    pub xml: String,
    /// On `ok`: the NameID the validator must return.
    pub name_id: Option<String>,
    /// On `ok`: the `email` attribute values the validator must return.
    pub email: Option<String>,
    /// Validate as an IdP-initiated (unsolicited) response.
    pub unsolicited: bool,
    /// Either `ok` with `name_id`/`email` as given, or any rejection, is correct.
    pub or_rejected: bool,
    /// Other codes that are also correct (the signature cannot verify for a construction reason).
    pub also: Vec<&'static str>,
    /// Sanity of the construction: every ds:Signature verifies with the trusted IdP certificate
    /// (`Some(true)`), some does not (`Some(false)`), or not checkable by samael (`None`).
    crypto_valid: Option<bool>,
}

fn case(file: &str, expect: &'static str, note: &str, xml: String, crypto_valid: Option<bool>) -> Case {
    Case {
        file: format!("{file}.xml"),
        expect,
        note: note.to_owned(),
        xml,
        name_id: None,
        email: None,
        unsolicited: false,
        or_rejected: false,
        also: Vec::new(),
        crypto_valid,
    }
}

impl Case {
    /// The construction puts the signed element inside its own enveloping Signature: the
    /// enveloped-signature transform then drops it, so the signature cannot verify (xmlsec);
    /// `saml_signature_invalid` is as correct as `saml_signature_wrapping`.
    fn or_invalid(mut self) -> Self {
        self.also.push("saml_signature_invalid");
        self.crypto_valid = Some(false);
        self.note.push_str(" With xmlsec the enveloped-signature transform removes the whole enclosing Signature, including the referenced element inside it, so the digest does not match: saml_signature_invalid is accepted too.");
        self
    }

    /// Another code that is also correct for this construction.
    fn or_also(mut self, code: &'static str) -> Self {
        self.also.push(code);
        self
    }

    fn ok_with(mut self, name_id: &str, email: &str) -> Self {
        self.name_id = Some(name_id.to_owned());
        self.email = Some(email.to_owned());
        self
    }
}

/// The baseline: a valid Response for the corpus SP, with IDs derived from the case name.
fn base(name: &str, sign: Sign) -> ResponseParams {
    let mut p =
        ResponseParams::new(IDP_ENTITY_ID, SP_ENTITY_ID, ACS_URL, Some(REQUEST_ID), "u-1001", "alice@example.com", T0);
    p.response_id = format!("_r_{name}");
    p.assertion_id = format!("_a_{name}");
    p.session_index = Some(format!("_s_{name}"));
    p.sign = sign;
    p
}

/// The attacker's unsigned Assertion (another user), with its own ID.
fn evil(name: &str) -> ResponseParams {
    let mut p = base(name, Sign::None);
    p.assertion_id = format!("_evil_{name}");
    p.name_id = Some(EVIL_NAME_ID.to_owned());
    p.attributes = vec![("email".to_owned(), vec![EVIL_EMAIL.to_owned()])];
    p
}

fn seeded(name: &str, alg: DataAlg, cert_pem: &str) -> Encrypt {
    let mut seed = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    Encrypt {
        sp_cert_pem: cert_pem.to_owned(),
        data_alg: alg,
        key_transport: KeyTransport::RsaOaepMgf1p,
        seed: Some(seed),
    }
}

const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn doc(body: &str) -> String {
    format!("{DECL}{body}\n")
}

/// The first `<ds:Signature ...>...</ds:Signature>` of `xml`: (start, end).
fn signature_span(xml: &str) -> (usize, usize) {
    let s = xml.find("<ds:Signature").unwrap();
    let e = s + xml[s..].find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    (s, e)
}

fn without_signature(xml: &str) -> String {
    let (s, e) = signature_span(xml);
    format!("{}{}", &xml[..s], &xml[e..])
}

fn signature_of(xml: &str) -> String {
    let (s, e) = signature_span(xml);
    xml[s..e].to_owned()
}

/// Insert `what` right after the first `</saml:Issuer>` of `xml`.
fn after_issuer(xml: &str, what: &str) -> String {
    let at = xml.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    format!("{}{}{}", &xml[..at], what, &xml[at..])
}

/// Insert `what` just before the first `</ds:Signature>` (as a ds:Object payload).
fn into_signature_object(sig_xml: &str, what: &str) -> String {
    sig_xml.replacen("</ds:Signature>", &format!("<ds:Object>{what}</ds:Object></ds:Signature>"), 1)
}

fn strip_decl(xml: &str) -> &str {
    match xml.find("?>") {
        Some(i) if xml.starts_with("<?xml") => xml[i + 2..].trim(),
        _ => xml.trim(),
    }
}

/// Every corpus case, built from the fixture IdP plus string surgery.
pub fn cases() -> Vec<Case> {
    let idp = FixtureIdp::test(IDP_ENTITY_ID).unwrap();
    let attacker = FixtureIdp::untrusted(IDP_ENTITY_ID).unwrap();
    let mut out = Vec::new();
    let alice = |c: Case| c.ok_with("u-1001", "alice@example.com");

    // --- valid ---------------------------------------------------------------------------
    let p = base("valid_signed_response", Sign::Response);
    out.push(alice(case(
        "valid_signed_response",
        "ok",
        "Valid; the Response is signed (RSA-SHA256, exc-c14n), the Assertion is not.",
        idp.response(&p).unwrap(),
        Some(true),
    )));
    let p = base("valid_signed_assertion", Sign::Assertion);
    out.push(alice(case(
        "valid_signed_assertion",
        "ok",
        "Valid; the Assertion is signed, the Response is not.",
        idp.response(&p).unwrap(),
        Some(true),
    )));
    let p = base("valid_signed_both", Sign::Both);
    out.push(alice(case(
        "valid_signed_both",
        "ok",
        "Valid; the Assertion is signed, then the Response around it.",
        idp.response(&p).unwrap(),
        Some(true),
    )));
    let mut p = base("valid_encrypted", Sign::Assertion);
    p.encrypt = Some(seeded("valid_encrypted", DataAlg::Aes256Gcm, SP_CERT_PEM));
    out.push(alice(case("valid_encrypted", "ok", "Valid; a signed Assertion encrypted to sp.crt.pem (EncryptedAssertion, AES-256-GCM, RSA-OAEP-MGF1P key transport); the Response is unsigned, so the decrypted Assertion's own signature must be verified.", idp.response(&p).unwrap(), None)));
    let mut p = base("valid_encrypted_cbc", Sign::Assertion);
    p.encrypt = Some(seeded("valid_encrypted_cbc", DataAlg::Aes256Cbc, SP_CERT_PEM));
    out.push(alice(case(
        "valid_encrypted_cbc",
        "ok",
        "Valid; as valid_encrypted with AES-256-CBC.",
        idp.response(&p).unwrap(),
        None,
    )));
    let mut p = base("valid_encrypted_aes128gcm", Sign::Assertion);
    p.encrypt = Some(seeded("valid_encrypted_aes128gcm", DataAlg::Aes128Gcm, SP_CERT_PEM));
    out.push(alice(case(
        "valid_encrypted_aes128gcm",
        "ok",
        "Valid; as valid_encrypted with AES-128-GCM.",
        idp.response(&p).unwrap(),
        None,
    )));
    let mut p = base("valid_encrypted_signed_response", Sign::Response);
    p.encrypt = Some(seeded("valid_encrypted_signed_response", DataAlg::Aes256Gcm, SP_CERT_PEM));
    out.push(alice(case(
        "valid_encrypted_signed_response",
        "ok",
        "Valid; an unsigned Assertion encrypted (AES-256-GCM) inside a signed Response.",
        idp.response(&p).unwrap(),
        Some(true),
    )));
    let mut p = base("valid_unsolicited", Sign::Response);
    p.in_response_to = None;
    let mut c = alice(case(
        "valid_unsolicited",
        "ok",
        "Valid IdP-initiated response (no InResponseTo anywhere); validated with ExpectedRequest::Unsolicited.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    c.unsolicited = true;
    out.push(c);

    // --- signatures ----------------------------------------------------------------------
    let p = base("unsigned", Sign::None);
    out.push(case(
        "unsigned",
        "saml_signature_missing",
        "No signature at all (neither Response nor Assertion).",
        idp.response(&p).unwrap(),
        None,
    ));
    let mut p = base("encrypted_unsigned", Sign::None);
    p.encrypt = Some(seeded("encrypted_unsigned", DataAlg::Aes256Gcm, SP_CERT_PEM));
    out.push(case("encrypted_unsigned", "saml_decryption_failed", "An unsigned Assertion, encrypted to sp.crt.pem, in an unsigned Response: decryption succeeds but nothing is signed (samael 0.0.22 would not check the decrypted Assertion's signature). Every failure after decrypting unauthenticated ciphertext has the one code saml_decryption_failed (no oracle).", idp.response(&p).unwrap(), None));
    let p = base("tampered_after_signing", Sign::Response);
    let xml = idp.response(&p).unwrap().replace(">u-1001</saml:NameID>", ">u-1002</saml:NameID>");
    out.push(case(
        "tampered_after_signing",
        "saml_signature_invalid",
        "Signed Response; then the NameID was changed from u-1001 to u-1002 (digest mismatch).",
        xml,
        Some(false),
    ));
    let p = base("tampered_assertion_after_signing", Sign::Assertion);
    let xml = idp
        .response(&p)
        .unwrap()
        .replace("alice@example.com</saml:AttributeValue>", "admin@example.com</saml:AttributeValue>");
    out.push(case(
        "tampered_assertion_after_signing",
        "saml_signature_invalid",
        "Signed Assertion; then the email attribute was changed to admin@example.com.",
        xml,
        Some(false),
    ));
    let p = base("untrusted_key", Sign::Response);
    out.push(case("untrusted_key", "saml_signature_invalid", "Signed Response, correct Issuer, but signed by untrusted.key.pem (its certificate in KeyInfo; only idp.crt.pem is trusted).", attacker.response(&p).unwrap(), Some(false)));
    let p = base("untrusted_key_assertion", Sign::Assertion);
    out.push(case(
        "untrusted_key_assertion",
        "saml_signature_invalid",
        "Signed Assertion, signed by untrusted.key.pem.",
        attacker.response(&p).unwrap(),
        Some(false),
    ));
    let mut p = base("sha1_signature", Sign::Response);
    p.sig_alg = SigAlg::RsaSha1;
    out.push(case(
        "sha1_signature",
        "saml_signature_algorithm_not_allowed",
        "Signed Response with rsa-sha1 and a sha1 digest by the trusted key (allow_sha1 = false).",
        idp.response(&p).unwrap(),
        None,
    ));
    let mut p = base("sha1_digest", Sign::Response);
    p.sig_alg = SigAlg::RsaSha256DigestSha1;
    out.push(case(
        "sha1_digest",
        "saml_signature_algorithm_not_allowed",
        "Signed Response with rsa-sha256 over a sha1 DigestMethod, trusted key.",
        idp.response(&p).unwrap(),
        None,
    ));

    // --- signature wrapping --------------------------------------------------------------
    let unsigned_resp = |name: &str, inner: &str| {
        let p = base(name, Sign::None);
        doc(&idp.response_around(&p, inner).unwrap())
    };
    let signed_assertion = |name: &str| idp.assertion_xml(&base(name, Sign::Assertion)).unwrap();
    let evil_assertion = |name: &str| idp.assertion_xml(&evil(name)).unwrap();
    let signed_response = |name: &str| strip_decl(&idp.response(&base(name, Sign::Response)).unwrap()).to_owned();

    let n = "xsw_evil_assertion_before_signed";
    out.push(case(n, "saml_signature_wrapping", "XSW3: an unsigned evil Assertion (u-666-admin) inserted before the signed Assertion, both children of an unsigned Response.", unsigned_resp(n, &format!("{}{}", evil_assertion(n), signed_assertion(n))), Some(true)));
    let n = "xsw_evil_assertion_after_signed";
    out.push(case(
        n,
        "saml_signature_wrapping",
        "An unsigned evil Assertion appended after the signed Assertion (unsigned Response).",
        unsigned_resp(n, &format!("{}{}", signed_assertion(n), evil_assertion(n))),
        Some(true),
    ));
    let n = "xsw_evil_wraps_signed_assertion";
    let wrapped =
        evil_assertion(n).replacen("</saml:Assertion>", &format!("{}</saml:Assertion>", signed_assertion(n)), 1);
    out.push(case(n, "saml_signature_wrapping", "XSW4: the signed Assertion moved inside the evil Assertion (as its last child); the evil one is the Response's child.", unsigned_resp(n, &wrapped), Some(true)));
    let n = "xsw_signed_assertion_in_advice";
    let wrapped = evil_assertion(n).replacen(
        "</saml:Conditions>",
        &format!("</saml:Conditions><saml:Advice>{}</saml:Advice>", signed_assertion(n)),
        1,
    );
    out.push(case(
        n,
        "saml_signature_wrapping",
        "XSW4 variant, schema-valid: the signed Assertion inside saml:Advice of the evil Assertion.",
        unsigned_resp(n, &wrapped),
        Some(true),
    ));
    let n = "xsw_signature_moved_to_evil";
    let real = signed_assertion(n);
    let ev = after_issuer(&evil_assertion(n), &signature_of(&real));
    out.push(case(n, "saml_signature_wrapping", "XSW5: the evil Assertion carries the real Assertion's Signature (Reference URI still #_a_...); the real Assertion, its Signature removed, follows it. The signature verifies but covers the second Assertion.", unsigned_resp(n, &format!("{}{}", ev, without_signature(&real))), Some(true)));
    let n = "xsw_signed_assertion_in_signature_object";
    let real = signed_assertion(n);
    let ev = after_issuer(&evil_assertion(n), &into_signature_object(&signature_of(&real), &without_signature(&real)));
    out.push(case(n, "saml_signature_wrapping", "XSW6/XSW8: the evil Assertion carries the real Assertion's Signature, and the real Assertion (its Signature removed) sits in that Signature's ds:Object.", unsigned_resp(n, &ev), Some(true)).or_invalid());
    let n = "xsw_signed_assertion_in_extensions";
    let p = base(n, Sign::None);
    let resp = idp.response_around(&p, &evil_assertion(n)).unwrap();
    let resp = after_issuer(&resp, &format!("<samlp:Extensions>{}</samlp:Extensions>", signed_assertion(n)));
    out.push(case(
        n,
        "saml_signature_wrapping",
        "XSW7: the signed Assertion moved into samlp:Extensions; the evil Assertion in its place.",
        doc(&resp),
        Some(true),
    ));
    let n = "xsw_response_in_signature_object";
    let real = signed_response(n);
    let mut ep = evil(n);
    ep.response_id = format!("_evil_r_{n}");
    let resp = idp.response_around(&ep, &evil_assertion(n)).unwrap();
    let resp = after_issuer(&resp, &into_signature_object(&signature_of(&real), &without_signature(&real)));
    out.push(case(n, "saml_signature_wrapping", "XSW1: an evil Response (other ID, evil Assertion) carries the real Response's Signature, whose ds:Object holds the real signed Response (its Signature removed); the Reference points at the real one.", doc(&resp), Some(true)).or_invalid());
    let n = "xsw_response_before_signature";
    let real = signed_response(n);
    let mut ep = evil(n);
    ep.response_id = format!("_evil_r_{n}");
    let resp = idp.response_around(&ep, &evil_assertion(n)).unwrap();
    let resp = after_issuer(&resp, &format!("{}{}", without_signature(&real), signature_of(&real)));
    out.push(case(n, "saml_signature_wrapping", "XSW2: an evil Response with the real Response (its Signature removed) as a child, followed by the real (now detached) Signature, then the evil Assertion.", doc(&resp), Some(true)));
    let n = "xsw_signed_response_in_extensions";
    let real = signed_response(n);
    let mut ep = evil(n);
    ep.response_id = format!("_evil_r_{n}");
    let resp = idp.response_around(&ep, &evil_assertion(n)).unwrap();
    let resp = after_issuer(&resp, &format!("<samlp:Extensions>{real}</samlp:Extensions>"));
    out.push(case(
        n,
        "saml_signature_wrapping",
        "The whole real signed Response (with its Signature) inside samlp:Extensions of an unsigned evil Response.",
        doc(&resp),
        Some(true),
    ));
    let n = "xsw_duplicate_assertion_id";
    let mut ep = evil(n);
    ep.assertion_id = format!("_a_{n}");
    let ev = idp.assertion_xml(&ep).unwrap();
    out.push(case(n, "saml_signature_wrapping", "An unsigned evil Assertion with the same ID as the signed Assertion, placed before it (an ID lookup may find either).", unsigned_resp(n, &format!("{}{}", ev, signed_assertion(n))), None));
    let n = "xsw_duplicate_response_id";
    let real = signed_response(n);
    let mut ep = evil(n);
    ep.response_id = format!("_r_{n}");
    let resp = idp.response_around(&ep, &evil_assertion(n)).unwrap();
    let resp = after_issuer(&resp, &format!("<samlp:Extensions>{real}</samlp:Extensions>"));
    out.push(case(
        n,
        "saml_signature_wrapping",
        "An evil root Response with the same ID as the real signed Response, which sits in its samlp:Extensions.",
        doc(&resp),
        None,
    ));
    let n = "xsw_evil_in_assertion_signature_object";
    let real = signed_assertion(n);
    let (s, e) = signature_span(&real);
    let real = format!("{}{}{}", &real[..s], into_signature_object(&real[s..e], &evil_assertion(n)), &real[e..]);
    out.push(case(n, "saml_signature_wrapping", "An evil Assertion inside a ds:Object of the signed Assertion's own Signature (the enveloped transform drops it, so the signature still verifies).", unsigned_resp(n, &real), Some(true)));
    let n = "xsw_evil_in_response_signature_object";
    let real = signed_response(n);
    let (s, e) = signature_span(&real);
    let real = format!("{}{}{}", &real[..s], into_signature_object(&real[s..e], &evil_assertion(n)), &real[e..]);
    out.push(case(n, "saml_signature_wrapping", "An evil Assertion inside a ds:Object of the signed Response's Signature (outside the signed content; the signature still verifies). A second Assertion anywhere is wrapping.", doc(&real), Some(true)));
    let n = "xsw_signature_covers_other_element";
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="_logout_{n}" Version="2.0" IssueInstant="{}" Destination="https://fedgate.test/sso/saml/conn_corpus/slo"><saml:Issuer>{IDP_ENTITY_ID}</saml:Issuer><saml:NameID>u-1001</saml:NameID></samlp:LogoutRequest>"#,
        instant(T0)
    );
    let logout = idp.sign_root(&logout, SigAlg::RsaSha256).unwrap();
    let p = base(n, Sign::None);
    let resp = idp.response_around(&p, &evil_assertion(n)).unwrap();
    let resp = after_issuer(
        &resp,
        &format!("{}<samlp:Extensions>{}</samlp:Extensions>", signature_of(&logout), without_signature(&logout)),
    );
    out.push(case(n, "saml_signature_wrapping", "The Response carries a valid IdP signature in Response position, but its Reference is #_logout_... (an IdP-signed LogoutRequest placed in Extensions), not the Response; the Assertion is the unsigned evil one.", doc(&resp), Some(true)));
    let n = "two_signed_assertions";
    let mut second = base(n, Sign::Assertion);
    second.assertion_id = format!("_a2_{n}");
    second.name_id = Some("u-1002".to_owned());
    second.attributes = vec![("email".to_owned(), vec!["bob@example.com".to_owned()])];
    let inner = format!("{}{}", signed_assertion(n), idp.assertion_xml(&second).unwrap());
    out.push(case(
        n,
        "saml_signature_wrapping",
        "Two Assertions, each validly signed by the IdP (u-1001 and u-1002): more than one Assertion is refused.",
        unsigned_resp(n, &inner),
        Some(true),
    ));

    // --- comment injection ---------------------------------------------------------------
    let n = "comment_injection";
    let mut p = base(n, Sign::Response);
    p.name_id = Some("alice@example.com.evil.test".to_owned());
    p.name_id_format = Some(NAMEID_EMAIL.to_owned());
    let xml = idp
        .response(&p)
        .unwrap()
        .replace(">alice@example.com.evil.test</saml:NameID>", ">alice@example.com<!---->.evil.test</saml:NameID>");
    let mut c = case(n, "ok", "Signed Response for NameID alice@example.com.evil.test; a comment was then inserted (alice@example.com<!---->.evil.test). The signature still verifies (c14n drops comments). Correct: read the full value alice@example.com.evil.test (or reject); wrong: alice@example.com.", xml, Some(true));
    c.name_id = Some("alice@example.com.evil.test".to_owned());
    c.or_rejected = true;
    out.push(c);
    let n = "comment_injection_attribute";
    let mut p = base(n, Sign::Assertion);
    p.attributes = vec![("email".to_owned(), vec!["alice@example.com.evil.test".to_owned()])];
    let xml = idp.response(&p).unwrap().replace(
        ">alice@example.com.evil.test</saml:AttributeValue>",
        ">alice@example.com<!---->.evil.test</saml:AttributeValue>",
    );
    let mut c = case(n, "ok", "Signed Assertion whose email attribute was alice@example.com.evil.test; a comment was then inserted after .com. Correct: email = alice@example.com.evil.test (or reject).", xml, Some(true));
    c.name_id = Some("u-1001".to_owned());
    c.email = Some("alice@example.com.evil.test".to_owned());
    c.or_rejected = true;
    out.push(c);

    // --- conditions, subject, status -----------------------------------------------------
    let mut p = base("expired", Sign::Response);
    p.shift_times(-600);
    out.push(case("expired", "saml_expired", "Issued 2025-12-31T23:50:00Z, NotOnOrAfter 23:55:00Z (Conditions and SubjectConfirmationData): 6 minutes before the clock, beyond the 120 s skew.", idp.response(&p).unwrap(), Some(true)));
    let mut p = base("expired_subject_confirmation", Sign::Response);
    p.subject_conf_not_on_or_after = T0 - 300;
    out.push(case(
        "expired_subject_confirmation",
        "saml_expired",
        "Conditions valid, but SubjectConfirmationData NotOnOrAfter is 2025-12-31T23:55:00Z.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("not_yet_valid", Sign::Response);
    p.shift_times(600);
    out.push(case(
        "not_yet_valid",
        "saml_not_yet_valid",
        "Issued and NotBefore 2026-01-01T00:10:00Z: 9 minutes after the clock, beyond the skew.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("wrong_audience", Sign::Response);
    p.audience = Some("https://other-sp.test/metadata".to_owned());
    out.push(case(
        "wrong_audience",
        "saml_audience_mismatch",
        "Audience is another SP (https://other-sp.test/metadata).",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("missing_audience", Sign::Response);
    p.audience = None;
    out.push(case(
        "missing_audience",
        "saml_audience_mismatch",
        "Conditions without AudienceRestriction (samael alone would accept it).",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("wrong_recipient", Sign::Response);
    p.recipient = Some("https://fedgate.test/sso/saml/conn_other/acs".to_owned());
    out.push(case(
        "wrong_recipient",
        "saml_recipient_mismatch",
        "SubjectConfirmationData Recipient is another connection's ACS.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("missing_recipient", Sign::Response);
    p.recipient = None;
    out.push(case(
        "missing_recipient",
        "saml_recipient_mismatch",
        "SubjectConfirmationData without Recipient.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("wrong_destination", Sign::Response);
    p.destination = Some("https://fedgate.test/sso/saml/conn_other/acs".to_owned());
    out.push(case(
        "wrong_destination",
        "saml_destination_mismatch",
        "Signed Response whose Destination is another connection's ACS.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("missing_destination_signed_response", Sign::Response);
    p.destination = None;
    out.push(case(
        "missing_destination_signed_response",
        "saml_destination_mismatch",
        "Signed Response without Destination (required when the Response is signed).",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("unknown_in_response_to", Sign::Response);
    p.in_response_to = Some("lgn_unknown0000000000000000000".to_owned());
    out.push(case("unknown_in_response_to", "saml_in_response_to_mismatch", "InResponseTo (Response and SubjectConfirmationData) is lgn_unknown0000000000000000000, not the pending request.", idp.response(&p).unwrap(), Some(true)));
    let mut p = base("wrong_issuer", Sign::Response);
    p.response_issuer = Some("https://evil-idp.test/saml".to_owned());
    p.assertion_issuer = "https://evil-idp.test/saml".to_owned();
    out.push(case(
        "wrong_issuer",
        "saml_issuer_mismatch",
        "Signed by the trusted key, but Response and Assertion Issuer are https://evil-idp.test/saml.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("no_conditions", Sign::Response);
    p.include_conditions = false;
    out.push(case(
        "no_conditions",
        "saml_conditions_missing",
        "Signed Response whose Assertion has no Conditions element.",
        idp.response(&p).unwrap(),
        Some(true),
    ));
    let mut p = base("status_failure", Sign::Response);
    p.include_assertion = false;
    p.status = Some(Status {
        code: "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned(),
        sub_code: Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed".to_owned()),
        message: Some("User account is locked".to_owned()),
    });
    out.push(case("status_failure", "saml_status_not_success", "Signed Response, no Assertion, StatusCode Responder / AuthnFailed, StatusMessage \"User account is locked\" (goes verbatim to the trace).", idp.response(&p).unwrap(), Some(true)));

    // --- parser ----------------------------------------------------------------------------
    let valid = idp.response(&base("dtd_entity_expansion", Sign::Response)).unwrap();
    let mut dtd = String::from("<!DOCTYPE samlp:Response [\n  <!ENTITY lol \"lol\">\n");
    let mut prev = "lol".to_owned();
    for i in 1..=9 {
        let refs = format!("&{prev};").repeat(10);
        dtd.push_str(&format!("  <!ENTITY lol{i} \"{refs}\">\n"));
        prev = format!("lol{i}");
    }
    dtd.push_str("]>\n");
    let xml =
        valid.replacen(DECL, &format!("{DECL}{dtd}"), 1).replace(">u-1001</saml:NameID>", ">&lol9;</saml:NameID>");
    out.push(case("dtd_entity_expansion", "saml_dtd_forbidden", "Billion laughs: a DOCTYPE with nested entities (10^9 \"lol\") referenced from the NameID of a signed Response.", xml, None));
    let valid = idp.response(&base("external_entity", Sign::Response)).unwrap();
    let xml = valid
        .replacen(
            DECL,
            &format!("{DECL}<!DOCTYPE samlp:Response [\n  <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n"),
            1,
        )
        .replace(">u-1001</saml:NameID>", ">&xxe;</saml:NameID>");
    out.push(case(
        "external_entity",
        "saml_dtd_forbidden",
        "XXE: a DOCTYPE declaring an external entity SYSTEM \"file:///etc/passwd\", referenced from the NameID.",
        xml,
        None,
    ));
    let valid = idp.response(&base("doctype_only", Sign::Response)).unwrap();
    let xml = valid.replacen(DECL, &format!("{DECL}<!DOCTYPE samlp:Response>\n"), 1);
    out.push(case("doctype_only", "saml_dtd_forbidden", "An otherwise valid signed Response with a bare <!DOCTYPE samlp:Response> (no entities): any DOCTYPE is refused.", xml, None));
    let mut p = base("oversized", Sign::Response);
    p.attributes.push(("blob".to_owned(), vec!["A".repeat(300 * 1024)]));
    out.push(case(
        "oversized",
        "saml_response_too_large",
        "A validly signed Response with a 300 KiB attribute value (the XML is > 256 KiB before base64).",
        idp.response(&p).unwrap(),
        None,
    ));
    let valid = idp.response(&base("malformed", Sign::Response)).unwrap();
    let xml = format!("{}\n", &valid[..valid.len() / 2]);
    out.push(case(
        "malformed",
        "saml_response_malformed",
        "The first half of a valid signed Response: not well-formed XML.",
        xml,
        None,
    ));
    // --- references, signature shape and parser agreement -----------------------------------
    // A signed Response whose one Reference is rewritten: none of these may reach xmlsec.
    let signed = |name: &str| idp.response(&base(name, Sign::Response)).unwrap();
    let reref =
        |name: &str, uri: &str| signed(name).replacen(&format!("URI=\"#_r_{name}\""), &format!("URI=\"{uri}\""), 1);
    for (name, uri, note) in [
        ("reference_xpointer", "#xpointer(/)", "The Reference URI is an XPointer expression (#xpointer(/)) instead of the signed element's ID: xmlsec would evaluate it before checking the signature."),
        ("reference_xpointer_cpu", "#xpointer(//node()[count(//node()[count(//node()) &gt; 0]) &gt; 0])", "An XPointer whose cost grows with a power of the element count (the review's CPU exhaustion): refused before xmlsec sees it."),
        ("reference_http", "http://169.254.169.254/latest/meta-data/", "The Reference URI is an http: URL of an internal address (SSRF through xmlsec's URI loader)."),
        ("reference_file", "file:///dev/zero", "The Reference URI is a file: that never ends (/dev/zero)."),
        ("reference_relative", "secret.xml", "The Reference URI is a relative URI."),
        ("reference_whole_document", "", "The Reference URI is empty (the whole document), not the signed element's ID."),
    ] {
        out.push(case(name, "saml_signature_wrapping", note, reref(name, uri), None));
    }
    let n = "reference_to_assertion";
    out.push(case(n, "saml_signature_wrapping", "The Response's Signature references the Assertion's ID: a reference must name the element the Signature stands in.", reref(n, "#_a_reference_to_assertion"), None));
    let n = "signature_manifest";
    let xml = signed(n).replacen("</ds:Signature>", "<ds:Object><ds:Manifest><ds:Reference URI=\"http://169.254.169.254/\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:Manifest></ds:Object></ds:Signature>", 1);
    out.push(case(n, "saml_signature_wrapping", "A ds:Object with a Manifest whose Reference names an internal URL: a Signature may hold only SignedInfo, SignatureValue and KeyInfo.", xml, None));
    let n = "keyinfo_retrieval_method";
    let xml =
        signed(n).replacen("<ds:KeyInfo>", "<ds:KeyInfo><ds:RetrievalMethod URI=\"http://169.254.169.254/key\"/>", 1);
    out.push(case(n, "saml_signature_wrapping", "KeyInfo with a RetrievalMethod pointing to an internal URL: KeyInfo may hold X509Data, KeyName or KeyValue only.", xml, None));
    let n = "transform_xpath";
    let xml = signed(n).replacen("<ds:Transforms>", "<ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>count(//node())</ds:XPath></ds:Transform>", 1);
    out.push(
        case(n, "saml_signature_algorithm_not_allowed", "An XPath transform in front of the allowed ones.", xml, None)
            .or_also("saml_signature_wrapping"),
    );
    let n = "encoding_utf7";
    let xml = signed(n).replacen("encoding=\"UTF-8\"", "encoding=\"UTF-7\"", 1).replacen(
        "</ds:SignedInfo>",
        "+ADw-ds:Reference URI=+ACI-http://169.254.169.254/+ACI-/+AD4-</ds:SignedInfo>",
        1,
    );
    out.push(case(n, "saml_response_malformed", "Declares UTF-7: libxml2 would decode +ADw-...+AD4- into a hidden second Reference that roxmltree reads as text. Only UTF-8 is accepted, checked before any parser runs.", xml, None));
    let n = "encoding_latin1";
    let xml = signed(n).replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1);
    out.push(case(
        n,
        "saml_response_malformed",
        "Declares ISO-8859-1: the two parsers would read non-ASCII text differently.",
        xml,
        None,
    ));
    let n = "namespaced_id";
    let xml = signed(n).replacen("<saml:Subject>", "<saml:Subject xmlns:x=\"urn:x\" x:ID=\"_elsewhere\">", 1);
    out.push(case(n, "saml_signature_wrapping", "An element carries a namespaced x:ID: samael (libxml2's xmlGetProp) counts it as an ID, fedgate's checks would not.", xml, None));
    let n = "xml_id";
    let xml = signed(n).replacen("<saml:Subject>", "<saml:Subject xml:id=\"_elsewhere\">", 1);
    out.push(case(
        n,
        "saml_signature_wrapping",
        "An element carries xml:id, which libxml2 resolves for #id references.",
        xml,
        None,
    ));
    let n = "c1_control_character";
    let xml = signed(n).replacen(">u-1001</saml:NameID>", ">u-1001\u{85}</saml:NameID>", 1);
    out.push(case(n, "saml_response_malformed", "A C1 control character (U+0085, NEL) in the NameID: XML 1.0 and 1.1 read it differently; refused before parsing.", xml, None));
    let n = "too_deep";
    let xml = signed(n).replacen(
        "<samlp:Status>",
        &format!(
            "<samlp:Extensions>{}{}</samlp:Extensions><samlp:Status>",
            "<x:e xmlns:x=\"urn:x\">".repeat(60),
            "</x:e>".repeat(60)
        ),
        1,
    );
    out.push(case(
        n,
        "saml_response_malformed",
        "Elements nested 60 deep in Extensions: deeper than the 48 allowed.",
        xml,
        None,
    ));

    let n = "wrong_root_element";
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="_logout_{n}" Version="2.0" IssueInstant="{}" Destination="{ACS_URL}"><saml:Issuer>{IDP_ENTITY_ID}</saml:Issuer><saml:NameID>u-1001</saml:NameID></samlp:LogoutRequest>"#,
        instant(T0)
    );
    out.push(case(
        n,
        "saml_response_malformed",
        "An IdP-signed samlp:LogoutRequest posted to the ACS: the root is not samlp:Response.",
        doc(&idp.sign_root(&logout, SigAlg::RsaSha256).unwrap()),
        Some(true),
    ));
    out
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idp-fixtures/saml/corpus")
}

fn manifest(cases: &[Case]) -> Value {
    Value::Array(
        cases
            .iter()
            .map(|c| {
                let mut v = json!({ "file": c.file, "expect": c.expect, "note": c.note });
                if let Some(n) = &c.name_id {
                    v["name_id"] = json!(n);
                }
                if let Some(e) = &c.email {
                    v["email"] = json!(e);
                }
                if c.unsolicited {
                    v["request"] = json!("unsolicited");
                }
                if !c.also.is_empty() {
                    v["also"] = json!(c.also);
                }
                if c.or_rejected {
                    v["or_rejected"] = json!(true);
                }
                v
            })
            .collect(),
    )
}

const README_HEAD: &str = r#"# SAML attack corpus

Generated by `tests/it/saml_corpus.rs` (`cargo test --test it saml_corpus::regenerate -- --ignored`);
do not edit by hand: `saml_corpus::corpus_is_up_to_date` fails when a file differs from the
generator. Each `.xml` file is the raw `samlp:Response` as the IdP would POST it, before base64
(the `SAMLResponse` form field is `base64(file bytes)`). `manifest.json` lists every file with its
expected outcome: an error code from `docs`/the SAML spec (`SamlError::code()`) or `ok`; for `ok`,
`name_id` and `email` are what the validator must return; `request: "unsolicited"` means validate
as IdP-initiated; `or_rejected: true` means any rejection is also correct.

Built by the fixture IdP (`crates/fixtures/src/saml_idp.rs`) with the test keys in `../keys/` plus string
surgery (see each case's note). Regeneration is byte-stable: RSA PKCS#1 v1.5 signatures are
deterministic, and the encrypted cases derive their content key, IV and OAEP seed from the case
name.

Fixed values (the contract test's `Expectations`):

- IdP entity ID `https://idp.fixture.test/saml`, trusted certificate `../keys/idp.crt.pem` only
- SP entity ID `https://fedgate.test/sso/saml/conn_corpus/metadata`
- ACS `https://fedgate.test/sso/saml/conn_corpus/acs`
- pending request (InResponseTo) `lgn_corpus00000000000000000000` (a LoginId: `lgn_` + 26 chars)
- IssueInstant / NotBefore / AuthnInstant 2026-01-01T00:00:00Z, NotOnOrAfter +5 min (Conditions and
  SubjectConfirmationData), unless the case says otherwise
- NameID persistent `u-1001`, attribute `email` = `alice@example.com`; the attacker's Assertions
  (`_evil_...` IDs) carry `u-666-admin` / `attacker@evil.test`
- IDs: Response `_r_<case>`, Assertion `_a_<case>`
- clock 2026-01-01T00:01:00Z, skew 120 s, `allow_sha1 = false`, decryption key `../keys/sp.key.pem`,
  `require_encrypted = false`

Replay (`saml_replay`) is not in this corpus: it needs the database (assertion IDs with a unique key)
and is tested over HTTP by the connector's tests. Every `ok` case is valid once: the pure contract
test does not record assertion IDs.
"#;

fn readme(cases: &[Case]) -> String {
    let mut s = README_HEAD.to_owned();
    s.push_str("\n| file | expect | what it is and how it was built |\n|---|---|---|\n");
    for c in cases {
        s.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            c.file,
            c.expect,
            c.note.replace('|', "\\|").replace('<', "&lt;")
        ));
    }
    s
}

/// Writes the corpus. Run: `cargo test --test it saml_corpus::regenerate -- --ignored`.
#[test]
#[ignore = "writes idp-fixtures/saml/corpus; run on purpose"]
fn regenerate() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    for c in &cases {
        std::fs::write(dir.join(&c.file), &c.xml).unwrap();
    }
    let mut m = serde_json::to_string_pretty(&manifest(&cases)).unwrap();
    m.push('\n');
    std::fs::write(dir.join("manifest.json"), m).unwrap();
    std::fs::write(dir.join("README.md"), readme(&cases)).unwrap();
}

#[test]
fn corpus_is_up_to_date() {
    let dir = corpus_dir();
    let cases = cases();
    for c in &cases {
        let on_disk = std::fs::read_to_string(dir.join(&c.file)).unwrap_or_default();
        assert!(on_disk == c.xml, "{} differs from the generator; run saml_corpus::regenerate", c.file);
    }
    let m: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m, manifest(&cases), "manifest.json is stale");
    assert_eq!(std::fs::read_to_string(dir.join("README.md")).unwrap(), readme(&cases), "README.md is stale");
}

#[test]
fn corpus_cases_are_what_they_claim() {
    use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode};
    let trusted = [CertificateDer::from(FixtureIdp::test(IDP_ENTITY_ID).unwrap().cert_der().to_vec())];
    for c in cases() {
        if let Some(valid) = c.crypto_valid {
            // Both modes verify every ds:Signature; each also has its own reduction limits
            // (PreDigest: one reference or one Response; ValidateAndMark trips on comment_injection).
            let got: Vec<_> = [ReduceMode::PreDigest, ReduceMode::ValidateAndMark]
                .into_iter()
                .map(|mode| {
                    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                        &c.xml,
                        &trusted,
                        mode,
                        Some(&[AllowedSignatureAlgorithm::RsaSha256]),
                    )
                })
                .collect();
            let ok = got.iter().any(Result::is_ok);
            assert_eq!(ok, valid, "{}: every signature verifies = {valid} expected: {got:?}", c.file);
        }
        if (c.file.starts_with("xsw_") && c.file != "xsw_signature_covers_other_element.xml")
            || c.file == "two_signed_assertions.xml"
        {
            assert!(c.xml.matches("<saml:Assertion ").count() >= 2, "{}", c.file);
        }
    }
}

/// What an accepting validator returned, reduced to what the corpus checks.
pub struct Accepted {
    pub name_id: Option<String>,
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
}

/// Compares one validator outcome (`Err` = the error code) with a manifest entry.
pub fn check_entry(entry: &Value, got: Result<Accepted, &str>) -> Result<(), String> {
    let file = entry["file"].as_str().unwrap_or("?");
    let expect = entry["expect"].as_str().unwrap_or("?");
    let also: Vec<&str> =
        entry["also"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let or_rejected = entry["or_rejected"].as_bool().unwrap_or(false);
    match (expect, got) {
        ("ok", Ok(a)) => {
            if let Some(want) = entry["name_id"].as_str() {
                if a.name_id.as_deref() != Some(want) {
                    return Err(format!("{file}: accepted with name_id {:?}, expected {want:?}", a.name_id));
                }
            }
            if let Some(want) = entry["email"].as_str() {
                let got = a.attributes.get("email");
                if got.map(|v| v.as_slice()) != Some(&[want.to_owned()][..]) {
                    return Err(format!("{file}: accepted with email {got:?}, expected [{want:?}]"));
                }
            }
            Ok(())
        }
        ("ok", Err(code)) if or_rejected => {
            let _ = code;
            Ok(())
        }
        ("ok", Err(code)) => Err(format!("{file}: rejected with {code}, expected ok")),
        (_, Ok(a)) => Err(format!(
            "{file}: ACCEPTED (name_id {:?}, email {:?}), expected {expect}",
            a.name_id,
            a.attributes.get("email")
        )),
        (_, Err(code)) if code == expect || also.contains(&code) => Ok(()),
        (_, Err(code)) => Err(format!("{file}: got {code}, expected {expect}")),
    }
}

/// The contract: every corpus file through the connector's pure validator, with the fixed
/// expectations of the corpus README (clock 2026-01-01T00:01:00Z). Replay is not covered here
/// (it needs the database; the connector's HTTP tests cover it).
#[test]
fn contract() {
    use fedgate::upstream::saml::validate::{validate_response, Expectations, ExpectedRequest};
    let certs = vec![FixtureIdp::test(IDP_ENTITY_ID).unwrap().cert_der().to_vec()];
    let dir = corpus_dir();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest.as_array().unwrap();
    assert!(entries.len() >= 40, "corpus too small: {}", entries.len());
    let mut failures = Vec::new();
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let xml = std::fs::read(dir.join(file)).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &xml);
        let e = Expectations {
            idp_entity_id: IDP_ENTITY_ID,
            idp_certs_der: &certs,
            sp_entity_id: SP_ENTITY_ID,
            acs_url: ACS_URL,
            allow_sha1: false,
            skew_secs: SKEW_SECS,
            now: NOW,
            request: if entry["request"] == "unsolicited" {
                ExpectedRequest::Unsolicited
            } else {
                ExpectedRequest::Id(REQUEST_ID)
            },
            decryption_key_pem: Some(SP_KEY_PEM),
            require_encrypted: false,
            allow_cbc: true,
        };
        let got = validate_response(&b64, &e)
            .map(|a| Accepted { name_id: a.name_id, attributes: a.attributes })
            .map_err(|err| err.code());
        match &got {
            Ok(a) => eprintln!("{file}: ok (name_id {:?})", a.name_id),
            Err(code) => eprintln!("{file}: {code}"),
        }
        if let Err(msg) = check_entry(entry, got) {
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus case(s) disagree with the validator:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn check_entry_is_strict() {
    let accepted = || Ok(Accepted { name_id: Some("u-1001".into()), attributes: Default::default() });
    let e = json!({"file": "x.xml", "expect": "saml_expired"});
    assert!(check_entry(&e, Err("saml_expired")).is_ok());
    assert!(check_entry(&e, Err("saml_signature_invalid")).is_err());
    assert!(check_entry(&e, accepted()).is_err());
    let e = json!({"file": "x.xml", "expect": "saml_signature_wrapping", "also": ["saml_signature_invalid"]});
    assert!(check_entry(&e, Err("saml_signature_invalid")).is_ok());
    let e = json!({"file": "x.xml", "expect": "ok", "name_id": "u-1002"});
    assert!(check_entry(&e, accepted()).is_err());
    assert!(check_entry(&e, Err("saml_expired")).is_err());
    let e = json!({"file": "x.xml", "expect": "ok", "name_id": "u-1001", "or_rejected": true});
    assert!(check_entry(&e, accepted()).is_ok());
    assert!(check_entry(&e, Err("saml_signature_invalid")).is_ok());
}
