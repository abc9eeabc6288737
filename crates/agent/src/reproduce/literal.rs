//! Reading a frame's local variables back as literals.
//!
//! SDKs send `vars` as JSON, but not as the values the program held:
//! sentry-sdk (Python) sends strings, bytes and objects as their `repr`
//! (`"'abc'"`, `"b'\\x00'"`, `"<Session object at 0x…>"`), numbers, booleans
//! and `None` as JSON, lists and dicts as JSON containers of the same. A
//! value is a [`Literal`] only when it can be rebuilt exactly; anything else
//! (an object's repr, a value the SDK truncated or filtered) is refused with
//! the reason, and the frame is not replayed from it.
//!
//! What each SDK does, read from its serializer (the rules below follow it):
//!
//! - sentry-sdk 2.x (`serializer.py`, `is_vars=True`): every scalar,
//!   numbers and `None` included, arrives as its `repr` string; a mapping
//!   as a JSON object whose keys are `str(key)` (not `repr`: a key `"1"`
//!   may have been the int `1`, so a key that reads as a non-str literal is
//!   refused); lists, tuples, sets and frozensets all as JSON arrays (read
//!   back as lists: the JSON cannot tell them apart); every container cut
//!   to `MAX_DATABAG_BREADTH` (10) items, so one with exactly 10 may have
//!   been cut; past `MAX_DATABAG_DEPTH` a container arrives as its `repr`;
//!   a string longer than `max_value_length` (when set) is cut and ends
//!   with `...`.
//! - @sentry/node `LocalVariables` (inspector, sync and worker alike): a
//!   primitive arrives as itself; `null` and `undefined` as the strings
//!   `"<null>"` and `"<undefined>"`, any other non-plain object (a class
//!   instance, a `Map`, `NaN`, a bigint) as `"<description>"`, functions
//!   not at all; a plain object or array is unrolled one level, its
//!   non-primitive members replaced by `undefined`, which JSON turns into
//!   `null` in an array and drops from an object. So an array holding
//!   `null` is refused as cut (a property's `null` is a real one), while an
//!   object that lost members cannot be told from a complete one: it is
//!   read back as sent, and the reproduction gate judges whether the replay
//!   fails as production did. A string variable that reads `"<null>"` is
//!   indistinguishable from `null`, and is read as `null`.
//!
//! Both: `"[Filtered]"` anywhere is a scrubbed value.

use serde_json::Value;

/// A value a replay test can rebuild from the event alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// `None` / `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer, as its decimal digits (Python integers are unbounded).
    Int(String),
    /// A float (finite).
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string (Python `bytes`).
    Bytes(Vec<u8>),
    /// A list / array.
    List(Vec<Literal>),
    /// A Python tuple.
    Tuple(Vec<Literal>),
    /// A mapping, in the event's order.
    Dict(Vec<(Literal, Literal)>),
}

/// Why a value is not a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotLiteral {
    /// An object's repr (`<Foo at 0x…>`) or anything else that does not
    /// read back as a literal.
    Object,
    /// The SDK cut it short (a long string, a container past its item cap).
    Truncated,
    /// The SDK or a scrubber replaced it (`[Filtered]`).
    Filtered,
    /// Deeper or larger than a replay test should carry.
    TooLarge,
}

/// What both SDKs put in place of a scrubbed value
/// (sentry-sdk `SENSITIVE_DATA_SUBSTITUTE`).
const FILTERED: &str = "[Filtered]";
/// sentry-sdk's `MAX_DATABAG_BREADTH`: a container this long may have been cut.
const SDK_BREADTH: usize = 10;
/// What sentry-sdk's `strip_string` appends to a string it cut.
const CUT_MARKER: &str = "...";
/// Containers nested deeper than this are refused.
const MAX_DEPTH: usize = 8;
/// A literal larger than this (roughly, in bytes of data) is refused.
const MAX_SIZE: usize = 64 * 1024;
/// A repr longer than this is refused unread: no escape form is longer than
/// ten characters per character kept, so its literal would exceed
/// [`MAX_SIZE`] anyway, and parsing stays bounded.
const MAX_REPR_LEN: usize = 10 * MAX_SIZE;

/// Reads one value of a sentry-sdk (Python) frame's `vars` back as a literal.
pub(crate) fn python_literal(value: &Value) -> Result<Literal, NotLiteral> {
    let literal = python_value(value, 0)?;
    within_size(literal)
}

/// Reads one value of a @sentry/node frame's `vars` back as a literal.
pub(crate) fn js_literal(value: &Value) -> Result<Literal, NotLiteral> {
    let literal = js_value(value, 0, Place::Variable)?;
    within_size(literal)
}

