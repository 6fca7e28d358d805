//! IdP metadata in, SP metadata out, and the X.509 certificates in between.
use crate::validate::{is, NS_DSIG, NS_PROTOCOL};
use base64::Engine;
use openssl::x509::X509;
use roxmltree::{Document, Node};

pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// Largest accepted metadata document.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// What fedgate needs from an IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url_redirect: Option<String>,
    pub sso_url_post: Option<String>,
    /// Signing certificates, PEM.
    pub certificates: Vec<String>,
    /// `validUntil`, unix seconds.
    pub valid_until: Option<i64>,
}

/// A certificate as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub pem: String,
    pub subject: String,
    pub not_after: i64,
    pub fingerprint_sha256: String,
}

/// Parses one certificate (PEM, or bare base64 DER as found in metadata) into canonical PEM.
pub fn normalize_cert(s: &str) -> Result<String, String> {
    let s = s.trim();
    let x = if s.starts_with("-----BEGIN") {
        X509::from_pem(s.as_bytes()).map_err(|_| "not a valid PEM certificate".to_string())?
    } else {
        let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| "the certificate is not valid base64".to_string())?;
        X509::from_der(&der).map_err(|_| "not a valid X.509 certificate".to_string())?
    };
    let pem = x.to_pem().map_err(|_| "cannot encode the certificate".to_string())?;
    String::from_utf8(pem).map_err(|_| "cannot encode the certificate".to_string())
}

/// DER bytes of a PEM certificate.
pub fn cert_der(pem: &str) -> Result<Vec<u8>, String> {
    X509::from_pem(pem.as_bytes()).and_then(|x| x.to_der()).map_err(|_| "not a valid PEM certificate".to_string())
}

