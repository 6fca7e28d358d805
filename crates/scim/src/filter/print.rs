//! Printing: `Display` writes a filter such that `parse(&f.to_string()) == Ok(f)` (when the
//! printed form is within [`super::MAX_FILTER_LEN`]: escaping a control character takes 6 bytes).
use std::fmt;

use super::ast::{CompValue, CompareOp, Filter};

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => write_json_string(f, s),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    use fmt::Write;
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn child(f: &mut fmt::Formatter<'_>, x: &Filter, parens: bool) -> fmt::Result {
            if parens {
                write!(f, "({x})")
            } else {
                write!(f, "{x}")
            }
        }
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(l, r) => {
                child(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                child(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                child(f, l, false)?;
                f.write_str(" or ")?;
                child(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::filter::test_util::{cmp, pr, round_trip, s};
    use crate::filter::{CompareOp, Filter};

    #[test]
    fn printer_parenthesises_where_needed() {
        let f = Filter::and(pr("a"), Filter::and(pr("b"), pr("c")));
        assert_eq!(f.to_string(), "a pr and (b pr and c pr)");
        round_trip(&f);
        let f = Filter::and(Filter::or(pr("a"), pr("b")), pr("c"));
        assert_eq!(f.to_string(), "(a pr or b pr) and c pr");
        round_trip(&f);
        let f = Filter::or(pr("a"), Filter::or(pr("b"), pr("c")));
        assert_eq!(f.to_string(), "a pr or (b pr or c pr)");
        round_trip(&f);
        let f = Filter::negate(Filter::and(pr("a"), pr("b")));
        assert_eq!(f.to_string(), "not (a pr and b pr)");
        let f = cmp("a", CompareOp::Eq, s("line\nquote\"\u{1}\u{7f}"));
        assert_eq!(f.to_string(), r#"a eq "line\nquote\"\u0001\u007f""#);
        round_trip(&f);
    }
}
