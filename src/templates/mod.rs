//! Server-rendered pages for people: every HTML page fedgate answers comes from a template under
//! `templates/` (embedded in the binary), rendered by one minijinja environment built once, with
//! HTML autoescaping, strict undefined values (a missing variable is an error, never an empty
//! string), a message catalogue (`t("id", ...)`, [`catalogue`]) and a branding hook
//! ([`Branding`]). A page that cannot be rendered becomes a plain 500 and a logged error.
//! No JavaScript; the base layout's styles are inline (the Content-Security-Policy allows inline
//! styles, no scripts). See docs/templates.md.
mod branding;
pub mod catalogue;

pub use branding::Branding;
pub use catalogue::{Catalogue, DEFAULT_LANG};

use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder};
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value};
use serde::Serialize;
use std::sync::{Arc, LazyLock};

/// Every template, embedded in the binary: (name, source). `*.html` is HTML-escaped.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("style.css", include_str!("../../templates/style.css")),
    ("error.html", include_str!("../../templates/error.html")),
    ("login_email.html", include_str!("../../templates/login_email.html")),
    ("login_chooser.html", include_str!("../../templates/login_chooser.html")),
    ("auto_post.html", include_str!("../../templates/auto_post.html")),
    ("dev_login.html", include_str!("../../templates/dev_login.html")),
    ("logout_confirm.html", include_str!("../../templates/logout_confirm.html")),
    ("logout_done.html", include_str!("../../templates/logout_done.html")),
    ("demo_home.html", include_str!("../../templates/demo_home.html")),
    ("demo_failed.html", include_str!("../../templates/demo_failed.html")),
    ("demo_signed_in.html", include_str!("../../templates/demo_signed_in.html")),
    ("demo_saml_idp.html", include_str!("../../templates/demo_saml_idp.html")),
    ("demo_saml_idp_error.html", include_str!("../../templates/demo_saml_idp_error.html")),
    ("portal_base.html", include_str!("../../templates/portal_base.html")),
    ("portal_home.html", include_str!("../../templates/portal_home.html")),
    ("portal_landing.html", include_str!("../../templates/portal_landing.html")),
    ("portal_link_dead.html", include_str!("../../templates/portal_link_dead.html")),
    ("portal_done.html", include_str!("../../templates/portal_done.html")),
    ("portal_scim.html", include_str!("../../templates/portal_scim.html")),
    ("portal_scim_lines.html", include_str!("../../templates/portal_scim_lines.html")),
    ("portal_scim_milestones.html", include_str!("../../templates/portal_scim_milestones.html")),
    ("portal_domains.html", include_str!("../../templates/portal_domains.html")),
    ("portal_sso_errors.html", include_str!("../../templates/portal_sso_errors.html")),
    ("portal_sso.html", include_str!("../../templates/portal_sso.html")),
    ("portal_sso_oidc.html", include_str!("../../templates/portal_sso_oidc.html")),
    ("portal_sso_connection.html", include_str!("../../templates/portal_sso_connection.html")),
    ("portal_sso_test.html", include_str!("../../templates/portal_sso_test.html")),
    ("console_base.html", include_str!("../../templates/console_base.html")),
    ("console_why.html", include_str!("../../templates/console_why.html")),
    ("console_notice.html", include_str!("../../templates/console_notice.html")),
    ("console_tenants.html", include_str!("../../templates/console_tenants.html")),
    ("console_tenant.html", include_str!("../../templates/console_tenant.html")),
    ("console_logins.html", include_str!("../../templates/console_logins.html")),
    ("console_login.html", include_str!("../../templates/console_login.html")),
    ("console_events.html", include_str!("../../templates/console_events.html")),
    ("console_webhooks.html", include_str!("../../templates/console_webhooks.html")),
    ("console_webhook.html", include_str!("../../templates/console_webhook.html")),
    ("console_audit.html", include_str!("../../templates/console_audit.html")),
];

/// Templates that are parts of pages, not pages.
pub const PARTS: &[&str] = &[
    "base.html",
    "style.css",
    "portal_base.html",
    "portal_sso_errors.html",
    "portal_scim_lines.html",
    "portal_scim_milestones.html",
    "console_base.html",
    "console_why.html",
];

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template environment: {0}")]
    Setup(String),
    #[error("{0:#}")]
    Template(#[from] minijinja::Error),
}

/// How a page looks: branding and language (the defaults are fedgate's look, in English).
#[derive(Debug, Clone)]
pub struct Look {
    pub brand: Branding,
    pub lang: String,
}

