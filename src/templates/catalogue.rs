//! The message catalogue: every fixed text of the pages, keyed by id (`section.name`), one TOML
//! file per language under `templates/messages/`. Templates print a text with `t("id", ...)`;
//! a text may hold our own markup, and its `{name}` placeholders are filled with HTML-escaped
//! values. English is the reference: every other language has the same ids and placeholders.
use std::collections::BTreeMap;

/// The languages built in: (tag, the TOML text). English first: it is the fallback.
pub const LANGUAGES: &[(&str, &str)] = &[("en", include_str!("../../templates/messages/en.toml"))];

/// The language used when none is asked for, or the one asked for is not built in.
pub const DEFAULT_LANG: &str = "en";

#[derive(Debug, Default)]
pub struct Catalogue {
    langs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Catalogue {
    /// Parses the built-in languages.
    pub fn builtin() -> Result<Self, String> {
        let mut langs = BTreeMap::new();
        for (tag, text) in LANGUAGES {
            langs.insert((*tag).to_string(), parse(text).map_err(|e| format!("messages/{tag}.toml: {e}"))?);
        }
        Ok(Self { langs })
    }

    /// The text of `id` in `lang`, else in English.
    pub fn get(&self, lang: &str, id: &str) -> Option<&str> {
        self.langs
            .get(lang)
            .and_then(|m| m.get(id))
            .or_else(|| self.langs.get(DEFAULT_LANG).and_then(|m| m.get(id)))
            .map(String::as_str)
    }

    /// A built-in language tag for `lang`, else the default.
    pub fn lang<'a>(&'a self, lang: &'a str) -> &'a str {
        if self.langs.contains_key(lang) {
            lang
        } else {
            DEFAULT_LANG
        }
    }

    /// Every (language, id, text).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.langs.iter().flat_map(|(l, m)| m.iter().map(move |(k, v)| (l.as_str(), k.as_str(), v.as_str())))
    }
}

/// `[section] name = "text"` -> `section.name` = text.
fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = BTreeMap::new();
    for (section, v) in table {
        let toml::Value::Table(entries) = v else {
            return Err(format!("`{section}` is not a [section]"));
        };
        for (name, v) in entries {
            let toml::Value::String(s) = v else {
                return Err(format!("`{section}.{name}` is not a string"));
            };
            out.insert(format!("{section}.{name}"), s);
        }
    }
    Ok(out)
}

/// The `{name}` placeholders of a text, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// Fills the `{name}` placeholders of `text` with `value(name)` (already escaped HTML).
pub fn fill(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, minijinja::Error>,
) -> Result<String, minijinja::Error> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        out.push_str(&value(&after[..close])?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
