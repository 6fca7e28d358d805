//! The gate in front of the two XML parsers that read a SAML message.
//!
//! fedgate's checks read the message with roxmltree; xmlsec verifies signatures on libxml2's
//! reading of it. If the two ever saw different documents, the checks would approve one
//! document while xmlsec verified another (hidden references, a reference to an internal URL,
//! a `file:` that never ends). So, before any parser runs:
//! - the bytes must be UTF-8 XML 1.0: an optional UTF-8 BOM (removed), an optional declaration
//!   that names no encoding other than UTF-8, no second declaration, no markup declarations
//!   (DTD, entities), and only characters both parsers read alike (no C0/C1 controls);
//!
//! then roxmltree parses with node and depth limits, and libxml2 parses the same bytes strictly
//! (no recovery, no network): the two trees must be identical — elements, namespaces,
//! attributes, text, comments and processing instructions — or the message is refused.
//!
//! Finally, [`harden_libraries`] configures xmlsec and libxml2 once per process so that even a
//! message that slipped past every check cannot make them load anything: xmlsec's URI loaders
//! (file, HTTP, FTP) are removed and libxml2's external entity loader refuses every request.
//!
//! The one module allowed `unsafe` (the workspace denies it): the libxml2 tree walk and the
//! library settings call C through `libxml::bindings`.
#![allow(unsafe_code)]
use crate::validate::SamlError;
use roxmltree::{Document, Node};
use std::ffi::CStr;
use std::os::raw::c_char;

/// Most nodes (elements, text, comments, PIs) a message may have.
pub const MAX_NODES: u32 = 20_000;
/// Deepest element nesting (a SAML response is about 8 deep).
pub const MAX_DEPTH: usize = 48;

/// Checks the raw bytes before any XML parser sees them and returns the document without a
/// UTF-8 byte order mark.
pub fn check_bytes(xml: &str) -> Result<&str, SamlError> {
    let body = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    if let Some(bad) = body.chars().find(|c| !allowed_char(*c)) {
        return Err(SamlError::Malformed(format!(
            "the document contains the character U+{:04X}, which is not accepted",
            u32::from(bad)
        )));
    }
    let rest = match body.strip_prefix("<?xml") {
        Some(decl) if decl.starts_with(|c: char| c.is_ascii_whitespace()) => {
            let end =
                decl.find("?>").ok_or_else(|| SamlError::Malformed("the XML declaration is not closed".into()))?;
            check_declaration(&decl[..end])?;
            &decl[end + 2..]
        }
        _ => body,
    };
    // A second declaration (or any `<?xml…` processing instruction) is an error for libxml2
    // and would be recovered from differently: refuse it.
    if find_ascii_ci(rest, "<?xml").is_some() {
        return Err(SamlError::Malformed("the document contains a second XML declaration".into()));
    }
    refuse_markup_declarations(body)?;
    Ok(body)
}

fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    hay.as_bytes().windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// `version="1.0"`, then optionally `encoding="UTF-8"` and `standalone="yes|no"`, in that order
/// (XML 1.0 §2.8), nothing else.
fn check_declaration(decl: &str) -> Result<(), SamlError> {
    let mut fields = Vec::new();
    let mut s = decl.trim_start();
    while !s.is_empty() {
        let eq = s.find('=').ok_or_else(|| bad_decl("a pseudo-attribute has no value"))?;
        let name = s[..eq].trim_end();
        let after = s[eq + 1..].trim_start();
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'').ok_or_else(|| bad_decl("unquoted"))?;
        let close = after[1..].find(quote).ok_or_else(|| bad_decl("unterminated value"))?;
        fields.push((name, &after[1..1 + close]));
        let next = &after[close + 2..];
        if !next.is_empty() && !next.starts_with(|c: char| c.is_ascii_whitespace()) {
            return Err(bad_decl("pseudo-attributes must be separated by white space"));
        }
        s = next.trim_start();
    }
    let mut it = fields.into_iter().peekable();
    match it.next() {
        Some(("version", "1.0")) => {}
        _ => return Err(bad_decl("only XML version 1.0 is accepted")),
    }
    if let Some(&("encoding", enc)) = it.peek() {
        if !enc.eq_ignore_ascii_case("utf-8") {
            return Err(SamlError::Malformed(format!(
                "the document declares the encoding {}; only UTF-8 is accepted",
                enc.chars().take(40).collect::<String>()
            )));
        }
        it.next();
    }
    if let Some(&("standalone", v)) = it.peek() {
        if v != "yes" && v != "no" {
            return Err(bad_decl("standalone must be yes or no"));
        }
        it.next();
    }
    match it.next() {
        None => Ok(()),
        Some(_) => Err(bad_decl("unexpected pseudo-attribute")),
    }
}

