//! Go's words for a JSON body its decoder cannot read. dockerd 20.10 reads a body with `json.NewDecoder(body)
//! .Decode(&v)`, and answers a malformed one with the error of Go's scanner (`invalid character 'i' looking for
//! beginning of object key string`, `unexpected EOF`); clients and their test suites match those words. This is
//! a port of the scanner's states (Go's `encoding/json/scanner.go`), used only to *word* an error: whether a
//! body is accepted is decided by [`super::decode`] alone, and where Go would accept what it refuses (content
//! after the first value, which Go's `Decoder` never reads; nesting beyond serde_json's limit; bytes that are not
//! UTF-8), it keeps its own words.
//!
//! **Architecture Invariant:** pure; it never accepts or refuses a body, it only says what Go would say.

/// Where the scanner is, as Go's `stateXxx` functions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    InString,
    InStringEsc,
    /// `\u` and how many hex digits of it were read.
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    /// Inside `true`, `false` or `null`: the rest of the literal still expected.
    Literal(&'static [u8], &'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

/// What Go's decoder says about the first JSON value of `bytes`: `Some` of its syntax error, or of
/// `unexpected EOF` when the value is cut short; `None` when the first value is well-formed (or there is none:
/// Go's `io.EOF`, which each endpoint words itself).
pub fn syntax_error(bytes: &[u8]) -> Option<String> {
    let mut stack: Vec<Parse> = Vec::new();
    let mut state = State::BeginValue;
    let mut started = false;
    for &c in bytes {
        if !is_space(c) {
            started = true;
        }
        match step(&mut state, &mut stack, c) {
            Step::Continue => {}
            Step::End => return None,
            Step::Error(context) => return Some(format!("invalid character {} {context}", quote_char(c))),
        }
    }
    // Go feeds a space at the end of input: a number at the top level ends there.
    match step(&mut state, &mut stack, b' ') {
        Step::End => None,
        _ if started => Some("unexpected EOF".to_string()),
        _ => None,
    }
}

enum Step {
    Continue,
    /// The top-level value ended (Go's `Decoder` reads no further).
    End,
    Error(&'static str),
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// One byte, as Go's scanner steps: `stack` is its `parseState`.
fn step(state: &mut State, stack: &mut Vec<Parse>, c: u8) -> Step {
    use State as S;
    match *state {
        S::BeginValueOrEmpty if c == b']' => end_value(state, stack, c),
        S::BeginValue | S::BeginValueOrEmpty => {
            if is_space(c) {
                return Step::Continue;
            }
            *state = match c {
                b'{' => {
                    stack.push(Parse::ObjectKey);
                    S::BeginStringOrEmpty
                }
                b'[' => {
                    stack.push(Parse::ArrayValue);
                    S::BeginValueOrEmpty
                }
                b'"' => S::InString,
                b'-' => S::Neg,
                b'0' => S::Zero,
                b'1'..=b'9' => S::One,
                b't' => S::Literal(b"rue", "true"),
                b'f' => S::Literal(b"alse", "false"),
                b'n' => S::Literal(b"ull", "null"),
                _ => return Step::Error("looking for beginning of value"),
            };
            Step::Continue
        }
        S::BeginStringOrEmpty if c == b'}' => {
            if let Some(top) = stack.last_mut() {
                *top = Parse::ObjectValue;
            }
            end_value(state, stack, c)
        }
        S::BeginStringOrEmpty | S::BeginString => {
            if is_space(c) {
                return Step::Continue;
            }
            if c == b'"' {
                *state = S::InString;
                return Step::Continue;
            }
            Step::Error("looking for beginning of object key string")
        }
        S::EndValue => end_value(state, stack, c),
        S::InString => {
            match c {
                b'"' => *state = S::EndValue,
                b'\\' => *state = S::InStringEsc,
                0..=0x1f => return Step::Error("in string literal"),
                _ => {}
            }
            Step::Continue
        }
        S::InStringEsc => {
            *state = match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => S::InString,
                b'u' => S::InStringEscU(0),
                _ => return Step::Error("in string escape code"),
            };
            Step::Continue
        }
        S::InStringEscU(n) => {
            if !is_hex(c) {
                return Step::Error("in \\u hexadecimal character escape");
            }
            *state = if n == 3 { S::InString } else { S::InStringEscU(n + 1) };
            Step::Continue
        }
        S::Neg => {
            *state = match c {
                b'0' => S::Zero,
                b'1'..=b'9' => S::One,
                _ => return Step::Error("in numeric literal"),
            };
            Step::Continue
        }
        S::One if c.is_ascii_digit() => Step::Continue,
        S::One | S::Zero => match c {
            b'.' => {
                *state = S::Dot;
                Step::Continue
            }
            b'e' | b'E' => {
                *state = S::E;
                Step::Continue
            }
            _ => end_value(state, stack, c),
        },
        S::Dot => {
            if !c.is_ascii_digit() {
                return Step::Error("after decimal point in numeric literal");
            }
            *state = S::Dot0;
            Step::Continue
        }
        S::Dot0 => match c {
            b'0'..=b'9' => Step::Continue,
            b'e' | b'E' => {
                *state = S::E;
                Step::Continue
            }
            _ => end_value(state, stack, c),
        },
        S::E if c == b'+' || c == b'-' => {
            *state = S::ESign;
            Step::Continue
        }
        S::E | S::ESign => {
            if !c.is_ascii_digit() {
                return Step::Error("in exponent of numeric literal");
            }
            *state = S::E0;
            Step::Continue
        }
        S::E0 if c.is_ascii_digit() => Step::Continue,
        S::E0 => end_value(state, stack, c),
        S::Literal(rest, word) => {
            if c != rest[0] {
                return Step::Error(literal_context(word, rest[0]));
            }
            *state = if rest.len() == 1 { S::EndValue } else { S::Literal(&rest[1..], word) };
            Step::Continue
        }
    }
}

/// Go's `stateEndValue`: after a value, inside an object or an array, or at the top level.
fn end_value(state: &mut State, stack: &mut Vec<Parse>, c: u8) -> Step {
    let Some(top) = stack.last_mut() else {
        // The top-level value has ended; Go's Decoder stops before this byte.
        return Step::End;
    };
    if is_space(c) {
        *state = State::EndValue;
        return Step::Continue;
    }
    match (*top, c) {
        (Parse::ObjectKey, b':') => {
            *top = Parse::ObjectValue;
            *state = State::BeginValue;
        }
        (Parse::ObjectKey, _) => return Step::Error("after object key"),
        (Parse::ObjectValue, b',') => {
            *top = Parse::ObjectKey;
            *state = State::BeginString;
        }
        (Parse::ArrayValue, b',') => *state = State::BeginValue,
        (Parse::ObjectValue, b'}') | (Parse::ArrayValue, b']') => {
            stack.pop();
            // Go's Decoder ends the value at its closing bracket, without waiting for another byte.
            if stack.is_empty() {
                return Step::End;
            }
            *state = State::EndValue;
        }
        (Parse::ObjectValue, _) => return Step::Error("after object key:value pair"),
        (Parse::ArrayValue, _) => return Step::Error("after array element"),
    }
    Step::Continue
}

fn literal_context(word: &str, expected: u8) -> &'static str {
    match (word, expected) {
        ("true", b'r') => "in literal true (expecting 'r')",
        ("true", b'u') => "in literal true (expecting 'u')",
        ("true", _) => "in literal true (expecting 'e')",
        ("false", b'a') => "in literal false (expecting 'a')",
        ("false", b'l') => "in literal false (expecting 'l')",
        ("false", b's') => "in literal false (expecting 's')",
        ("false", _) => "in literal false (expecting 'e')",
        ("null", b'u') => "in literal null (expecting 'u')",
        _ => "in literal null (expecting 'l')",
    }
}

/// Go's `quoteChar`: the byte as the rune of the same value, quoted as `strconv.Quote` quotes it, between
/// single quotes.
fn quote_char(c: u8) -> String {
    let inner = match c {
        b'\'' => "\\'".to_string(),
        b'"' => "\"".to_string(),
        0x07 => "\\a".to_string(),
        0x08 => "\\b".to_string(),
        0x0c => "\\f".to_string(),
        b'\n' => "\\n".to_string(),
        b'\r' => "\\r".to_string(),
        b'\t' => "\\t".to_string(),
        0x0b => "\\v".to_string(),
        b'\\' => "\\\\".to_string(),
        0x00..=0x1f | 0x7f => format!("\\x{c:02x}"),
        // U+0080 to U+009F are controls, U+00A0 a non-ASCII space and U+00AD a format character: not
        // printable for strconv.
        0x80..=0xa0 | 0xad => format!("\\u{c:04x}"),
        _ => char::from(c).to_string(),
    };
    format!("'{inner}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words each body gets from dockerd 20.10's decoder, as seen on this machine's engine.
    fn check(body: &[u8], expected: Option<&str>) {
        assert_eq!(syntax_error(body).as_deref(), expected, "{}", String::from_utf8_lossy(body));
    }

    #[test]
    fn words_syntax_errors_as_go() {
        check(b"{invalid json", Some("invalid character 'i' looking for beginning of object key string"));
        check(br#"{"a":1,}"#, Some("invalid character '}' looking for beginning of object key string"));
        check(br#"{"a" 1}"#, Some("invalid character '1' after object key"));
        check(br#"{"a":tru}"#, Some("invalid character '}' in literal true (expecting 'e')"));
        check(br#"{"a":"\q"}"#, Some("invalid character 'q' in string escape code"));
        check(br#"{"a":01}"#, Some("invalid character '1' after object key:value pair"));
        check(b"{\"a\":\"\x01\"}", Some("invalid character '\\x01' in string literal"));
        check("{é}".as_bytes(), Some("invalid character 'Ã' looking for beginning of object key string"));
        check(b"{\xa0}", Some("invalid character '\\u00a0' looking for beginning of object key string"));
        check(b"{'a'}", Some("invalid character '\\'' looking for beginning of object key string"));
        check(b"[1,]", Some("invalid character ']' looking for beginning of value"));
        check(b"[1 2]", Some("invalid character '2' after array element"));
        check(b"-x", Some("invalid character 'x' in numeric literal"));
        check(b"1.x", Some("invalid character 'x' after decimal point in numeric literal"));
        check(b"1ex", Some("invalid character 'x' in exponent of numeric literal"));
        check(br#""\u12x4""#, Some("invalid character 'x' in \\u hexadecimal character escape"));
        check(b"nul!", Some("invalid character '!' in literal null (expecting 'l')"));
        check(b"fx", Some("invalid character 'x' in literal false (expecting 'a')"));
    }

    #[test]
    fn a_value_cut_short_is_unexpected_eof() {
        for body in [&br#"{"a":"x""#[..], br#"{"a":"x","#, br#"{"a":"#, br#"{"a":"x\u12"#, b"[", b"  {"] {
            check(body, Some("unexpected EOF"));
        }
    }

    #[test]
    fn what_go_reads_whole_has_no_error() {
        // Go's Decoder reads the first value only: what follows it is never looked at.
        for body in [&b"{}"[..], b"{\"a\":1}x", b"[1] [", b"12", b"\"s\"", b"null", b"  true ", b"-0.5e+3", b"", b"  "]
        {
            check(body, None);
        }
    }
}
