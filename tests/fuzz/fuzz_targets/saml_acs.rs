//! The SAML ACS input path on any bytes: `decode` (the base64 form field), `peek_in_response_to`
//! and `validate_xml` never panic, and whatever the validator accepts really is an assertion for
//! this connection (issuer, request, subject), signed by the trusted fixture IdP.
//!
//! The expectations are those of the corpus in `idp-fixtures/saml/corpus/` (see its README), so
//! the valid seeds pass and the fuzzer mutates from a response that reaches the deepest checks.
#![no_main]
use fedgate_saml::validate::{
    decode, peek_in_response_to, validate_xml, Expectations, ExpectedRequest, SamlError, ValidatedAssertion,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const IDP_CERT_PEM: &str = include_str!("../../../idp-fixtures/saml/keys/idp.crt.pem");
const SP_KEY_PEM: &str = include_str!("../../../idp-fixtures/saml/keys/sp.key.pem");
const IDP_ENTITY_ID: &str = "https://idp.fixture.test/saml";
const SP_ENTITY_ID: &str = "https://fedgate.test/sso/saml/conn_corpus/metadata";
const ACS_URL: &str = "https://fedgate.test/sso/saml/conn_corpus/acs";
const REQUEST_ID: &str = "lgn_corpus00000000000000000000";
/// 2026-01-01T00:01:00Z: one minute after the IssueInstant of every corpus case.
const NOW: i64 = 1_767_225_600 + 60;
const SKEW_SECS: i64 = 120;

fn idp_certs() -> &'static [Vec<u8>] {
    static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        let cert = openssl::x509::X509::from_pem(IDP_CERT_PEM.as_bytes()).expect("idp.crt.pem");
        vec![cert.to_der().expect("DER")]
    })
}

fn expectations(request: ExpectedRequest<'static>) -> Expectations<'static> {
    Expectations {
        idp_entity_id: IDP_ENTITY_ID,
        idp_certs_der: idp_certs(),
        sp_entity_id: SP_ENTITY_ID,
        acs_url: ACS_URL,
        allow_sha1: false,
        skew_secs: SKEW_SECS,
        now: NOW,
        request,
        decryption_key_pem: Some(SP_KEY_PEM),
        require_encrypted: false,
        allow_cbc: true,
    }
}

/// Every error renders (code, message, fix) without panicking.
fn render(err: &SamlError) {
    assert!(err.code().starts_with("saml_"), "code {:?}", err.code());
    let _ = err.to_string();
    let _ = err.fix("conn_fuzz");
}

/// What an accepted response must satisfy whatever the input was.
fn check_accepted(a: &ValidatedAssertion, request: ExpectedRequest) {
    assert_eq!(a.issuer, IDP_ENTITY_ID, "accepted an assertion from another issuer");
    match request {
        ExpectedRequest::Id(id) => assert_eq!(a.in_response_to.as_deref(), Some(id), "accepted another request"),
        ExpectedRequest::Unsolicited => assert_eq!(a.in_response_to, None, "accepted a solicited response"),
    }
    assert!(!a.assertion_id.is_empty(), "accepted an assertion without ID");
    assert!(a.expires_at >= NOW, "accepted an expired assertion");
    assert!(
        a.protection.iter().any(|p| *p == "response" || *p == "assertion"),
        "accepted an assertion with protection {:?}",
        a.protection
    );
}

fn validate(xml: &str) {
    let _ = peek_in_response_to(xml).map_err(|e| render(&e));
    // The solicited check on everything; the unsolicited one only for responses without an
    // InResponseTo (it would stop at the same point otherwise), to keep executions cheap.
    let solicited = ExpectedRequest::Id(REQUEST_ID);
    match validate_xml(xml, &expectations(solicited)) {
        Ok(a) => check_accepted(&a, solicited),
        Err(e) => render(&e),
    }
    if !xml.contains("InResponseTo") {
        match validate_xml(xml, &expectations(ExpectedRequest::Unsolicited)) {
            Ok(a) => check_accepted(&a, ExpectedRequest::Unsolicited),
            Err(e) => render(&e),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // The form field as posted: base64 (with whitespace), decoded and size- and DTD-checked.
    match decode(s) {
        Ok(xml) => validate(&xml),
        Err(e) => render(&e),
    }
    // The decoded document itself (the seeds are XML).
    validate(s);
});