fn within_size(literal: Literal) -> Result<Literal, NotLiteral> {
    if size(&literal) > MAX_SIZE {
        return Err(NotLiteral::TooLarge);
    }
    Ok(literal)
}

/// Roughly the bytes a literal carries; containers add one per item so that
/// a million empty lists are large too.
fn size(literal: &Literal) -> usize {
    match literal {
        Literal::Null | Literal::Bool(_) => 1,
        Literal::Float(_) => 8,
        Literal::Int(digits) => digits.len(),
        Literal::Str(text) => text.len(),
        Literal::Bytes(bytes) => bytes.len(),
        Literal::List(items) | Literal::Tuple(items) => {
            items.iter().map(|item| 1 + size(item)).sum()
        }
        Literal::Dict(pairs) => pairs
            .iter()
            .map(|(key, value)| 1 + size(key) + size(value))
            .sum(),
    }
}

fn enter(depth: usize) -> Result<usize, NotLiteral> {
    if depth >= MAX_DEPTH {
        return Err(NotLiteral::TooLarge);
    }
    Ok(depth + 1)
}

/// A JSON number as the SDK sent it: integers keep their digits.
fn json_number(number: &serde_json::Number) -> Result<Literal, NotLiteral> {
    if let Some(int) = number.as_i64() {
        return Ok(Literal::Int(int.to_string()));
    }
    if let Some(int) = number.as_u64() {
        return Ok(Literal::Int(int.to_string()));
    }
    match number.as_f64() {
        Some(float) if float.is_finite() => Ok(Literal::Float(float)),
        _ => Err(NotLiteral::Object),
    }
}

fn python_value(value: &Value, depth: usize) -> Result<Literal, NotLiteral> {
    match value {
        Value::Null => Ok(Literal::Null),
        Value::Bool(flag) => Ok(Literal::Bool(*flag)),
        Value::Number(number) => json_number(number),
        Value::String(text) => python_repr(text, depth),
        Value::Array(items) => {
            let inner = enter(depth)?;
            if items.len() == SDK_BREADTH {
                return Err(NotLiteral::Truncated);
            }
            let items = items
                .iter()
                .map(|item| python_value(item, inner))
                .collect::<Result<_, _>>()?;
            Ok(Literal::List(items))
        }
        Value::Object(map) => {
            let inner = enter(depth)?;
            if map.len() == SDK_BREADTH {
                return Err(NotLiteral::Truncated);
            }
            let pairs = map
                .iter()
                .map(|(key, value)| Ok((python_key(key)?, python_value(value, inner)?)))
                .collect::<Result<_, _>>()?;
            Ok(Literal::Dict(pairs))
        }
    }
}

/// A dict key arrives as `str(key)`: it is the key itself when it was a
/// string, but `"1"`, `"None"` or `"b'x'"` may have been another type.
fn python_key(key: &str) -> Result<Literal, NotLiteral> {
    match python_repr(key, 0) {
        Ok(Literal::Str(_)) | Err(_) => Ok(Literal::Str(key.to_owned())),
        Ok(_) => Err(NotLiteral::Object),
    }
}

/// Reads a `repr` string back the way `ast.literal_eval` would, within the
/// forms `repr` produces.
fn python_repr(text: &str, depth: usize) -> Result<Literal, NotLiteral> {
    if text == FILTERED {
        return Err(NotLiteral::Filtered);
    }
    if text.len() > MAX_REPR_LEN {
        return Err(NotLiteral::TooLarge);
    }
    let mut reader = Repr { text, pos: 0 };
    let parsed = reader.value(depth).and_then(|literal| {
        reader.skip_space();
        if reader.pos == text.len() {
            Ok(literal)
        } else {
            Err(Fail::Syntax)
        }
    });
    match parsed {
        Ok(literal) => Ok(literal),
        Err(Fail::Refused(reason)) => Err(reason),
        Err(Fail::Syntax) if looks_cut(text) => Err(NotLiteral::Truncated),
        Err(Fail::Syntax) => Err(NotLiteral::Object),
    }
}

/// A repr that starts like a literal but ends with the SDK's cut marker
/// was cut short; only a cut leaves a literal ending that way.
fn looks_cut(text: &str) -> bool {
    let starts_like_literal = ["'", "\"", "b'", "b\"", "[", "(", "{"]
        .iter()
        .any(|start| text.starts_with(start));
    starts_like_literal && text.ends_with(CUT_MARKER)
}

/// Why a repr did not read back.
enum Fail {
    /// Not a literal of the forms read here.
    Syntax,
    /// Read, but refused for this reason.
    Refused(NotLiteral),
}

