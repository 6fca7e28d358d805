//! The branding hook: what a page shows of the product and of the tenant. The defaults are
//! fedgate's own look; a tenant may bring a display name, an accent colour and a logo URL,
//! each checked here so that a page never carries a value that could break out of CSS or
//! load from anything but an https origin.
use serde::Serialize;

/// The product name shown by default.
pub const PRODUCT_NAME: &str = "fedgate";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Branding {
    pub product_name: String,
    /// The tenant's display name, shown above the page's content.
    pub display_name: Option<String>,
    /// An accent colour for the primary buttons (`#rgb` or `#rrggbb`).
    pub accent: Option<String>,
    /// A logo shown above the page's content (an https URL).
    pub logo_url: Option<String>,
}

impl Default for Branding {
    fn default() -> Self {
        Self { product_name: PRODUCT_NAME.to_string(), display_name: None, accent: None, logo_url: None }
    }
}

impl Branding {
    /// A tenant's branding; values that do not pass the checks are left out (the default look).
    pub fn tenant(display_name: Option<&str>, accent: Option<&str>, logo_url: Option<&str>) -> Self {
        Self {
            product_name: PRODUCT_NAME.to_string(),
            display_name: display_name.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
            accent: accent.filter(|c| is_colour(c)).map(str::to_string),
            logo_url: logo_url.and_then(logo_origin).map(|_| logo_url.unwrap_or_default().to_string()),
        }
    }

    /// The origin the page's logo loads from, for the page's Content-Security-Policy.
    pub fn logo_origin(&self) -> Option<String> {
        self.logo_url.as_deref().and_then(logo_origin)
    }
}

fn is_colour(c: &str) -> bool {
    let hex = c.strip_prefix('#').unwrap_or("");
    (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `https://host[:port]` of an https URL without credentials.
fn logo_origin(u: &str) -> Option<String> {
    let url = url::Url::parse(u).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}
