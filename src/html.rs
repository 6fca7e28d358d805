//! HTML and XML text escaping. Pages themselves come from [`crate::templates`].

/// Escapes text for HTML (and XML) element content and double-quoted attribute values (the
/// SAML core's implementation: one for the whole workspace).
pub use fedgate_saml::text::escape;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;");
    }
}
