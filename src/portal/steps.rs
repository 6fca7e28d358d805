//! The per-vendor steps of the SSO wizard come from the connection guides in
//! `docs/connections/*.md` (embedded at build time), so the docs and the portal say the same
//! thing: the wizard takes the guide's IdP-console section(s), substitutes this connection's
//! real values for the placeholders (`acs_url`, `sp_entity_id`, `sp_metadata_url`,
//! `<issuer>`), and renders the Markdown subset the guides use (headings, numbered and bulleted
//! lists with indented content, tables, code spans, bold and italic; links become their text).
//! Every character of the source is HTML-escaped before any markup is added.

/// A guide and the sections of it that are the IdP-console steps.
#[derive(Debug)]
pub struct Guide {
    pub source: &'static str,
    /// `## ` headings (exact text after `## `), in order.
    pub sections: &'static [&'static str],
}

pub const OKTA: Guide = Guide { source: include_str!("../../docs/connections/saml-okta.md"), sections: &["In Okta"] };
pub const ENTRA: Guide =
    Guide { source: include_str!("../../docs/connections/saml-entra.md"), sections: &["In Entra ID"] };
pub const GOOGLE: Guide =
    Guide { source: include_str!("../../docs/connections/saml-google.md"), sections: &["In the Google Admin console"] };
pub const ADFS: Guide = Guide {
    source: include_str!("../../docs/connections/saml-adfs.md"),
    sections: &["In AD FS: the relying party trust", "Claim issuance policy"],
};
pub const ONELOGIN: Guide =
    Guide { source: include_str!("../../docs/connections/saml-onelogin.md"), sections: &["In OneLogin"] };
pub const JUMPCLOUD: Guide =
    Guide { source: include_str!("../../docs/connections/saml-jumpcloud.md"), sections: &["In JumpCloud"] };
pub const PING: Guide =
    Guide { source: include_str!("../../docs/connections/saml-ping.md"), sections: &["In PingOne or PingFederate"] };
pub const GENERIC_SAML: Guide =
    Guide { source: include_str!("../../docs/connections/saml-generic.md"), sections: &["In your identity provider"] };
pub const GENERIC_OIDC: Guide =
    Guide { source: include_str!("../../docs/connections/oidc.md"), sections: &["At the identity provider"] };

/// The values substituted into a guide.
pub struct Values<'a> {
    pub issuer: &'a str,
    pub acs_url: Option<&'a str>,
    pub sp_entity_id: Option<&'a str>,
    pub sp_metadata_url: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
}