fn bad_decl(why: &str) -> SamlError {
    SamlError::Malformed(format!("the XML declaration is not accepted ({why})"))
}

/// Refuses `<!DOCTYPE`, `<!ENTITY` and any other markup declaration. Comments and CDATA are
/// markup too but harmless (comments cannot truncate values: text is read whole).
pub fn refuse_markup_declarations(xml: &str) -> Result<(), SamlError> {
    let mut rest = xml;
    while let Some(i) = rest.find("<!") {
        let after = &rest[i + 2..];
        if !(after.starts_with("--") || after.starts_with("[CDATA[")) {
            return Err(SamlError::DtdForbidden);
        }
        rest = after;
    }
    Ok(())
}

/// Parses with roxmltree under the node and depth limits.
pub fn parse(xml: &str) -> Result<Document<'_>, SamlError> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..Default::default() };
    let doc = Document::parse_with_options(xml, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => SamlError::DtdForbidden,
        roxmltree::Error::NodesLimitReached => SamlError::TooLarge,
        e => SamlError::Malformed(format!("not well-formed XML ({e})")),
    })?;
    // Depth without recursion: the stack holds the open ancestors of the current element.
    let mut open: Vec<roxmltree::NodeId> = Vec::new();
    for n in doc.root().descendants().filter(Node::is_element) {
        let parent = n.parent().map(|p| p.id());
        while open.last().is_some_and(|top| Some(*top) != parent) {
            open.pop();
        }
        open.push(n.id());
        if open.len() > MAX_DEPTH {
            return Err(SamlError::Malformed(format!("elements are nested deeper than {MAX_DEPTH}")));
        }
    }
    Ok(doc)
}

/// [`check_bytes`], [`parse`], then [`libxml_agrees`]: the one way the ACS reads a message.
pub fn parse_checked(xml: &str) -> Result<Document<'_>, SamlError> {
    let xml = check_bytes(xml)?;
    let doc = parse(xml)?;
    libxml_agrees(xml, &doc)?;
    Ok(doc)
}

/// One item of a document in document order, as both parsers must report it.
#[derive(Debug, PartialEq, Eq)]
enum Item<'a> {
    Open { ns: Option<&'a str>, name: &'a str, attrs: Vec<(Option<&'a str>, &'a str, String)> },
    Close,
    Text(String),
    Comment(&'a str),
    Pi(&'a str, Option<&'a str>),
}

fn mismatch() -> SamlError {
    SamlError::Malformed("the XML parsers read the document differently".into())
}

/// The roxmltree document as items (text and CDATA merged). Recursion is bounded by
/// [`MAX_DEPTH`], checked by [`parse`].
fn roxml_items<'a>(n: Node<'a, '_>, out: &mut Vec<Item<'a>>) {
    match n.node_type() {
        roxmltree::NodeType::Element => {
            let mut attrs: Vec<(Option<&str>, &str, String)> =
                n.attributes().map(|a| (a.namespace(), a.name(), a.value().to_string())).collect();
            attrs.sort();
            out.push(Item::Open { ns: n.tag_name().namespace(), name: n.tag_name().name(), attrs });
            for c in n.children() {
                roxml_items(c, out);
            }
            out.push(Item::Close);
        }
        roxmltree::NodeType::Text => push_text(out, n.text().unwrap_or_default()),
        roxmltree::NodeType::Comment => out.push(Item::Comment(n.text().unwrap_or_default())),
        roxmltree::NodeType::PI => {
            if let Some(pi) = n.pi() {
                out.push(Item::Pi(pi.target, pi.value.filter(|v| !v.is_empty())))
            }
        }
        roxmltree::NodeType::Root => {}
    }
}

fn push_text(out: &mut Vec<Item>, t: &str) {
    if let Some(Item::Text(prev)) = out.last_mut() {
        prev.push_str(t);
    } else {
        out.push(Item::Text(t.to_string()));
    }
}

/// libxml2 options of the strict reading: no recovery (an error refuses the message), no
/// network, no entity substitution, no DTD loading, errors not printed.
const STRICT: i32 = (libxml::bindings::xmlParserOption_XML_PARSE_NONET
    | libxml::bindings::xmlParserOption_XML_PARSE_NOERROR
    | libxml::bindings::xmlParserOption_XML_PARSE_NOWARNING) as i32;

/// libxml2 options of samael's own reading (the `libxml` crate's defaults: recovery on, errors
/// and warnings silent). The fuzz target `xml_differential` checks that whatever passes
/// [`parse_checked`] reads the same this way too.
pub const SAMAEL_READING: i32 = (libxml::bindings::xmlParserOption_XML_PARSE_RECOVER
    | libxml::bindings::xmlParserOption_XML_PARSE_NOERROR
    | libxml::bindings::xmlParserOption_XML_PARSE_NOWARNING) as i32;

