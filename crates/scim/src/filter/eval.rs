//! In-memory evaluation of a filter against a resource held as JSON.
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::ast::{CompValue, CompareOp, Filter};
use crate::datetime::parse_datetime;
use crate::json::get_ci;
use crate::path::AttrPath;

/// Evaluation gives up (the filter does not match) below this AST depth, protecting the
/// stack against hand-built, absurdly deep ASTs. Parsed filters never get
/// close (the length limit bounds `and`/`or` chains to ~512 levels).
const MAX_EVAL_DEPTH: usize = 2048;

/// Evaluates `filter` against a resource held as a JSON object.
///
/// Semantics:
/// * attribute names match JSON keys case-insensitively; a schema-URN prefix
///   of an extension selects the extension object (`resource[urn]`), a core
///   prefix is ignored;
/// * multi-valued attributes match if any element matches; comparing a
///   multi-valued complex attribute without sub-attribute (`emails co "x"`)
///   compares its elements' `value`;
/// * strings compare case-insensitively unless `case_exact(path)` is true.
///   Inside a value filter `a[b eq ..]` the path passed is `a.b`;
/// * two strings that both parse as RFC 3339 date-times compare as instants;
///   otherwise ordering operators compare strings lexicographically and
///   numbers numerically; booleans and null only support `eq`/`ne`;
/// * `ne` is `not eq` (it matches absent attributes); `eq null` matches
///   absent/null attributes;
/// * `pr` means present with a value that is not null, `""`, `[]` or `{}`.
pub fn matches(filter: &Filter, resource: &Value, case_exact: impl Fn(&AttrPath) -> bool) -> bool {
    Evaluator { case_exact: &case_exact }.eval(filter, resource, None, 0).unwrap_or(false)
}

/// Evaluates `filter` against one `element` of the multi-valued attribute
/// `parent`, exactly as the inner filter of `parent[filter]` is evaluated by
/// [`matches`] (paths are relative to the element; `case_exact` receives
/// `parent.attr` + `.` + the inner attribute).
pub fn matches_element(
    filter: &Filter,
    element: &Value,
    parent: &AttrPath,
    case_exact: impl Fn(&AttrPath) -> bool,
) -> bool {
    Evaluator { case_exact: &case_exact }.eval(filter, element, Some(parent), 0).unwrap_or(false)
}

struct Evaluator<'f> {
    case_exact: &'f dyn Fn(&AttrPath) -> bool,
}

impl Evaluator<'_> {
    /// `None` when the AST is deeper than [`MAX_EVAL_DEPTH`] (the whole
    /// evaluation then yields `false`).
    fn eval(&self, f: &Filter, ctx: &Value, parent: Option<&AttrPath>, depth: usize) -> Option<bool> {
        if depth > MAX_EVAL_DEPTH {
            return None;
        }
        Some(match f {
            Filter::And(l, r) => self.eval(l, ctx, parent, depth + 1)? && self.eval(r, ctx, parent, depth + 1)?,
            Filter::Or(l, r) => self.eval(l, ctx, parent, depth + 1)? || self.eval(r, ctx, parent, depth + 1)?,
            Filter::Not(inner) => !self.eval(inner, ctx, parent, depth + 1)?,
            Filter::Present(path) => resolve(ctx, path, parent.is_none()).into_iter().any(is_present),
            Filter::Compare { path, op, value } => {
                let candidates = resolve(ctx, path, parent.is_none());
                if *value == CompValue::Null {
                    let present = candidates.into_iter().any(|v| !v.is_null());
                    return Some(match op {
                        CompareOp::Eq => !present,
                        CompareOp::Ne => present,
                        _ => false,
                    });
                }
                let exact = (self.case_exact)(&effective_path(parent, path));
                let any_eq = |op| candidates.iter().any(|c| compare(implicit_value(c), op, value, exact));
                match op {
                    CompareOp::Ne => !any_eq(CompareOp::Eq),
                    op => any_eq(*op),
                }
            }
            Filter::ValuePath { path, filter } => {
                for el in resolve(ctx, path, parent.is_none()) {
                    if el.is_object() && self.eval(filter, el, Some(path), depth + 1)? {
                        return Some(true);
                    }
                }
                false
            }
        })
    }
}

/// The path reported to `case_exact`: inside `parent[...]`, `parent.attr`.
fn effective_path(parent: Option<&AttrPath>, path: &AttrPath) -> AttrPath {
    match parent {
        None => path.clone(),
        Some(p) => {
            AttrPath { schema_urn: p.schema_urn.clone(), attr: p.attr.clone(), sub_attr: Some(path.attr.clone()) }
        }
    }
}

/// All values `path` designates in `ctx`, with arrays flattened one level.
fn resolve<'v>(ctx: &'v Value, path: &AttrPath, top_level: bool) -> Vec<&'v Value> {
    let Some(mut obj) = ctx.as_object() else {
        return Vec::new();
    };
    if top_level {
        if let Some(urn) = path.extension_urn() {
            match get_ci(obj, urn).and_then(Value::as_object) {
                Some(ext) => obj = ext,
                None => return Vec::new(),
            }
        }
    }
    let Some(v) = get_ci(obj, &path.attr) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push_flat = |v: &'v Value| match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    };
    match &path.sub_attr {
        None => push_flat(v),
        Some(sub) => {
            let parents: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for p in parents {
                if let Some(sv) = p.as_object().and_then(|o| get_ci(o, sub)) {
                    push_flat(sv);
                }
            }
        }
    }
    out
}

