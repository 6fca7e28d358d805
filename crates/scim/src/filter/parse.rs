//! The recursive-descent parser: filters, standalone attribute paths and PATCH paths, all with
//! the same length and depth limits.
use serde_json::Number;

use super::ast::{CompValue, CompareOp, Filter};
use super::error::FilterError;
use super::{MAX_DEPTH, MAX_FILTER_LEN};
use crate::path::{attr_path_from_token, is_path_byte, validate_name, AttrPath};

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a SCIM filter.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input)?;
    let filter = p.parse_or()?;
    p.skip_ws();
    if p.at_end() {
        Ok(filter)
    } else {
        Err(p.unexpected("\"and\", \"or\" or end of filter"))
    }
}

impl AttrPath {
    /// Parses a standalone attribute path (no value filter), e.g. the entries
    /// of the `attributes=` query parameter. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        parse_attr_path(input)
    }
}

impl std::str::FromStr for AttrPath {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses a standalone attribute path (see [`AttrPath::parse`]).
pub fn parse_attr_path(input: &str) -> Result<AttrPath, FilterError> {
    let mut p = Parser::new(input)?;
    p.skip_ws();
    let path = p.parse_attr_path()?;
    p.skip_ws();
    if p.at_end() {
        Ok(path)
    } else {
        Err(p.unexpected("end of attribute path"))
    }
}

/// A PATCH path split in its parts: the attribute, the value filter and the sub-attribute after
/// it (`emails[type eq "work"].value`); what [`crate::patch::PatchPath::parse`] builds on.
pub type PatchPathParts = (AttrPath, Option<Filter>, Option<String>);

/// Parses a PATCH path: `attrPath / valuePath [ "." subAttr ]` (RFC 7644 §3.5.2). A value
/// filter and a sub-attribute after it are only accepted here, not in filters.
pub fn parse_patch_path(input: &str) -> Result<PatchPathParts, FilterError> {
    let mut p = Parser::new(input)?;
    p.skip_ws();
    let attr = p.parse_attr_path()?;
    let mut filter = None;
    let mut sub_attr = None;
    if p.peek() == Some(b'[') {
        filter = Some(p.parse_value_filter(&attr)?);
        if p.peek() == Some(b'.') {
            p.pos += 1;
            let start = p.pos;
            let end = p.token_end(start);
            let name = &input[start..end];
            validate_name(name).map_err(|reason| FilterError::InvalidAttrPath {
                pos: start,
                path: name.to_string(),
                reason,
            })?;
            p.pos = end;
            sub_attr = Some(name.to_string());
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(p.unexpected("end of path"));
    }
    Ok((attr, filter.map(|f| *f), sub_attr))
}

/// Recursive-descent parser over the input bytes. Only ASCII bytes are
/// significant; non-ASCII text is only accepted inside string literals.
struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    in_value_path: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self, FilterError> {
        if src.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong { len: src.len(), max: MAX_FILTER_LEN });
        }
        if src.bytes().all(is_ws) {
            return Err(FilterError::Empty);
        }
        Ok(Self { src, bytes: src.as_bytes(), pos: 0, depth: 0, in_value_path: false })
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace; returns whether any was skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn token_end(&self, start: usize) -> usize {
        let mut end = start;
        while self.bytes.get(end).copied().is_some_and(is_path_byte) {
            end += 1;
        }
        end
    }

