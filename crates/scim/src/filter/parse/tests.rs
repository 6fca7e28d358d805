//! Parser tests: the RFC examples, the AST built, precedence, case, values, errors and limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::Number;

use crate::filter::test_util::{attr, cmp, p, pr, round_trip, s};
use crate::filter::{matches, parse, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};
use crate::urn::ENTERPRISE_USER_SCHEMA;
use serde_json::json;

#[test]
fn rfc_examples_parse_and_round_trip() {
    let examples = [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
        r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
        r#"externalId eq "00u1abcd" and active eq true"#,
    ];
    for e in examples {
        let f = p(e);
        round_trip(&f);
    }
}

/// The fuzz smoke's find (tests/fuzz/corpus/scim_filter/regression-printed-form-over-limit):
/// a filter within the length limit whose string value is full of control characters prints
/// each as `\u0000` (6 bytes for 1), so its printed form is longer than the limit. That is
/// not a parser bug: re-parsing the printed form is refused as too long, and the round trip
/// holds for every printed form within the limit.
#[test]
fn printed_form_may_exceed_the_limit() {
    let input = format!("userName eq \"{}\"", "\u{0}".repeat(700));
    assert!(input.len() <= MAX_FILTER_LEN);
    let f = p(&input);
    let printed = f.to_string();
    assert!(printed.len() > MAX_FILTER_LEN, "{}", printed.len());
    assert!(matches!(parse(&printed), Err(FilterError::TooLong { .. })));
    // Shorter, the same value round-trips.
    round_trip(&p(&format!("userName eq \"{}\"", "\u{0}".repeat(600))));
    // The committed corpus file is that input.
    let seed = include_bytes!("../../../../../tests/fuzz/corpus/scim_filter/regression-printed-form-over-limit");
    let seed = std::str::from_utf8(seed).unwrap();
    let f = parse(seed).unwrap();
    assert!(f.to_string().len() > MAX_FILTER_LEN);
}