/// The guide's sections (Markdown), as written.
pub fn sections(g: &Guide) -> String {
    let mut out = String::new();
    for want in g.sections {
        let mut inside = false;
        for line in g.source.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                inside = h.trim() == *want;
                if inside {
                    out.push_str("### ");
                    out.push_str(h.trim());
                    out.push('\n');
                }
                continue;
            }
            if inside {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The guide's steps for one connection, as HTML.
pub fn render(g: &Guide, v: &Values<'_>) -> String {
    let mut md = sections(g);
    let host = url::Url::parse(v.issuer).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    for (name, value) in
        [("acs_url", v.acs_url), ("sp_entity_id", v.sp_entity_id), ("sp_metadata_url", v.sp_metadata_url)]
    {
        if let Some(value) = value {
            // "`acs_url` (`https://<issuer>/…`)" -> the value; then the bare name.
            let mut out = String::new();
            let pat = format!("`{name}` (`");
            let mut rest = md.as_str();
            while let Some(i) = rest.find(&pat) {
                out.push_str(&rest[..i]);
                let after = &rest[i + pat.len()..];
                match after.find("`)") {
                    Some(j) if !after[..j].contains('\n') => {
                        out.push('`');
                        out.push_str(value);
                        out.push('`');
                        rest = &after[j + 2..];
                    }
                    _ => {
                        out.push_str(&pat);
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            md = out.replace(&format!("`{name}`"), &format!("`{value}`"));
        }
    }
    if let Some(r) = v.redirect_uri {
        md = md.replace("`https://<fedgate issuer>/sso/oidc/callback`", &format!("`{r}`"));
    }
    md = md.replace("`sp_certificate`", "the service provider certificate (download it below)");
    md = md.replace("<fedgate issuer>", &host).replace("<issuer>", &host);
    to_html(&md)
}

fn indent_of(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// The ordered-list marker length of a line (`12. ` -> 4), if it starts one.
fn ordered_marker(l: &str) -> Option<usize> {
    let digits = l.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && l[digits..].starts_with(". ")).then_some(digits + 2)
}

/// Renders the Markdown subset of the guides.
pub fn to_html(md: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            out.push_str("<p>");
            out.push_str(&inline(&para.join(" ")));
            out.push_str("</p>\n");
            para.clear();
        }
    };
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_end();
        if t.trim().is_empty() {
            flush(&mut para, &mut out);
            i += 1;
            continue;
        }
        if let Some(h) = t.strip_prefix("### ").or_else(|| t.strip_prefix("#### ")) {
            flush(&mut para, &mut out);
            out.push_str(&format!("<h3>{}</h3>\n", inline(h)));
            i += 1;
            continue;
        }
        if t.starts_with("```") {
            flush(&mut para, &mut out);
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            i += 1;
            out.push_str(&format!("<pre><code>{}</code></pre>\n", crate::html::escape(&code.join("\n"))));
            continue;
        }
        if t.starts_with('|') {
            flush(&mut para, &mut out);
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(lines[i].trim());
                i += 1;
            }
            out.push_str(&table(&rows));
            continue;
        }
        let ordered = ordered_marker(t);
        let bullet = (t.starts_with("- ") || t.starts_with("* ")).then_some(2);
        if let Some(marker) = ordered.or(bullet) {
            flush(&mut para, &mut out);
            let tag = if ordered.is_some() { "ol" } else { "ul" };
            out.push_str(&format!("<{tag}>\n"));
            loop {
                // One item: its first line and every following line indented under it (blank
                // lines included when the next line is still indented).
                let mut body = vec![lines[i][marker..].to_string()];
                i += 1;
                while i < lines.len() {
                    let l = lines[i];
                    if l.trim().is_empty() {
                        let next_indented = lines.get(i + 1).is_some_and(|n| indent_of(n) >= 2 && !n.trim().is_empty());
                        if !next_indented {
                            break;
                        }
                        body.push(String::new());
                    } else if indent_of(l) >= 2 {
                        let cut = indent_of(l).min(marker.max(2));
                        body.push(l[cut..].to_string());
                    } else {
                        break;
                    }
                    i += 1;
                }
                out.push_str("<li>");
                out.push_str(&to_html(&body.join("\n")));
                out.push_str("</li>\n");
                // The next item of the same list, after at most one blank line.
                let mut j = i;
                if j < lines.len() && lines[j].trim().is_empty() {
                    j += 1;
                }
                let same = lines.get(j).map(|l| {
                    if ordered.is_some() {
                        ordered_marker(l)
                    } else {
                        (l.starts_with("- ") || l.starts_with("* ")).then_some(2)
                    }
                });
                match same.flatten() {
                    Some(_) => i = j,
                    None => break,
                }
            }
            out.push_str(&format!("</{tag}>\n"));
            continue;
        }
        para.push(t.trim());
        i += 1;
    }
    flush(&mut para, &mut out);
    // A lone paragraph inside a list item reads better without <p>.
    out
}

fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    // Split on `|` outside code spans.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_code = false;
    for c in inner.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                cur.push(c);
            }
            '|' if !in_code => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn table(rows: &[&str]) -> String {
    let mut out = String::from("<div class=\"table-wrap\"><table>\n");
    let is_sep = |r: &str| r.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '));
    let mut body_started = false;
    for (n, r) in rows.iter().enumerate() {
        if is_sep(r) {
            continue;
        }
        let header = n == 0 && rows.get(1).is_some_and(|r| is_sep(r));
        let tag = if header { "th" } else { "td" };
        if !header && !body_started {
            body_started = true;
        }
        out.push_str("<tr>");
        for c in cells(r) {
            out.push_str(&format!("<{tag}>{}</{tag}>", inline(&c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    out
}

/// Inline markup: code spans (verbatim), `**bold**`, `*italic*`, `[text](target)` -> text.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (n, part) in s.split('`').enumerate() {
        if n % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&crate::html::escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&emphasis(&links(&crate::html::escape(part))));
        }
    }
    out
}

fn links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        let after = &rest[i + 1..];
        match (after.find("]("), after.find(']')) {
            (Some(j), Some(k)) if j == k => match after[j + 2..].find(')') {
                Some(e) => {
                    out.push_str(&rest[..i]);
                    out.push_str(&after[..j]);
                    rest = &after[j + 2 + e + 1..];
                }
                None => {
                    out.push_str(&rest[..=i]);
                    rest = after;
                }
            },
            _ => {
                out.push_str(&rest[..=i]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn emphasis(s: &str) -> String {
    let mut out = String::new();
    for (n, part) in s.split("**").enumerate() {
        if n % 2 == 1 {
            out.push_str("<strong>");
            out.push_str(part);
            out.push_str("</strong>");
        } else {
            for (m, p) in part.split('*').enumerate() {
                if m % 2 == 1 {
                    out.push_str("<em>");
                    out.push_str(p);
                    out.push_str("</em>");
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_guide_has_its_sections() {
        for g in [&OKTA, &ENTRA, &GOOGLE, &ADFS, &ONELOGIN, &JUMPCLOUD, &PING, &GENERIC_SAML, &GENERIC_OIDC] {
            let s = sections(g);
            for want in g.sections {
                assert!(s.contains(&format!("### {want}")), "{want}");
            }
            assert!(s.lines().count() > 5, "{:?}", g.sections);
        }
    }

    #[test]
    fn values_are_substituted_and_everything_is_escaped() {
        let v = Values {
            issuer: "https://auth.example.com",
            acs_url: Some("https://auth.example.com/sso/saml/conn-1/acs"),
            sp_entity_id: Some("https://auth.example.com/sso/saml/conn-1/metadata"),
            sp_metadata_url: Some("https://auth.example.com/sso/saml/conn-1/metadata"),
            redirect_uri: None,
        };
        let html = render(&OKTA, &v);
        assert!(html.contains("<code>https://auth.example.com/sso/saml/conn-1/acs</code>"), "{html}");
        assert!(!html.contains("conn-&lt;id&gt;") && !html.contains("`"), "{html}");
        assert!(html.contains("<table>") && html.contains("<ol>"), "{html}");
        let h = to_html(
            "1. a <script>x</script> **b** `<c>` [d](e.md)\n   | x | y |\n   |---|---|\n   | `a|b` | 2 |\n2. next",
        );
        assert!(h.contains("a &lt;script&gt;x&lt;/script&gt; <strong>b</strong> <code>&lt;c&gt;</code> d"), "{h}");
        assert!(h.contains("<td><code>a|b</code></td>") && h.contains("<li><p>next</p>\n</li>"), "{h}");
    }
}