/// A cursor over a Python `repr`.
struct Repr<'a> {
    text: &'a str,
    pos: usize,
}

impl Repr<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let next = self.peek()?;
        self.pos += next.len_utf8();
        Some(next)
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.pos += expected.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r' | '\x0c')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, Fail> {
        self.skip_space();
        match self.peek() {
            Some('\'' | '"') => self.string(false),
            Some('b' | 'B') if matches!(self.peek_second(), Some('\'' | '"')) => {
                self.pos += 1;
                self.string(true)
            }
            Some('[') => self.list(depth),
            Some('(') => self.tuple(depth),
            Some('{') => self.dict(depth),
            Some('-') => {
                self.pos += 1;
                self.skip_space();
                self.number(true)
            }
            Some('0'..='9' | '.') => self.number(false),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.name(),
            _ => Err(Fail::Syntax),
        }
    }

    fn name(&mut self) -> Result<Literal, Fail> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        match &self.text[start..self.pos] {
            "True" => Ok(Literal::Bool(true)),
            "False" => Ok(Literal::Bool(false)),
            "None" => Ok(Literal::Null),
            // `inf`, `nan`, `set`, `Decimal`, …: not a literal.
            _ => Err(Fail::Syntax),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self, negative: bool) -> Result<Literal, Fail> {
        let start = self.pos;
        let mut digits = self.digits();
        let mut float = false;
        if self.eat('.') {
            float = true;
            digits += self.digits();
        }
        if digits == 0 {
            return Err(Fail::Syntax);
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            float = true;
            self.pos += 1;
            if !self.eat('+') {
                self.eat('-');
            }
            if self.digits() == 0 {
                return Err(Fail::Syntax);
            }
        }
        // `1j`, `0x1f`, `1_000`, `1.2.3`: forms `repr` of an int or float
        // never writes.
        if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(Fail::Syntax);
        }
        let token = &self.text[start..self.pos];
        if float {
            let magnitude: f64 = token.parse().map_err(|_| Fail::Syntax)?;
            if !magnitude.is_finite() {
                return Err(Fail::Refused(NotLiteral::Object));
            }
            return Ok(Literal::Float(if negative {
                -magnitude
            } else {
                magnitude
            }));
        }
        let significant = token.trim_start_matches('0');
        if significant.is_empty() {
            return Ok(Literal::Int("0".to_owned()));
        }
        if significant.len() != token.len() {
            // Python refuses leading zeros on a non-zero integer.
            return Err(Fail::Syntax);
        }
        Ok(Literal::Int(if negative {
            format!("-{significant}")
        } else {
            significant.to_owned()
        }))
    }

    fn string(&mut self, bytes: bool) -> Result<Literal, Fail> {
        let quote = self.bump().ok_or(Fail::Syntax)?;
        if self.peek() == Some(quote) && self.peek_second() == Some(quote) {
            // Triple quotes: `repr` never writes them.
            return Err(Fail::Syntax);
        }
        let mut text = String::new();
        let mut raw = Vec::new();
        loop {
            let c = self.bump().ok_or(Fail::Syntax)?;
            if c == quote {
                break;
            }
            match c {
                '\n' | '\r' => return Err(Fail::Syntax),
                '\\' => self.escape(bytes, &mut text, &mut raw)?,
                _ if bytes => {
                    if !c.is_ascii() {
                        return Err(Fail::Syntax);
                    }
                    raw.push(c as u8);
                }
                _ => text.push(c),
            }
        }
        Ok(if bytes {
            Literal::Bytes(raw)
        } else {
            Literal::Str(text)
        })
    }

    fn hex(&mut self, count: usize) -> Result<u32, Fail> {
        let mut value = 0u32;
        for _ in 0..count {
            let digit = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or(Fail::Syntax)?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// One escape after a backslash, into `text` (str) or `raw` (bytes).
    fn escape(&mut self, bytes: bool, text: &mut String, raw: &mut Vec<u8>) -> Result<(), Fail> {
        let mut push = |code: u32| -> Result<(), Fail> {
            if bytes {
                raw.push(u8::try_from(code).map_err(|_| Fail::Refused(NotLiteral::Object))?);
            } else {
                // A lone surrogate is a valid Python str but not a Rust one.
                text.push(char::from_u32(code).ok_or(Fail::Refused(NotLiteral::Object))?);
            }
            Ok(())
        };
        let c = self.bump().ok_or(Fail::Syntax)?;
        match c {
            '\n' => Ok(()),
            '\r' => {
                self.eat('\n');
                Ok(())
            }
            '\\' | '\'' | '"' => push(c as u32),
            'a' => push(7),
            'b' => push(8),
            'f' => push(12),
            'n' => push(10),
            'r' => push(13),
            't' => push(9),
            'v' => push(11),
            '0'..='7' => {
                let mut code = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.pos += 1;
                            code = code * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                push(code)
            }
            'x' => {
                let code = self.hex(2)?;
                push(code)
            }
            'u' if !bytes => {
                let code = self.hex(4)?;
                push(code)
            }
            'U' if !bytes => {
                let code = self.hex(8)?;
                if code > 0x10FFFF {
                    return Err(Fail::Syntax);
                }
                push(code)
            }
            // Named characters would need the Unicode name table.
            'N' if !bytes => Err(Fail::Refused(NotLiteral::Object)),
            // Python keeps an unknown escape as it is, backslash included.
            _ => {
                if bytes && !c.is_ascii() {
                    return Err(Fail::Syntax);
                }
                push('\\' as u32)?;
                push(c as u32)
            }
        }
    }

    /// Items up to `close`, after the opening bracket.
    fn items(
        &mut self,
        depth: usize,
        close: char,
        mut items: Vec<Literal>,
    ) -> Result<Vec<Literal>, Fail> {
        loop {
            self.skip_space();
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value(depth)?);
            self.skip_space();
            if !self.eat(',') {
                self.skip_space();
                return if self.eat(close) {
                    Ok(items)
                } else {
                    Err(Fail::Syntax)
                };
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<Literal, Fail> {
        let inner = enter(depth).map_err(Fail::Refused)?;
        self.pos += 1;
        Ok(Literal::List(self.items(inner, ']', Vec::new())?))
    }

    fn tuple(&mut self, depth: usize) -> Result<Literal, Fail> {
        let inner = enter(depth).map_err(Fail::Refused)?;
        self.pos += 1;
        self.skip_space();
        if self.eat(')') {
            return Ok(Literal::Tuple(Vec::new()));
        }
        let first = self.value(inner)?;
        self.skip_space();
        if self.eat(')') {
            // `(x)` is `x` in parentheses, not a tuple.
            return Ok(first);
        }
        if !self.eat(',') {
            return Err(Fail::Syntax);
        }
        Ok(Literal::Tuple(self.items(inner, ')', vec![first])?))
    }

    fn dict(&mut self, depth: usize) -> Result<Literal, Fail> {
        let inner = enter(depth).map_err(Fail::Refused)?;
        self.pos += 1;
        let mut pairs = Vec::new();
        loop {
            self.skip_space();
            if self.eat('}') {
                return Ok(Literal::Dict(pairs));
            }
            let key = self.value(inner)?;
            self.skip_space();
            if !self.eat(':') {
                // `{1, 2}` is a set; `repr` of an empty set is `set()`.
                return Err(Fail::Refused(NotLiteral::Object));
            }
            if !hashable(&key) {
                return Err(Fail::Refused(NotLiteral::Object));
            }
            let value = self.value(inner)?;
            pairs.push((key, value));
            self.skip_space();
            if !self.eat(',') {
                self.skip_space();
                return if self.eat('}') {
                    Ok(Literal::Dict(pairs))
                } else {
                    Err(Fail::Syntax)
                };
            }
        }
    }
}

/// Whether Python could use the value as a dict key.
fn hashable(literal: &Literal) -> bool {
    match literal {
        Literal::List(_) | Literal::Dict(_) => false,
        Literal::Tuple(items) => items.iter().all(hashable),
        _ => true,
    }
}

/// Where a JavaScript value sits in what the SDK sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A variable of the frame.
    Variable,
    /// An element of an unrolled array.
    Element,
    /// A property of an unrolled object.
    Property,
}

fn js_value(value: &Value, depth: usize, place: Place) -> Result<Literal, NotLiteral> {
    match value {
        // A variable holding `null` arrives as "<null>" and a property
        // holding `null` as `null`, but in an array `null` also stands for
        // any member that was not a primitive.
        Value::Null if place == Place::Element => Err(NotLiteral::Truncated),
        Value::Null => Ok(Literal::Null),
        Value::Bool(flag) => Ok(Literal::Bool(*flag)),
        Value::Number(number) => json_number(number),
        Value::String(text) if text == FILTERED => Err(NotLiteral::Filtered),
        Value::String(text)
            if place == Place::Variable && text.starts_with('<') && text.ends_with('>') =>
        {
            if text == "<null>" {
                Ok(Literal::Null)
            } else {
                // `<undefined>`, `<Cart>`, `<Map(2)>`, `<NaN>`, `<-0>`,
                // `<1n>`, `<Symbol(s)>`, or a string that looks like one:
                // not rebuilt.
                Err(NotLiteral::Object)
            }
        }
        Value::String(text) => Ok(Literal::Str(text.clone())),
        Value::Array(items) => {
            let inner = enter(depth)?;
            let items = items
                .iter()
                .map(|item| js_value(item, inner, Place::Element))
                .collect::<Result<_, _>>()?;
            Ok(Literal::List(items))
        }
        Value::Object(map) => {
            let inner = enter(depth)?;
            let pairs = map
                .iter()
                .map(|(key, value)| {
                    Ok((
                        Literal::Str(key.clone()),
                        js_value(value, inner, Place::Property)?,
                    ))
                })
                .collect::<Result<_, _>>()?;
            Ok(Literal::Dict(pairs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::path::Path;

    /// The interpreter with sentry-sdk: the test command's venv
    /// (`SUTURE_TEST_PYTHON`), else the one `/tmp/setup2.sh`-style setups
    /// build under `target/`.
    fn sdk_python() -> String {
        std::env::var("SUTURE_TEST_PYTHON").unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-venv/bin/python")
                .display()
                .to_string()
        })
    }

    /// Values `repr` writes in every form the reader must take, each with
    /// a typed description to compare against (independent of `repr`), and
    /// the same values as the real sentry-sdk serializer sends them in
    /// `vars`.
    const TRICKY_VALUES: &str = r#"
import json, sys
from sentry_sdk.serializer import serialize

def typed(v):
    if v is None: return ["none"]
    if isinstance(v, bool): return ["bool", v]
    if isinstance(v, int): return ["int", str(v)]
    if isinstance(v, float): return ["float", v]
    if isinstance(v, str): return ["str", v]
    if isinstance(v, bytes): return ["bytes", v.hex()]
    if isinstance(v, list): return ["list", [typed(x) for x in v]]
    if isinstance(v, tuple): return ["tuple", [typed(x) for x in v]]
    if isinstance(v, dict): return ["dict", [[typed(k), typed(x)] for k, x in v.items()]]
    raise TypeError(type(v))

values = [
    "", "plain", "it's", 'say "hi"', "both ' and \"", "back\\slash", "\n\r\t\x0b\x0c\x07\x08",
    "\x00\x01\x1f\x7f\x80\x9f\xa0\xad", "caf\u00e9 \u2028 \u2029 \ufeff \U0001f600 \U000e0001 \U0010ffff",
    "'''", '"""', "*/ ${x} </script>", "\\x41 \\u0041 \\N{DASH}", "x" * 3000,
    b"", b"\x00\xff'\"\\ abc\n\t\x7f\x80", bytes(range(256)),
    0, 1, -1, 2**64, -(2**200), 10**30,
    0.0, -0.0, 1.5, -2.25, 1e-05, 1e16, 1.7976931348623157e308, 5e-324, 0.1, 123456789.123,
    True, False, None,
    (), (1,), (1, "a", (2, (3,))), [], [1, [2, [3, []]]],
    {}, {"a": 1, "b": [b"x", None]}, {1: "int key", (1, 2): "tuple key", b"k": "bytes key", None: 0, 2.5: 1, True: 2},
    [{"deep": [({"x": (b"y",)},)]}],
]
reprs = [{"repr": repr(v), "typed": typed(v)} for v in values]
sdk = [{"vars": serialize({"v": v}, is_vars=True)["v"], "typed": typed(v)} for v in [
    "it's", b"\x00", 7, -0.0, 1e-05, None, True, [1, "a", [b"b"]], {"k": "v", "n": [None]},
    [[[[[[[1, (2,)]]]]]]], list(range(9)),
]]
json.dump({"reprs": reprs, "sdk": sdk}, sys.stdout)
"#;

    fn from_typed(typed: &Value) -> Literal {
        let tag = typed[0].as_str().expect("tag");
        let items = |value: &Value| -> Vec<Literal> {
            value
                .as_array()
                .expect("items")
                .iter()
                .map(from_typed)
                .collect()
        };
        match tag {
            "none" => Literal::Null,
            "bool" => Literal::Bool(typed[1].as_bool().expect("bool")),
            "int" => Literal::Int(typed[1].as_str().expect("digits").to_owned()),
            "float" => Literal::Float(typed[1].as_f64().expect("float")),
            "str" => Literal::Str(typed[1].as_str().expect("str").to_owned()),
            "bytes" => Literal::Bytes(hex::decode(typed[1].as_str().expect("hex")).expect("hex")),
            "list" => Literal::List(items(&typed[1])),
            "tuple" => Literal::Tuple(items(&typed[1])),
            "dict" => Literal::Dict(
                typed[1]
                    .as_array()
                    .expect("pairs")
                    .iter()
                    .map(|pair| (from_typed(&pair[0]), from_typed(&pair[1])))
                    .collect(),
            ),
            other => panic!("unknown tag {other}"),
        }
    }

    /// Tuples become lists once the SDK writes them as JSON arrays (above
    /// its depth limit a container is a repr and keeps its type).
    fn tuples_as_lists(literal: Literal, json_levels: usize) -> Literal {
        if json_levels == 0 {
            return literal;
        }
        let inner = |items: Vec<Literal>| {
            items
                .into_iter()
                .map(|item| tuples_as_lists(item, json_levels - 1))
                .collect()
        };
        match literal {
            Literal::List(items) | Literal::Tuple(items) => Literal::List(inner(items)),
            Literal::Dict(pairs) => Literal::Dict(
                pairs
                    .into_iter()
                    .map(|(key, value)| (key, tuples_as_lists(value, json_levels - 1)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Floats compare by bits so that `-0.0` is not `0.0`.
    fn same(left: &Literal, right: &Literal) -> bool {
        match (left, right) {
            (Literal::Float(a), Literal::Float(b)) => a.to_bits() == b.to_bits(),
            (Literal::List(a), Literal::List(b)) | (Literal::Tuple(a), Literal::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Literal::Dict(a), Literal::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
            }
            _ => left == right,
        }
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the real Python interpreter and sentry-sdk are the reference the reader follows"
    )]
    fn python_reprs_and_sdk_vars_read_back_exactly() {
        let output = std::process::Command::new(sdk_python())
            .arg("-c")
            .arg(TRICKY_VALUES)
            .output()
            .expect("running python (SUTURE_TEST_PYTHON, with sentry-sdk)");
        assert!(
            output.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cases: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let reprs = cases["reprs"].as_array().expect("reprs");
        assert!(reprs.len() > 40);
        for case in reprs {
            let expected = from_typed(&case["typed"]);
            let read = python_literal(&case["repr"]);
            assert!(
                matches!(&read, Ok(literal) if same(literal, &expected)),
                "{} read back as {read:?}, expected {expected:?}",
                case["repr"]
            );
        }
        for case in cases["sdk"].as_array().expect("sdk") {
            // The SDK writes JSON containers down to MAX_DATABAG_DEPTH (5)
            // below the frame's locals, which is one level.
            let expected = tuples_as_lists(from_typed(&case["typed"]), 4);
            let read = python_literal(&case["vars"]);
            assert!(
                matches!(&read, Ok(literal) if same(literal, &expected)),
                "{} read back as {read:?}, expected {expected:?}",
                case["vars"]
            );
        }
    }

    #[test]
    fn python_refusals_say_why() {
        let cases = [
            (
                json!("<httpie.sessions.Session object at 0x7f3a2c1d0e50>"),
                NotLiteral::Object,
            ),
            (json!("Decimal('1')"), NotLiteral::Object),
            (json!("set()"), NotLiteral::Object),
            (json!("{1, 2}"), NotLiteral::Object),
            (json!("inf"), NotLiteral::Object),
            (json!("-inf"), NotLiteral::Object),
            (json!("nan"), NotLiteral::Object),
            (json!("1e400"), NotLiteral::Object),
            (json!("1j"), NotLiteral::Object),
            (json!("0x10"), NotLiteral::Object),
            (json!("1_000"), NotLiteral::Object),
            (json!("007"), NotLiteral::Object),
            (json!("r'raw'"), NotLiteral::Object),
            (json!("'''triple'''"), NotLiteral::Object),
            (json!("'a' 'b'"), NotLiteral::Object),
            (json!("'\\N{EM DASH}'"), NotLiteral::Object),
            (json!("'\\ud800'"), NotLiteral::Object),
            (json!("b'\\777'"), NotLiteral::Object),
            (json!("b'caf\u{e9}'"), NotLiteral::Object),
            (json!("{[1]: 2}"), NotLiteral::Object),
            (json!("<cyclic>"), NotLiteral::Object),
            (json!("plain text, not a repr"), NotLiteral::Object),
            (json!("--1"), NotLiteral::Object),
            (json!("[Filtered]"), NotLiteral::Filtered),
            (json!(["'a'", "[Filtered]"]), NotLiteral::Filtered),
            (json!("'a long string cut sho..."), NotLiteral::Truncated),
            (json!("b'\\x00\\x01..."), NotLiteral::Truncated),
            (json!("[1, 2, 3, 4..."), NotLiteral::Truncated),
            (
                json!(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
                NotLiteral::Truncated,
            ),
            (
                Value::Object((0..10).map(|i| (format!("k{i}"), json!("1"))).collect()),
                NotLiteral::Truncated,
            ),
            // `str(1)` and `str("1")` are both "1": the key's type is lost.
            (json!({"1": "'one'"}), NotLiteral::Object),
            (json!({"None": "1"}), NotLiteral::Object),
            (json!({"b'k'": "1"}), NotLiteral::Object),
            (json!("[[[[[[[[[1]]]]]]]]]"), NotLiteral::TooLarge),
            (json!([[[[["[[[[1]]]]"]]]]]), NotLiteral::TooLarge),
            (
                json!(format!("'{}'", "x".repeat(MAX_SIZE + 1))),
                NotLiteral::TooLarge,
            ),
            (json!("[".repeat(100_000)), NotLiteral::TooLarge),
        ];
        for (value, reason) in cases {
            assert_eq!(python_literal(&value), Err(reason), "{value}");
        }
    }

    #[test]
    fn python_reads_keys_as_str_and_short_containers_whole() {
        assert_eq!(
            python_literal(&json!({"name": "'x'", "'quoted'": "None", "Color.RED": "1"})),
            Ok(Literal::Dict(vec![
                (Literal::Str("name".into()), Literal::Str("x".into())),
                (Literal::Str("'quoted'".into()), Literal::Null),
                (Literal::Str("Color.RED".into()), Literal::Int("1".into())),
            ]))
        );
        let nine: Vec<Value> = (0..9).map(|i| json!(i.to_string())).collect();
        assert!(
            matches!(python_literal(&Value::Array(nine)), Ok(Literal::List(items)) if items.len() == 9)
        );
        let eleven = format!("[{}]", ["0"; 11].join(", "));
        assert!(
            matches!(python_literal(&json!(eleven)), Ok(Literal::List(items)) if items.len() == 11)
        );
        assert_eq!(python_literal(&json!(3)), Ok(Literal::Int("3".into())));
        assert_eq!(python_literal(&json!(-2.5)), Ok(Literal::Float(-2.5)));
        assert_eq!(python_literal(&json!(null)), Ok(Literal::Null));
        assert_eq!(python_literal(&json!(" (1)")), Ok(Literal::Int("1".into())));
        assert_eq!(python_literal(&json!("-0")), Ok(Literal::Int("0".into())));
        // Escapes `repr` does not write but Python reads.
        assert_eq!(
            python_literal(&json!("'\\v\\a\\101\\0\\q\\\n.'")),
            Ok(Literal::Str("\u{b}\u{7}A\0\\q.".into()))
        );
        assert_eq!(
            python_literal(&json!("b'\\u0041\\101'")),
            Ok(Literal::Bytes(b"\\u0041A".to_vec()))
        );
    }

    #[test]
    fn js_reads_what_local_variables_sends() {
        assert_eq!(js_literal(&json!("<null>")), Ok(Literal::Null));
        assert_eq!(js_literal(&json!("text")), Ok(Literal::Str("text".into())));
        assert_eq!(js_literal(&json!(42)), Ok(Literal::Int("42".into())));
        assert_eq!(js_literal(&json!(0.5)), Ok(Literal::Float(0.5)));
        assert_eq!(js_literal(&json!(false)), Ok(Literal::Bool(false)));
        assert_eq!(
            js_literal(&json!({"id": 7, "name": "<b>", "ok": true})),
            Ok(Literal::Dict(vec![
                (Literal::Str("id".into()), Literal::Int("7".into())),
                (Literal::Str("name".into()), Literal::Str("<b>".into())),
                (Literal::Str("ok".into()), Literal::Bool(true)),
            ]))
        );
        assert_eq!(
            js_literal(&json!([1, "two", 3.5])),
            Ok(Literal::List(vec![
                Literal::Int("1".into()),
                Literal::Str("two".into()),
                Literal::Float(3.5)
            ]))
        );
        // Containers of exactly ten are not cut by this SDK.
        assert!(js_literal(&json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).is_ok());
        let refused = [
            (json!("<undefined>"), NotLiteral::Object),
            (json!("<Cart>"), NotLiteral::Object),
            (json!("<Map(2)>"), NotLiteral::Object),
            (json!("<NaN>"), NotLiteral::Object),
            (json!("<12n>"), NotLiteral::Object),
            (json!("[Filtered]"), NotLiteral::Filtered),
            (json!({"token": "[Filtered]"}), NotLiteral::Filtered),
            // A member that was an object, a function or undefined.
            (json!([1, null]), NotLiteral::Truncated),
            (json!([[[[[[[[[1]]]]]]]]]), NotLiteral::TooLarge),
            (json!("x".repeat(MAX_SIZE + 1)), NotLiteral::TooLarge),
        ];
        for (value, reason) in refused {
            assert_eq!(js_literal(&value), Err(reason), "{value}");
        }
    }

    /// A function whose locals hold one of each kind, run under the real
    /// @sentry/node with its LocalVariables integration; prints the crash
    /// frame's `vars` as the event carries them.
    const NODE_PROBE: &str = r#"
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const Sentry = require("@sentry/node");
let event;
Sentry.init({
  dsn: "https://public@sentry.invalid/1",
  defaultIntegrations: false,
  includeLocalVariables: true,
  integrations: [Sentry.localVariablesIntegration({ captureAllExceptions: true })],
  transport: () => ({
    send: async ([, items]) => {
      for (const [header, payload] of items) if (header.type === "event") event = payload;
      return { statusCode: 200 };
    },
    flush: async () => true,
  }),
});
class Cart { constructor() { this.items = [1]; } }
function crash(str, num, flt, neg0, nan, big, nul, undef, bool, flat, arr, obj, inst, map, fn, sym, tricky) {
  throw new TypeError("boom");
}
// The integration starts its debugger session asynchronously: throw until
// an event carries the frame's variables (bounded).
for (let attempt = 0; attempt < 100; attempt++) {
  event = undefined;
  try {
    crash("it's", 42, 1.5, -0, NaN, 12n, null, undefined, true, [1, "a", false],
      [1, "a", null, [2], { x: 1 }, undefined],
      { a: 1, n: null, nested: { b: 2 }, list: [1], s: "x", u: undefined },
      new Cart(), new Map([[1, 2]]), () => 1, Symbol("s"), "<null>");
  } catch (error) {
    Sentry.captureException(error);
  }
  await Sentry.flush(2000);
  const frames = event?.exception?.values?.[0]?.stacktrace?.frames ?? [];
  if (frames.length > 0 && frames[frames.length - 1].vars) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const frames = event.exception.values[0].stacktrace.frames;
console.log(JSON.stringify(frames[frames.length - 1].vars));
"#;

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the real @sentry/node is the reference the reader follows"
    )]
    fn js_reads_the_real_local_variables_integration() {
        let modules = std::env::var("SUTURE_TEST_NODE_MODULES").unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-node/node_modules")
                .display()
                .to_string()
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let probe = dir.path().join("probe.mjs");
        std::fs::write(&probe, NODE_PROBE).expect("probe");
        let output = std::process::Command::new("node")
            .arg(&probe)
            .env("NODE_PATH", &modules)
            .env_remove("NODE_OPTIONS")
            .output()
            .expect("running node");
        assert!(
            output.status.success(),
            "node failed (is @sentry/node installed under SUTURE_TEST_NODE_MODULES?): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let vars: Value = serde_json::from_slice(&output.stdout).expect("vars JSON");
        let read = |name: &str| js_literal(&vars[name]);
        let str_ = |text: &str| Literal::Str(text.into());
        assert_eq!(read("str"), Ok(str_("it's")));
        assert_eq!(read("num"), Ok(Literal::Int("42".into())));
        assert_eq!(read("flt"), Ok(Literal::Float(1.5)));
        assert_eq!(read("bool"), Ok(Literal::Bool(true)));
        assert_eq!(read("nul"), Ok(Literal::Null));
        assert_eq!(
            read("flat"),
            Ok(Literal::List(vec![
                Literal::Int("1".into()),
                str_("a"),
                Literal::Bool(false)
            ]))
        );
        // Members that were arrays, objects or undefined became `null`.
        assert_eq!(read("arr"), Err(NotLiteral::Truncated));
        // Members that were objects or undefined are gone without a trace;
        // `null` stays.
        assert_eq!(
            read("obj"),
            Ok(Literal::Dict(vec![
                (str_("a"), Literal::Int("1".into())),
                (str_("n"), Literal::Null),
                (str_("s"), str_("x")),
            ]))
        );
        for name in ["neg0", "nan", "big", "undef", "inst", "map", "sym"] {
            assert_eq!(
                read(name),
                Err(NotLiteral::Object),
                "{name}: {}",
                vars[name]
            );
        }
        // A string that reads like the SDK's placeholder is taken for it.
        assert_eq!(read("tricky"), Ok(Literal::Null));
        assert!(vars.get("fn").is_none(), "functions are not sent: {vars}");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = python_literal(&Value::String(text.clone()));
            let _ = js_literal(&Value::String(text));
        }

        #[test]
        fn repr_like_text_never_panics(text in r#"[-b'"\\()\[\]{}:, 0-9a-fxuUN.eE+]{0,40}"#) {
            let _ = python_literal(&Value::String(text.clone()));
            let _ = python_literal(&json!({ text.clone(): [text.clone()] }));
        }
    }
}