#[test]
fn builds_expected_ast() {
    assert_eq!(p(r#"userName eq "bjensen""#), cmp("userName", CompareOp::Eq, s("bjensen")));
    let f = p(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#);
    let Filter::Compare { path, op, value } = f else { panic!() };
    assert_eq!(path.schema_urn.as_deref(), Some(ENTERPRISE_USER_SCHEMA));
    assert_eq!(path.attr, "employeeNumber");
    assert_eq!(op, CompareOp::Eq);
    assert_eq!(value, s("7"));
    assert_eq!(
        p(r#"emails[type eq "work" and primary eq true]"#),
        Filter::ValuePath {
            path: attr("emails"),
            filter: Box::new(Filter::and(
                cmp("type", CompareOp::Eq, s("work")),
                cmp("primary", CompareOp::Eq, CompValue::Bool(true)),
            )),
        }
    );
    assert_eq!(
        p(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#),
        cmp("meta.lastModified", CompareOp::Gt, s("2011-05-13T04:42:34Z"))
    );
}

#[test]
fn precedence_not_over_and_over_or() {
    assert_eq!(p("a pr or b pr and c pr"), Filter::or(pr("a"), Filter::and(pr("b"), pr("c"))));
    assert_eq!(p("a pr and b pr or c pr"), Filter::or(Filter::and(pr("a"), pr("b")), pr("c")));
    assert_eq!(p("not (a pr) and b pr"), Filter::and(Filter::negate(pr("a")), pr("b")));
    assert_eq!(p("a pr and (b pr or c pr)"), Filter::and(pr("a"), Filter::or(pr("b"), pr("c"))));
    // left associative
    assert_eq!(p("a pr and b pr and c pr"), Filter::and(Filter::and(pr("a"), pr("b")), pr("c")));
    assert_eq!(p("a pr or b pr or c pr"), Filter::or(Filter::or(pr("a"), pr("b")), pr("c")));
    // lenient `not` without parentheses binds to one expression
    assert_eq!(p("not a pr and b pr"), Filter::and(Filter::negate(pr("a")), pr("b")));
    assert_eq!(p("not not (a pr)"), Filter::negate(Filter::negate(pr("a"))));
    assert_eq!(p("((a pr))"), pr("a"));
}

#[test]
fn keywords_and_operators_are_case_insensitive() {
    assert_eq!(p(r#"userName EQ "x" AnD title Pr"#), Filter::and(cmp("userName", CompareOp::Eq, s("x")), pr("title")));
    assert_eq!(p("NOT (a PR) OR b pr"), Filter::or(Filter::negate(pr("a")), pr("b")));
    assert_eq!(p("active eq TRUE"), cmp("active", CompareOp::Eq, CompValue::Bool(true)));
    assert_eq!(p("x Ne Null"), cmp("x", CompareOp::Ne, CompValue::Null));
    for op in CompareOp::ALL {
        let upper = format!("a {} 1", op.as_str().to_uppercase());
        assert_eq!(p(&upper), cmp("a", op, CompValue::Num(1.into())));
    }
    // attribute names are compared case-insensitively, spelling kept
    let f = p(r#"NAME.GIVENNAME eq "x""#);
    assert_eq!(f, p(r#"name.givenName eq "x""#));
    assert_eq!(f.to_string(), r#"NAME.GIVENNAME eq "x""#);
}

#[test]
fn comparison_values() {
    let v = |src: &str| match p(&format!("a eq {src}")) {
        Filter::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(v(r#""q\"b\\s\/\b\f\n\r\t\u00e9\ud83d\ude00 é""#), s("q\"b\\s/\u{8}\u{c}\n\r\t\u{e9}\u{1f600} é"));
    assert_eq!(v("42"), CompValue::Num(42.into()));
    assert_eq!(v("-7"), CompValue::Num((-7).into()));
    assert_eq!(v("18446744073709551615"), CompValue::Num(u64::MAX.into()));
    assert_eq!(v("-1.5e3"), CompValue::Num(Number::from_f64(-1500.0).unwrap()));
    assert_eq!(v("0.25"), CompValue::Num(Number::from_f64(0.25).unwrap()));
    assert_eq!(v("true"), CompValue::Bool(true));
    assert_eq!(v("False"), CompValue::Bool(false));
    assert_eq!(v("null"), CompValue::Null);
    assert_eq!(v(r#""""#), s(""));
    assert_eq!(p(r#"a eq"x""#), cmp("a", CompareOp::Eq, s("x")));
}

#[test]
fn whitespace_is_flexible() {
    assert_eq!(p("  a   pr\tand\n( b pr )  "), Filter::and(pr("a"), pr("b")));
    assert_eq!(p(r#"emails[ type eq "work" ]"#), p(r#"emails[type eq "work"]"#));
}

#[test]
fn not_can_be_an_attribute_name() {
    assert_eq!(p("not pr"), pr("not"));
    assert_eq!(p(r#"not eq "x""#), cmp("not", CompareOp::Eq, s("x")));
    assert_eq!(
        p(r#"not[and eq "x"]"#),
        Filter::ValuePath { path: attr("not"), filter: Box::new(cmp("and", CompareOp::Eq, s("x"))) }
    );
    assert_eq!(p("a pr or and pr"), Filter::or(pr("a"), pr("and")));
}

fn err(s: &str) -> FilterError {
    match parse(s) {
        Err(e) => e,
        Ok(f) => panic!("{s:?} should fail, parsed as {f:?}"),
    }
}

#[test]
fn errors_are_typed_with_positions() {
    assert_eq!(err(""), FilterError::Empty);
    assert_eq!(err("   "), FilterError::Empty);
    assert!(matches!(err(r#"userName foo "x""#), FilterError::UnknownOperator { pos: 9, .. }));
    assert!(matches!(err("userName eq"), FilterError::UnexpectedEnd { .. }));
    assert!(matches!(err("userName eq bjensen"), FilterError::InvalidValue { pos: 12, .. }));
    assert!(matches!(err(r#"userName eq "bjensen"#), FilterError::UnterminatedString { pos: 12 }));
    assert!(matches!(err("(a pr"), FilterError::UnexpectedEnd { .. }));
    assert!(matches!(err("a pr)"), FilterError::Unexpected { pos: 4, .. }));
    assert!(matches!(err("a pr b pr"), FilterError::Unexpected { pos: 5, .. }));
    assert!(matches!(err("a pr and"), FilterError::UnexpectedEnd { .. }));
    assert!(matches!(err("userName"), FilterError::UnexpectedEnd { .. }));
    assert!(matches!(err(r#"userName"x""#), FilterError::Unexpected { pos: 8, .. }));
    assert!(matches!(err(r#"1name eq "x""#), FilterError::InvalidAttrPath { pos: 0, .. }));
    assert!(matches!(err(r#"a.b.c eq "x""#), FilterError::InvalidAttrPath { .. }));
    assert!(matches!(err(r#"a eq "\x""#), FilterError::InvalidValue { .. }));
    assert!(matches!(err(r#"a eq "\ud83d""#), FilterError::InvalidValue { .. }));
    assert!(matches!(err(r#"a eq "\u12""#), FilterError::InvalidValue { .. }));
    assert!(matches!(err("a eq 01"), FilterError::InvalidValue { .. }));
    assert!(matches!(err("a eq 1."), FilterError::InvalidValue { .. }));
    assert!(matches!(err("a eq 1e999"), FilterError::InvalidValue { .. }));
    assert!(matches!(err("a eq 5and b pr"), FilterError::InvalidValue { .. }));
    assert!(matches!(err("a eq -"), FilterError::InvalidValue { .. }));
    assert!(matches!(err(r#"emails[type eq "work" and x[y pr]]"#), FilterError::NestedValuePath { pos: 27 }));
    assert!(matches!(err(r#"emails[type eq "work"].value eq "x""#), FilterError::InvalidValuePath { .. }));
    assert!(matches!(err(r#"name.givenName[x pr]"#), FilterError::InvalidValuePath { .. }));
    assert!(matches!(err("a pr \u{e9}"), FilterError::Unexpected { .. }));
    assert!(matches!(err("emails[type pr"), FilterError::UnexpectedEnd { .. }));
}

#[test]
fn error_messages_are_human_readable() {
    assert_eq!(
        err(r#"userName foo "x""#).to_string(),
        "unknown operator \"foo\" at position 9: expected eq, ne, co, sw, ew, gt, ge, lt, le or pr"
    );
    assert_eq!(
        err("a pr b pr").to_string(),
        "unexpected \"b\" at position 5: expected \"and\", \"or\" or end of filter"
    );
    assert_eq!(err("a pr )").to_string(), "unexpected ')' at position 5: expected \"and\", \"or\" or end of filter");
    assert_eq!(err("x").scim_type(), "invalidFilter");
}

#[test]
fn length_limit() {
    let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
    assert!(matches!(err(&long), FilterError::TooLong { max: MAX_FILTER_LEN, .. }));
    let ok = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN - 7));
    assert_eq!(ok.len(), MAX_FILTER_LEN);
    assert!(parse(&ok).is_ok());
}

#[test]
fn depth_limit() {
    let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_DEPTH)).is_ok());
    assert!(matches!(err(&nested(MAX_DEPTH + 1)), FilterError::TooDeep { pos: 32, max: MAX_DEPTH }));
    let nots = |n: usize| format!("{}a pr{}", "not (".repeat(n), ")".repeat(n));
    assert!(parse(&nots(MAX_DEPTH)).is_ok());
    assert!(matches!(err(&nots(MAX_DEPTH + 1)), FilterError::TooDeep { .. }));
    let bare_nots = format!("{}a pr", "not ".repeat(MAX_DEPTH + 1));
    assert!(matches!(err(&bare_nots), FilterError::TooDeep { .. }));
    let in_value_path = format!("emails[{}x pr{}]", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(matches!(err(&in_value_path), FilterError::TooDeep { .. }));
    // far beyond: still an error, no stack overflow
    let huge = "(".repeat(100_000);
    assert!(matches!(err(&huge), FilterError::TooLong { .. }));
    let many = "(".repeat(MAX_FILTER_LEN);
    assert!(matches!(err(&many), FilterError::TooDeep { .. }));
    // long and/or chains are loops, not recursion
    let chain = vec!["a pr"; 400].join(" and ");
    assert!(chain.len() < MAX_FILTER_LEN);
    let f = p(&chain);
    assert!(matches(&f, &json!({"a": 1}), |_| false));
    round_trip(&f);
}
