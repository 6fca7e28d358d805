//! Server-rendered pages for people: the error page, the work-email page, the connection
//! chooser, the dev connector's confirmation page. No JavaScript; every value HTML-escaped.

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1f2328;margin:0}\
main{max-width:28rem;margin:10vh auto;background:#fff;border:1px solid #d8dee4;border-radius:10px;padding:2rem}\
h1{font-size:1.3rem;margin:0 0 1rem}p{line-height:1.5}.muted{color:#59636e;font-size:.875rem}\
code{background:#eff1f3;padding:.1rem .3rem;border-radius:4px}\
label{display:block;margin:.5rem 0 .25rem;font-weight:600}\
input[type=email],input[type=text]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #d0d7de;border-radius:6px;font-size:1rem}\
button{margin-top:1rem;padding:.55rem 1rem;border-radius:6px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#fff;color:#1f2328;border-color:#d0d7de}\
ul.choices{list-style:none;padding:0}ul.choices li{margin:.5rem 0}ul.choices button{width:100%;text-align:left}\
.error{color:#cf222e}";

/// A complete page. `body` must already be escaped HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{t}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        t = escape(title)
    )
}

/// The page a person sees when something went wrong: what happened, a short code and the
/// request id to give to support.
pub fn error_page(
    title: &str,
    message: &str,
    code: &str,
    request_id: &str,
    back: Option<&str>,
    trace: Option<&str>,
) -> String {
    let trace = trace.map(|t| format!(" · Trace <code>{}</code>", escape(t))).unwrap_or_default();
    let back =
        back.map(|u| format!("<p><a href=\"{}\">Return to the application</a></p>", escape(u))).unwrap_or_default();
    page(
        title,
        &format!(
            "<h1>{}</h1><p>{}</p>{back}<p class=\"muted\">Error code <code>{}</code> · Request <code>{}</code>{trace}<br>\
             If this keeps happening, give these to your administrator or support.</p>",
            escape(title),
            escape(message),
            escape(code),
            escape(request_id)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;");
        let p = error_page("<t>", "<script>", "c", "r", Some("https://x/?a=1&b=\"2"), Some("lgn_1"));
        assert!(p.contains("a=1&amp;b=&quot;2"));
        assert!(!p.contains("<script>"));
    }
}