fn asn1_unix(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

pub fn cert_info(pem: &str) -> Result<CertInfo, String> {
    let x = X509::from_pem(pem.as_bytes()).map_err(|_| "not a valid PEM certificate".to_string())?;
    let der = x.to_der().map_err(|_| "cannot encode the certificate".to_string())?;
    let subject = x.subject_name().entries().filter_map(|e| e.data().to_string().ok()).collect::<Vec<_>>().join(", ");
    Ok(CertInfo {
        pem: pem.to_string(),
        subject,
        not_after: asn1_unix(x.not_after()).unwrap_or(0),
        fingerprint_sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

/// Longest IdP URL accepted (SSO URLs, metadata URL).
pub const MAX_URL_LEN: usize = 2048;

/// The rules for every URL an IdP gives fedgate (SSO URLs, the metadata URL), on the first
/// import and on every metadata refresh alike: a URL with a host, https (http only in dev
/// mode), at most [`MAX_URL_LEN`] bytes. Returns the trimmed URL, or why not (to follow the
/// field name).
pub fn check_idp_url(u: &str, dev_mode: bool) -> Result<String, String> {
    let t = u.trim();
    let parsed = url::Url::parse(t).map_err(|_| "is not a URL".to_string())?;
    let scheme_ok = parsed.scheme() == "https" || (dev_mode && parsed.scheme() == "http");
    if !scheme_ok || parsed.host_str().is_none_or(str::is_empty) || t.len() > MAX_URL_LEN {
        return Err(format!("must be an https URL with a host, at most {MAX_URL_LEN} bytes"));
    }
    Ok(t.to_string())
}

impl IdpMetadata {
    /// Every SSO URL follows [`check_idp_url`], and there is at least one.
    pub fn check_sso_urls(&self, dev_mode: bool) -> Result<(), String> {
        if self.sso_url_redirect.is_none() && self.sso_url_post.is_none() {
            return Err("the metadata has no SingleSignOnService for the HTTP-Redirect or HTTP-POST binding".into());
        }
        for (what, u) in [("HTTP-Redirect", &self.sso_url_redirect), ("HTTP-POST", &self.sso_url_post)] {
            if let Some(u) = u {
                check_idp_url(u, dev_mode).map_err(|m| {
                    let shown: String = u.chars().take(100).collect();
                    format!("the {what} SingleSignOnService Location {shown:?} {m}")
                })?;
            }
        }
        Ok(())
    }
}

/// Parses IdP metadata: an `EntityDescriptor`, or an `EntitiesDescriptor` holding exactly one
/// IdP (or the one whose entityID is `want_entity_id`). Refuses metadata without a signing
/// certificate: samael would then accept unsigned responses, fedgate never does.
pub fn parse_idp_metadata(xml: &str, want_entity_id: Option<&str>) -> Result<IdpMetadata, String> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(format!("the metadata is larger than {} KiB", MAX_METADATA_BYTES / 1024));
    }
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err("the metadata contains a DTD, which is not allowed".into());
    }
    let doc = Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 500_000, ..Default::default() },
    )
    .map_err(|e| format!("the metadata is not well-formed XML ({e})"))?;
    let root = doc.root_element();
    let candidates: Vec<Node> = if is(root, NS_MD, "EntityDescriptor") {
        vec![root]
    } else if is(root, NS_MD, "EntitiesDescriptor") {
        root.descendants().filter(|n| is(*n, NS_MD, "EntityDescriptor")).collect()
    } else {
        return Err("the document is not SAML 2.0 metadata (no md:EntityDescriptor)".into());
    };
    let idps: Vec<Node> = candidates
        .into_iter()
        .filter(|e| e.children().any(|c| is(c, NS_MD, "IDPSSODescriptor")))
        .filter(|e| want_entity_id.is_none_or(|w| e.attribute("entityID") == Some(w)))
        .collect();
    let ed = match idps.as_slice() {
        [one] => *one,
        [] => return Err("the metadata describes no identity provider (no IDPSSODescriptor)".into()),
        _ => return Err("the metadata describes several identity providers: set idp_entity_id to choose one".into()),
    };
    let entity_id = ed.attribute("entityID").unwrap_or_default().trim().to_string();
    if entity_id.is_empty() || entity_id.len() > 1024 {
        return Err("the EntityDescriptor has no entityID".into());
    }
    let idp = ed.children().find(|c| is(*c, NS_MD, "IDPSSODescriptor")).ok_or("no IDPSSODescriptor")?;
    if !idp.attribute("protocolSupportEnumeration").is_some_and(|p| p.split_whitespace().any(|x| x == NS_PROTOCOL)) {
        return Err("the identity provider does not support SAML 2.0 (protocolSupportEnumeration)".into());
    }
    let mut certificates = Vec::new();
    for kd in idp.children().filter(|c| is(*c, NS_MD, "KeyDescriptor")) {
        if kd.attribute("use").is_some_and(|u| u != "signing") {
            continue;
        }
        for c in kd.descendants().filter(|n| is(*n, NS_DSIG, "X509Certificate")) {
            let b64: String = c.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect();
            let pem =
                normalize_cert(&b64).map_err(|e| format!("a signing certificate in the metadata is invalid: {e}"))?;
            if !certificates.contains(&pem) {
                certificates.push(pem);
            }
        }
    }
    if certificates.is_empty() {
        return Err("the metadata has no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate): fedgate never accepts unsigned assertions".into());
    }
    let mut sso_url_redirect = None;
    let mut sso_url_post = None;
    for s in idp.children().filter(|c| is(*c, NS_MD, "SingleSignOnService")) {
        let loc = s.attribute("Location").map(str::trim).unwrap_or_default().to_string();
        match s.attribute("Binding") {
            Some(BINDING_REDIRECT) if sso_url_redirect.is_none() => sso_url_redirect = Some(loc),
            Some(BINDING_POST) if sso_url_post.is_none() => sso_url_post = Some(loc),
            _ => {}
        }
    }
    if sso_url_redirect.is_none() && sso_url_post.is_none() {
        return Err("the metadata has no SingleSignOnService for the HTTP-Redirect or HTTP-POST binding".into());
    }
    let valid_until =
        ed.attribute("validUntil").or_else(|| root.attribute("validUntil")).and_then(crate::validate::parse_instant);
    Ok(IdpMetadata { entity_id, sso_url_redirect, sso_url_post, certificates, valid_until })
}

fn esc(s: &str) -> String {
    crate::text::escape(s)
}

/// The body of a PEM certificate (base64 DER, no armour).
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
}