    /// The path-like token at `start` (possibly empty).
    fn token_at(&self, start: usize) -> &'a str {
        let end = self.token_end(start);
        self.src.get(start..end).unwrap_or("")
    }

    /// Whether the keyword `kw` (ASCII, lower-case) is at the cursor as a
    /// whole token.
    fn keyword_at(&self, kw: &str) -> bool {
        self.token_at(self.pos).eq_ignore_ascii_case(kw)
    }

    fn enter(&mut self, pos: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(FilterError::TooDeep { pos, max: MAX_DEPTH })
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn unexpected(&self, expected: &'static str) -> FilterError {
        if self.at_end() {
            return FilterError::UnexpectedEnd { expected };
        }
        let token = self.token_at(self.pos);
        let found = if token.is_empty() {
            let c = self.src.get(self.pos..).and_then(|s| s.chars().next());
            format!("{:?}", c.unwrap_or('?'))
        } else {
            let short: String = token.chars().take(32).collect();
            format!("\"{short}\"")
        };
        FilterError::Unexpected { pos: self.pos, found, expected }
    }

    fn expect(&mut self, b: u8, expected: &'static str) -> Result<(), FilterError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        loop {
            self.skip_ws();
            if !self.keyword_at("or") {
                return Ok(left);
            }
            self.pos += 2;
            let right = self.parse_and()?;
            left = Filter::or(left, right);
        }
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        loop {
            self.skip_ws();
            if !self.keyword_at("and") {
                return Ok(left);
            }
            self.pos += 3;
            let right = self.parse_unary()?;
            left = Filter::and(left, right);
        }
    }

    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        self.skip_ws();
        match self.peek() {
            None => Err(FilterError::UnexpectedEnd { expected: "an attribute path, \"not\" or \"(\"" }),
            Some(b'(') => {
                self.enter(self.pos)?;
                let inner = self.parse_group()?;
                self.leave();
                Ok(inner)
            }
            Some(_) if self.keyword_at("not") && self.not_is_operator() => {
                self.enter(self.pos)?;
                self.pos += 3;
                self.skip_ws();
                let inner = if self.peek() == Some(b'(') { self.parse_group()? } else { self.parse_unary()? };
                self.leave();
                Ok(Filter::negate(inner))
            }
            Some(_) => self.parse_attr_expr(),
        }
    }

    /// `"(" filter ")"` with the cursor on `(`. Depth is handled by the caller.
    fn parse_group(&mut self) -> Result<Filter, FilterError> {
        self.pos += 1;
        let inner = self.parse_or()?;
        self.skip_ws();
        self.expect(b')', "\")\"")?;
        Ok(inner)
    }

    /// With the cursor on a `not` token: is it the logical operator (rather
    /// than an attribute named `not`)? It is when followed by `(`, or by
    /// whitespace and a token that is not a comparison operator.
    fn not_is_operator(&self) -> bool {
        let after = self.pos + 3;
        let mut i = after;
        while self.bytes.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        match self.bytes.get(i) {
            Some(b'(') => true,
            Some(_) if i > after => {
                let next = self.token_at(i);
                !next.is_empty() && CompareOp::from_keyword(next).is_none() && !next.eq_ignore_ascii_case("pr")
            }
            _ => false,
        }
    }

    fn parse_attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let token = self.token_at(start);
        if token.is_empty() {
            return Err(self.unexpected("an attribute path"));
        }
        self.pos = start + token.len();
        attr_path_from_token(token).map_err(|reason| FilterError::InvalidAttrPath {
            pos: start,
            path: token.to_string(),
            reason,
        })
    }

    /// `"[" valFilter "]"` with the cursor on `[`.
    fn parse_value_filter(&mut self, attr: &AttrPath) -> Result<Box<Filter>, FilterError> {
        let open = self.pos;
        if self.in_value_path {
            return Err(FilterError::NestedValuePath { pos: open });
        }
        if attr.sub_attr.is_some() {
            return Err(FilterError::InvalidValuePath {
                pos: open,
                reason: "a value filter must follow an attribute, not a sub-attribute",
            });
        }
        self.enter(open)?;
        self.pos += 1;
        self.in_value_path = true;
        let inner = self.parse_or()?;
        self.in_value_path = false;
        self.skip_ws();
        self.expect(b']', "\"]\"")?;
        self.leave();
        Ok(Box::new(inner))
    }

    fn parse_attr_expr(&mut self) -> Result<Filter, FilterError> {
        let path = self.parse_attr_path()?;
        let had_ws = self.skip_ws();
        if self.peek() == Some(b'[') {
            let filter = self.parse_value_filter(&path)?;
            if self.peek() == Some(b'.') {
                return Err(FilterError::InvalidValuePath {
                    pos: self.pos,
                    reason: "a sub-attribute after a value filter is only allowed in PATCH paths",
                });
            }
            return Ok(Filter::ValuePath { path, filter });
        }
        if !had_ws {
            return Err(self.unexpected("whitespace and an operator after the attribute path"));
        }
        let op_pos = self.pos;
        let op = self.token_at(op_pos);
        if op.is_empty() {
            return Err(self.unexpected("an operator"));
        }
        self.pos += op.len();
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::from_keyword(op)
            .ok_or_else(|| FilterError::UnknownOperator { pos: op_pos, op: op.chars().take(32).collect() })?;
        self.skip_ws();
        let value = self.parse_value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn parse_value(&mut self) -> Result<CompValue, FilterError> {
        match self.peek() {
            None => Err(FilterError::UnexpectedEnd { expected: "a comparison value" }),
            Some(b'"') => self.parse_string().map(CompValue::Str),
            Some(b'-' | b'0'..=b'9') => self.parse_number().map(CompValue::Num),
            Some(_) => {
                let start = self.pos;
                let word = self.token_at(start);
                let value = if word.eq_ignore_ascii_case("true") {
                    CompValue::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    CompValue::Bool(false)
                } else if word.eq_ignore_ascii_case("null") {
                    CompValue::Null
                } else {
                    return Err(FilterError::InvalidValue {
                        pos: start,
                        reason: "expected a JSON string, number, true, false or null",
                    });
                };
                self.pos += word.len();
                Ok(value)
            }
        }
    }

    fn parse_string(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let body_start = start + 1;
        let rest = self.src.get(body_start..).unwrap_or("");
        let mut out = String::new();
        let mut chars = rest.char_indices();
        let bad_escape = |i: usize, reason: &'static str| FilterError::InvalidValue { pos: body_start + i, reason };
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = body_start + i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        '"' | '\\' | '/' => out.push(e),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hi = read_hex4(&mut chars).ok_or_else(|| bad_escape(i, "invalid \\u escape"))?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                let lo = match (chars.next(), chars.next()) {
                                    (Some((_, '\\')), Some((_, 'u'))) => read_hex4(&mut chars),
                                    _ => None,
                                }
                                .filter(|lo| (0xDC00..0xE000).contains(lo))
                                .ok_or_else(|| bad_escape(i, "unpaired UTF-16 surrogate"))?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let ch = char::from_u32(code).ok_or_else(|| bad_escape(i, "unpaired UTF-16 surrogate"))?;
                            out.push(ch);
                        }
                        _ => return Err(bad_escape(i, "invalid escape sequence")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(FilterError::UnterminatedString { pos: start })
    }

    fn parse_number(&mut self) -> Result<Number, FilterError> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = start;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let invalid = |reason| FilterError::InvalidValue { pos: start, reason };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        i = digits(i);
        if i == int_start {
            return Err(invalid("malformed number"));
        }
        if b.get(int_start) == Some(&b'0') && i - int_start > 1 {
            return Err(invalid("numbers must not have leading zeros"));
        }
        let mut is_float = false;
        if b.get(i) == Some(&b'.') {
            let frac = i + 1;
            i = digits(frac);
            if i == frac {
                return Err(invalid("malformed number"));
            }
            is_float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            i = digits(exp);
            if i == exp {
                return Err(invalid("malformed number"));
            }
            is_float = true;
        }
        if b.get(i).copied().is_some_and(is_path_byte) {
            return Err(invalid("malformed number"));
        }
        let text = self.src.get(start..i).unwrap_or("");
        self.pos = i;
        if !is_float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Number::from(n));
            }
            if let Ok(n) = text.parse::<u64>() {
                return Ok(Number::from(n));
            }
        }
        text.parse::<f64>().ok().and_then(Number::from_f64).ok_or_else(|| invalid("number out of range"))
    }
}

fn read_hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..4 {
        let (_, c) = chars.next()?;
        v = v * 16 + c.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests;