/// A complex value with a `value` sub-attribute compares as that value.
fn implicit_value(v: &Value) -> &Value {
    v.as_object().and_then(|o| get_ci(o, "value")).unwrap_or(v)
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn ordering_matches(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare(candidate: &Value, op: CompareOp, value: &CompValue, case_exact: bool) -> bool {
    match (candidate, value) {
        (Value::String(a), CompValue::Str(b)) => compare_strings(a, b, op, case_exact),
        (Value::Number(a), CompValue::Num(b)) => compare_numbers(a, b).is_some_and(|ord| ordering_matches(op, ord)),
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        _ => false,
    }
}

fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    use std::borrow::Cow;
    let (a, b): (Cow<'_, str>, Cow<'_, str>) = if case_exact {
        (Cow::Borrowed(a), Cow::Borrowed(b))
    } else {
        (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase()))
    };
    match op {
        CompareOp::Co => a.contains(b.as_ref()),
        CompareOp::Sw => a.starts_with(b.as_ref()),
        CompareOp::Ew => a.ends_with(b.as_ref()),
        _ => {
            let ord = match (parse_datetime(&a), parse_datetime(&b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => a.cmp(&b),
            };
            ordering_matches(op, ord)
        }
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::filter::test_util::{attr, p, pr, user};
    use serde_json::json;

    fn m(filter: &str) -> bool {
        matches(&p(filter), &user(), |_| false)
    }

    #[test]
    fn evaluates_rfc_style_filters() {
        assert!(m(r#"userName eq "bjensen@example.com""#));
        assert!(m(r#"userName Eq "BJENSEN@example.COM""#), "case-insensitive by default");
        assert!(m(r#"name.familyName co "ens""#));
        assert!(m(r#"userName sw "bj""#));
        assert!(m(r#"userName ew ".com""#));
        assert!(!m(r#"userName ew ".org""#));
        assert!(m(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#));
        assert!(m("title pr"));
        assert!(!m("nickName pr"));
        assert!(!m("name.middleName pr"), "empty string is not present");
        assert!(!m("ims pr"), "empty array is not present");
        assert!(m("emails pr"));
        assert!(m(r#"title pr and userType eq "Employee""#));
        assert!(m(r#"title pr or userType eq "Intern""#));
        assert!(!m(r#"userType eq "Intern" or nickName pr"#));
        assert!(m(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#));
        assert!(!m(r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#));
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(m(r#"emails[type eq "home"] and emails[primary eq true]"#));
        assert!(m(r#"emails.type eq "home""#), "any element matches");
        assert!(m(r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#));
        assert!(m(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#));
        assert!(m(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#));
        assert!(!m(r#"urn:example:other:1.0:User:employeeNumber eq "701984""#));
        assert!(m("active eq true") && !m("active eq false") && m("active ne false"));
        assert!(m("loginCount gt 41") && m("loginCount ge 42") && !m("loginCount lt 42"));
        assert!(m("loginCount eq 42.0") && m("loginCount le 42.5"));
        assert!(!m(r#"loginCount eq "42""#), "no type coercion");
        assert!(!m(r#"active eq "true""#));
    }

    #[test]
    fn ne_and_null_semantics() {
        assert!(m(r#"nickName ne "x""#), "ne matches absent attributes");
        assert!(m("nickName eq null"));
        assert!(!m("nickName ne null"));
        assert!(m("title ne null"));
        assert!(!m("title eq null"));
        assert!(!m(r#"emails.type ne "home""#), "ne is not-any-equal for multi-valued");
    }

    #[test]
    fn date_times_compare_as_instants() {
        assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
        assert!(m(r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#));
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#));
        assert!(m(r#"meta.lastModified lt "2011-05-13T04:42:34.5Z""#));
        assert!(m(r#"meta.created lt "2010-01-23T03:56:22Z""#), "offset applied");
        assert!(m(r#"meta.lastModified ge "2011""#), "non-date falls back to string order");
    }

    #[test]
    fn case_exact_callback() {
        let f = p(r#"externalId eq "bjensen""#);
        assert!(matches(&f, &user(), |_| false));
        assert!(!matches(&f, &user(), |p| p.attr_is("externalId")));
        // inside a value filter the callback sees parent.sub
        let f = p(r#"emails[type eq "WORK"]"#);
        let mut seen = Vec::new();
        let cell = std::cell::RefCell::new(&mut seen);
        let hit = matches(&f, &user(), |p| {
            cell.borrow_mut().push(p.to_string());
            p.attr_is("emails") && p.sub_is("type")
        });
        assert!(!hit);
        assert!(seen.iter().all(|p| p == "emails.type"), "{seen:?}");
        let el = json!({"type": "WORK"});
        assert!(matches_element(&p(r#"type eq "work""#), &el, &attr("emails"), |_| false));
    }

    #[test]
    fn evaluates_on_non_objects_without_panicking() {
        for v in [json!(null), json!(1), json!([1, 2]), json!("x")] {
            assert!(!matches(&p("a pr"), &v, |_| false));
            assert!(matches(&p(r#"a ne "x""#), &v, |_| false));
        }
        assert!(!matches(&p("emails[type pr]"), &json!({"emails": [1, "x", null]}), |_| false));
    }

    #[test]
    fn hand_built_deep_ast_does_not_overflow_evaluation() {
        let mut f = pr("a");
        for _ in 0..5000 {
            f = Filter::negate(f);
        }
        assert!(!matches(&f, &json!({"a": 1}), |_| false));
        f = Filter::negate(f);
        assert!(!matches(&f, &json!({"a": 1}), |_| false));
        // unwind manually to avoid a deep recursive drop
        let mut cur = f;
        while let Filter::Not(inner) = cur {
            cur = *inner;
        }
    }
}
