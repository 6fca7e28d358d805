//! The two XML parsers that read a SAML message must read one document. fedgate's checks read
//! it with roxmltree, xmlsec verifies libxml2's reading of it (samael parses with recovery on).
//! For any bytes that pass the ACS gate (`parse_checked`: UTF-8 only, no DTD, node and depth
//! limits, libxml2's strict reading equal to roxmltree's), libxml2 in samael's own mode must
//! read exactly the same tree; the fuzzer fails on the first input where it does not.
#![no_main]
use fedgate_saml::xml::{libxml_reads_alike, parse_checked, SAMAEL_READING};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(doc) = parse_checked(s) else { return };
    // The gate strips a UTF-8 BOM; samael parses what the gate returns.
    let checked = fedgate_saml::xml::check_bytes(s).expect("passed the gate once");
    if let Err(e) = libxml_reads_alike(checked, &doc, SAMAEL_READING) {
        panic!("accepted input read differently by libxml2 in samael's mode: {e}\n{checked:?}");
    }
});