/// fedgate's SP metadata for one connection.
pub fn sp_metadata(entity_id: &str, acs_url: &str, cert_pem: &str, sign_requests: bool) -> String {
    let cert = pem_body(cert_pem);
    let key = |usage: &str| {
        format!(
            "<md:KeyDescriptor use=\"{usage}\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{}</md:KeyDescriptor>",
            if usage == "encryption" {
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/><md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes128-gcm\"/><md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/><md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes128-cbc\"/><md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>"
            } else {
                ""
            }
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor xmlns:md=\"{NS_MD}\" xmlns:ds=\"{NS_DSIG}\" entityID=\"{}\">\
<md:SPSSODescriptor AuthnRequestsSigned=\"{sign_requests}\" WantAssertionsSigned=\"true\" protocolSupportEnumeration=\"{NS_PROTOCOL}\">\
{}{}\
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>\
<md:AssertionConsumerService Binding=\"{BINDING_POST}\" Location=\"{}\" index=\"0\" isDefault=\"true\"/>\
</md:SPSSODescriptor></md:EntityDescriptor>\n",
        esc(entity_id),
        key("signing"),
        key("encryption"),
        esc(acs_url),
    )
}

/// A fresh SP key pair for a connection: RSA-2048 (what IdPs can encrypt to and verify), with a
/// self-signed certificate valid for ten years. Returns (PKCS#8 key PEM, certificate PEM).
pub fn generate_sp_key(common_name: &str, now: i64) -> Result<(String, String), String> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let run = || -> Result<(String, String), openssl::error::ErrorStack> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(now - 3600)?;
        let not_after = Asn1Time::from_unix(now + 10 * 365 * 86_400)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.sign(&key, MessageDigest::sha256())?;
        let cert = b.build();
        let key_pem = String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned();
        let cert_pem = String::from_utf8_lossy(&cert.to_pem()?).into_owned();
        Ok((key_pem, cert_pem))
    };
    run().map_err(|e| format!("cannot generate the SP key: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sso_urls_follow_the_import_rules() {
        let m = |r: Option<&str>, p: Option<&str>| IdpMetadata {
            entity_id: "https://idp.example/x".into(),
            sso_url_redirect: r.map(str::to_string),
            sso_url_post: p.map(str::to_string),
            certificates: vec![],
            valid_until: None,
        };
        assert!(m(Some("https://idp.example/sso"), None).check_sso_urls(false).is_ok());
        assert!(m(None, Some("https://idp.example/sso")).check_sso_urls(false).is_ok());
        let long = format!("https://idp.example/{}", "a".repeat(MAX_URL_LEN));
        for bad in [
            "http://idp.example/sso",
            "javascript:alert(1)",
            "https://",
            "https://:443/sso",
            "data:text/html,x",
            "sso",
            &long,
        ] {
            let e = m(Some("https://idp.example/ok"), Some(bad)).check_sso_urls(false).unwrap_err();
            assert!(e.contains("HTTP-POST"), "{bad}: {e}");
        }
        assert!(m(Some("http://idp.example/sso"), None).check_sso_urls(true).is_ok(), "http in dev mode");
        assert!(m(Some("javascript:alert(1)"), None).check_sso_urls(true).is_err());
        assert!(m(None, None).check_sso_urls(true).is_err());
    }

    fn md(cert: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="{NS_MD}" xmlns:ds="{NS_DSIG}" entityID="https://idp.example/x">
  <md:IDPSSODescriptor protocolSupportEnumeration="{NS_PROTOCOL}">
    {cert}
    <md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="https://idp.example/sso/redirect"/>
    <md:SingleSignOnService Binding="{BINDING_POST}" Location="https://idp.example/sso/post"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    #[test]
    fn parses_metadata_and_refuses_it_without_signing_certificate() {
        let (_, cert) = generate_sp_key("t", 1_767_225_600).unwrap();
        let body = pem_body(&cert);
        let kd = format!(
            "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n{body}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        );
        let m = parse_idp_metadata(&md(&kd), None).unwrap();
        assert_eq!(m.entity_id, "https://idp.example/x");
        assert_eq!(m.sso_url_redirect.as_deref(), Some("https://idp.example/sso/redirect"));
        assert_eq!(m.sso_url_post.as_deref(), Some("https://idp.example/sso/post"));
        assert_eq!(m.certificates, vec![cert.clone()]);
        let enc_only = kd.replace("use=\"signing\"", "use=\"encryption\"");
        let err = parse_idp_metadata(&md(&enc_only), None).unwrap_err();
        assert!(err.contains("no signing certificate"), "{err}");
        assert!(parse_idp_metadata(&md(""), None).is_err());
        let info = cert_info(&cert).unwrap();
        assert!(info.not_after > 1_767_225_600 + 9 * 365 * 86_400);
        assert_eq!(info.fingerprint_sha256.len(), 64);
    }

    #[test]
    fn sp_metadata_is_escaped_and_parses() {
        let (_, cert) = generate_sp_key("t", 0).unwrap();
        let x = sp_metadata("https://f.test/sso/saml/c\"x/metadata", "https://f.test/acs?a=1&b=2", &cert, true);
        let d = Document::parse(&x).unwrap();
        assert_eq!(d.root_element().attribute("entityID"), Some("https://f.test/sso/saml/c\"x/metadata"));
    }
}
