//! Property tests over the parser, printer and evaluator: printing round-trips, nothing panics,
//! deep nesting is an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use proptest::prelude::*;
use serde_json::Number;

use super::test_util::user;
use super::{matches, parse, parse_patch_path, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH};
use crate::path::AttrPath;
use crate::urn::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        1 => Just("$ref".to_string()),
        1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "true", "null", "NOT", "Or"])
            .prop_map(str::to_string),
    ]
}

fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(ENTERPRISE_USER_SCHEMA.to_string()),
        Just(USER_SCHEMA.to_string()),
        "urn:[a-z]{1,6}(:[a-zA-Z0-9._-]{1,6}){1,4}",
    ]
}

fn attr_path(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
    (prop::option::weighted(0.2, urn()), name(), prop::option::weighted(0.3, name())).prop_map(
        move |(schema_urn, attr, sub_attr)| AttrPath { schema_urn, attr, sub_attr: sub_attr.filter(|_| allow_sub) },
    )
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        any::<String>().prop_map(CompValue::Str),
        "[ -~]{0,12}".prop_map(CompValue::Str),
        any::<i64>().prop_map(|n| CompValue::Num(n.into())),
        any::<u64>().prop_map(|n| CompValue::Num(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(CompValue::Num)),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ]
}

fn leaf() -> BoxedStrategy<Filter> {
    prop_oneof![
        3 => (attr_path(true), prop::sample::select(CompareOp::ALL.to_vec()), comp_value())
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        1 => attr_path(true).prop_map(Filter::Present),
    ]
    .boxed()
}

fn combine(inner: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
        inner.prop_map(Filter::negate),
    ]
    .boxed()
}

fn value_filter() -> BoxedStrategy<Filter> {
    leaf().prop_recursive(4, 16, 2, combine).boxed()
}

fn any_filter() -> BoxedStrategy<Filter> {
    let base = prop_oneof![
        3 => leaf(),
        1 => (attr_path(false), value_filter()).prop_map(|(path, f)| Filter::ValuePath {
            path,
            filter: Box::new(f)
        }),
    ];
    base.prop_recursive(5, 32, 2, combine).boxed()
}

const TOKENS: &[&str] = &[
    "a",
    "emails",
    "name.givenName",
    "urn:x:y:attr",
    " ",
    " ",
    "(",
    ")",
    "[",
    "]",
    ".",
    "\"",
    "\"x\"",
    "\\",
    "\\u",
    "eq",
    "pr",
    "and",
    "or",
    "not",
    "NOT",
    "co",
    "true",
    "null",
    "1",
    "-",
    "1e",
    "0.5",
    ":",
    "é",
    "\u{0}",
    "\t",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_parse_round_trip(f in any_filter()) {
        let printed = f.to_string();
        let parsed = parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&f), "printed: {}", printed);
        // printing is stable
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(printed));
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let _ = parse(&input);
        let _ = parse_patch_path(&input);
        let _ = AttrPath::parse(&input);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
        let input = tokens.concat();
        if let Ok(f) = parse(&input) {
            // whatever parses also round-trips and evaluates
            prop_assert_eq!(parse(&f.to_string()), Ok(f.clone()));
            let _ = matches(&f, &user(), |_| false);
        }
        let _ = parse_patch_path(&input);
    }

    #[test]
    fn deep_nesting_is_an_error(n in (MAX_DEPTH + 1)..2000usize, kind in 0..4u8) {
        let input = match kind {
            0 => format!("{}a pr{}", "(".repeat(n), ")".repeat(n)),
            1 => format!("{}a pr{}", "not (".repeat(n), ")".repeat(n)),
            2 => format!("{}a pr", "not ".repeat(n)),
            _ => format!("{}a pr{}", "(not ".repeat(n), ")".repeat(n)),
        };
        match parse(&input) {
            Err(FilterError::TooDeep { .. }) | Err(FilterError::TooLong { .. }) => {}
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn evaluation_never_panics(f in any_filter()) {
        let _ = matches(&f, &user(), |p| p.attr.len() % 2 == 0);
    }
}