impl Default for Look {
    fn default() -> Self {
        Self { brand: Branding::default(), lang: DEFAULT_LANG.to_string() }
    }
}

static ENV: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(build);

/// The one template environment.
fn build() -> Result<Environment<'static>, String> {
    let catalogue = Arc::new(Catalogue::builtin()?);
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.set_formatter(format_value);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| format!("{name}: {e:#}"))?;
    }
    env.add_function("t", move |state: &State, id: &str, kwargs: Kwargs| translate(&catalogue, state, id, kwargs));
    Ok(env)
}

/// Prints a value: HTML-escaped with [`crate::html::escape`] in HTML templates (the escaping
/// fedgate's pages always had: `&<>"'`, so URLs in attributes stay readable), as-is elsewhere.
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
        if value.is_undefined() {
            return Err(Error::from(ErrorKind::UndefinedError));
        }
        out.write_str(&crate::html::escape(&value.to_string())).map_err(Error::from)
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

/// `t("id", name=value, ...)`: the catalogue's text in the page's language, its placeholders
/// filled with the escaped values. Every placeholder needs a value and every value a placeholder.
fn translate(catalogue: &Catalogue, state: &State, id: &str, kwargs: Kwargs) -> Result<Value, Error> {
    let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let text = catalogue
        .get(catalogue.lang(&lang), id)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("no message `{id}` in the catalogue")))?;
    let filled = catalogue::fill(text, |name| {
        let v: Value = kwargs.get(name)?;
        if v.is_undefined() {
            return Err(Error::new(ErrorKind::UndefinedError, format!("`{name}` of message `{id}` is undefined")));
        }
        Ok(if v.is_safe() { v.to_string() } else { crate::html::escape(&v.to_string()) })
    })?;
    kwargs.assert_all_used()?;
    Ok(Value::from_safe_string(filled))
}

/// Renders template `name` with the page's values `ctx` (`lang` and `brand` are added).
pub fn render(name: &str, ctx: impl Serialize, look: &Look) -> Result<String, RenderError> {
    let env = ENV.as_ref().map_err(|e| RenderError::Setup(e.clone()))?;
    let ctx = minijinja::context! { lang => look.lang, brand => look.brand, ..Value::from_serialize(ctx) };
    Ok(env.get_template(name)?.render(ctx)?)
}

/// The Content-Security-Policy of a page that shows a logo from `origin` (the default policy,
/// set by the http middleware, plus that image source).
fn csp_with_logo(origin: &str) -> String {
    format!("default-src 'none'; style-src 'unsafe-inline'; img-src {origin}; frame-ancestors 'none'; base-uri 'none'")
}

/// The page `name` as the HTML body of `builder`'s response, in `look`. A page that cannot be
/// rendered is a plain 500 (and an error in the log).
pub fn respond_with(mut builder: HttpResponseBuilder, name: &str, ctx: impl Serialize, look: &Look) -> HttpResponse {
    match render(name, ctx, look) {
        Ok(body) => {
            if let Some(origin) = look.brand.logo_origin() {
                builder.insert_header((header::CONTENT_SECURITY_POLICY, csp_with_logo(&origin)));
            }
            builder.content_type("text/html; charset=utf-8").body(body)
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "page cannot be rendered");
            failure()
        }
    }
}

/// [`respond_with`] in the default look.
pub fn respond(builder: HttpResponseBuilder, name: &str, ctx: impl Serialize) -> HttpResponse {
    respond_with(builder, name, ctx, &Look::default())
}

/// The answer when a page cannot be rendered: a fixed page, no template.
pub fn failure() -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Internal error</title></head>\
             <body><h1>Internal error</h1><p>This page cannot be shown.</p>\
             <p>Error code <code>internal_error</code></p></body></html>",
        )
}

/// The page a person sees when something went wrong: what happened, a short code and the
/// request id to give to support.
#[derive(Debug, Serialize)]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: crate::error_code::ErrorCode,
    pub request_id: &'a str,
    /// "Return to the application": an address the app registered.
    pub back: Option<&'a str>,
    /// The login's trace id, when the login has a trace.
    pub trace: Option<&'a str>,
}

impl ErrorPage<'_> {
    /// This page as the body of `builder`'s response.
    pub fn respond(&self, builder: HttpResponseBuilder) -> HttpResponse {
        respond(builder, "error.html", self)
    }
}

/// A hidden form field (`<input type="hidden" name= value=>`).
#[derive(Debug, Serialize)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

#[cfg(test)]
mod tests;