/// Parses `xml` with libxml2 (strictly) and checks that it reads exactly what roxmltree read.
pub fn libxml_agrees(xml: &str, doc: &Document) -> Result<(), SamlError> {
    libxml_reads_alike(xml, doc, STRICT)
}

/// Parses `xml` with libxml2 under `options` and checks that it reads exactly what roxmltree
/// read (elements, namespaces, attributes, text, comments, processing instructions).
pub fn libxml_reads_alike(xml: &str, doc: &Document, options: i32) -> Result<(), SamlError> {
    harden_libraries();
    let len = i32::try_from(xml.len()).map_err(|_| SamlError::TooLarge)?;
    // SAFETY: xmlReadMemory reads `len` bytes of `xml`, which outlives the call; it returns a
    // new document (or null) that is freed below, once, by the guard.
    let ptr = unsafe {
        libxml::bindings::xmlReadMemory(xml.as_ptr().cast::<c_char>(), len, std::ptr::null(), std::ptr::null(), options)
    };
    if ptr.is_null() {
        return Err(mismatch());
    }
    struct Guard(libxml::bindings::xmlDocPtr);
    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: the pointer came from xmlReadMemory and is freed exactly once.
            unsafe { libxml::bindings::xmlFreeDoc(self.0) }
        }
    }
    let guard = Guard(ptr);
    let mut expected = Vec::new();
    roxml_items(doc.root_element(), &mut expected);
    // SAFETY: the document stays alive (guard) while its nodes are read; nodes are only read.
    let root = unsafe { libxml::bindings::xmlDocGetRootElement(guard.0) };
    let mut got: Vec<Item> = Vec::with_capacity(expected.len());
    // SAFETY: as above; `walk` follows the tree's own child/next pointers.
    unsafe { walk(root, &mut got, 0)? };
    if got == expected {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// A C string of libxml2's (UTF-8), borrowed for as long as the document lives.
///
/// # Safety
/// `p` is null or a NUL-terminated string owned by a live document.
unsafe fn cstr<'a>(p: *const u8) -> Result<Option<&'a str>, SamlError> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p.cast::<c_char>()).to_str().map(Some).map_err(|_| mismatch())
}

/// The text of a node list (an attribute's value).
///
/// # Safety
/// `n` is null or a node of a live document.
unsafe fn text_of(mut n: *mut libxml::bindings::_xmlNode) -> Result<String, SamlError> {
    use libxml::bindings as b;
    let mut s = String::new();
    while !n.is_null() {
        match (*n).type_ {
            b::xmlElementType_XML_TEXT_NODE => s.push_str(cstr((*n).content)?.unwrap_or_default()),
            _ => return Err(mismatch()),
        }
        n = (*n).next;
    }
    Ok(s)
}

/// Appends the items of element `n` and its subtree.
///
/// # Safety
/// `n` is null or an element of a live document.
unsafe fn walk<'a>(n: *mut libxml::bindings::_xmlNode, out: &mut Vec<Item<'a>>, depth: usize) -> Result<(), SamlError> {
    use libxml::bindings as b;
    if n.is_null() || depth > MAX_DEPTH {
        return Err(mismatch());
    }
    let ns = if (*n).ns.is_null() { None } else { cstr((*(*n).ns).href)? };
    let name = cstr((*n).name)?.ok_or_else(mismatch)?;
    let mut attrs = Vec::new();
    let mut a = (*n).properties;
    while !a.is_null() {
        let ans = if (*a).ns.is_null() { None } else { cstr((*(*a).ns).href)? };
        let aname = cstr((*a).name)?.ok_or_else(mismatch)?;
        attrs.push((ans, aname, text_of((*a).children)?));
        a = (*a).next;
    }
    attrs.sort();
    out.push(Item::Open { ns, name, attrs });
    let mut c = (*n).children;
    while !c.is_null() {
        match (*c).type_ {
            b::xmlElementType_XML_ELEMENT_NODE => walk(c, out, depth + 1)?,
            b::xmlElementType_XML_TEXT_NODE | b::xmlElementType_XML_CDATA_SECTION_NODE => {
                push_text(out, cstr((*c).content)?.unwrap_or_default())
            }
            b::xmlElementType_XML_COMMENT_NODE => out.push(Item::Comment(cstr((*c).content)?.unwrap_or_default())),
            b::xmlElementType_XML_PI_NODE => {
                let target = cstr((*c).name)?.ok_or_else(mismatch)?;
                out.push(Item::Pi(target, cstr((*c).content)?.filter(|v| !v.is_empty())))
            }
            // Entity references, XInclude markers, anything else: not a plain document.
            _ => return Err(mismatch()),
        }
        c = (*c).next;
    }
    out.push(Item::Close);
    Ok(())
}

#[link(name = "xmlsec1")]
extern "C" {
    fn xmlSecErrorsDefaultCallbackEnableOutput(enabled: std::os::raw::c_int);
    fn xmlSecIOCleanupCallbacks();
}

/// libxml2's external entity loader, replaced: it refuses every URL (no file, no network).
unsafe extern "C" fn refuse_external_entity(
    _url: *const c_char,
    _id: *const c_char,
    _ctx: libxml::bindings::xmlParserCtxtPtr,
) -> libxml::bindings::xmlParserInputPtr {
    std::ptr::null_mut()
}

const INIT_DOC: &str =
    "<r ID=\"a\"><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo/></ds:Signature></r>";

/// Configures xmlsec and libxml2 for the whole process, once, before any SAML message is
/// verified: xmlsec initialised (through samael), its error output off (fedgate reports
/// failures with codes), its URI loaders removed, and libxml2's external entity loader
/// refusing everything.
pub fn harden_libraries() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};
        // SAFETY: a plain setter of a global flag in libxmlsec1, taking an int.
        unsafe { xmlSecErrorsDefaultCallbackEnableOutput(0) };
        // samael initialises xmlsec (which registers its default file/HTTP/FTP loaders) on its
        // first signature context; this call gets that far and then fails on the dummy key.
        let dummy = [CertificateDer::from(vec![0u8])];
        let _ = Crypto::reduce_xml_to_signed_with_allowed_algorithms(INIT_DOC, &dummy, ReduceMode::PreDigest, None);
        // SAFETY: process-wide setters of libxmlsec1 and libxml2, called once, before any
        // verification (every verification path calls this function first; Once blocks until
        // done). They take plain values or a function pointer and touch no memory of ours.
        unsafe {
            xmlSecIOCleanupCallbacks();
            libxml::bindings::xmlSetExternalEntityLoader(Some(refuse_external_entity));
        }
    });
}

/// Whether `n` is an element `{ns}local` (re-exported for the checks).
pub fn is(n: Node, ns: &str, local: &str) -> bool {
    n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn agree(xml: &str) -> Result<(), SamlError> {
        parse_checked(xml).map(|_| ())
    }

    #[test]
    fn utf8_declarations_and_bom() {
        assert!(agree("<?xml version=\"1.0\"?><a/>").is_ok());
        assert!(agree("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>").is_ok());
        assert!(agree("<?xml version='1.0' encoding='utf-8' standalone='yes'?><a/>").is_ok());
        assert!(agree("\u{feff}<?xml version=\"1.0\"?><a/>").is_ok());
        assert_eq!(check_bytes("\u{feff}<a/>").unwrap(), "<a/>");
        for bad in [
            "<?xml version=\"1.0\" encoding=\"UTF-7\"?><a>+ADw-b/+AD4-</a>",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>",
            "<?xml version=\"1.1\"?><a/>",
            "<?xml encoding=\"UTF-8\" version=\"1.0\"?><a/>",
            "<?xml version=\"1.0\" foo=\"bar\"?><a/>",
            "<?xml version=\"1.0\"",
            "<a/><?xml version=\"1.0\"?>",
            "<a><?XML version=\"1.0\"?></a>",
            "<a>\u{1}</a>",
            "<a>\u{85}</a>",
            "<a>\u{7f}</a>",
        ] {
            assert!(matches!(agree(bad), Err(SamlError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn declarations_refused_before_parsing() {
        assert_eq!(agree("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"), Err(SamlError::DtdForbidden));
        assert!(agree("<a><!-- c --><![CDATA[x]]></a>").is_ok());
    }

    #[test]
    fn limits() {
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert!(matches!(agree(&deep), Err(SamlError::Malformed(_))));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(agree(&ok).is_ok());
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES as usize));
        assert_eq!(agree(&wide), Err(SamlError::TooLarge));
    }

    #[test]
    fn both_parsers_read_the_same_tree() {
        let xml = "<s:a xmlns:s=\"urn:s\" xmlns=\"urn:d\" x=\"1\" s:y=\"&lt;2&gt;\">t<![CDATA[<c>]]>&amp;u<!--c--><?pi v?><b>&#65;</b></s:a>";
        let doc = parse(xml).unwrap();
        assert!(libxml_agrees(xml, &doc).is_ok());
        // A document libxml2 refuses in strict mode (undeclared prefix is an error for both, a
        // duplicated attribute through two prefixes of one namespace only for one reading).
        let dup = "<a xmlns:p=\"urn:x\" xmlns:q=\"urn:x\" p:z=\"1\" q:z=\"2\"/>";
        if let Ok(doc) = parse(dup) {
            assert!(libxml_agrees(dup, &doc).is_err());
        }
    }
}
