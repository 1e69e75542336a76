//! A tolerant reader of JSON-lines files as training runs really write them.
//!
//! It accepts the bare `NaN`, `Infinity` and `-Infinity` tokens that Python's
//! `json` writes, CRLF line ends, a byte-order mark, and a last line cut short
//! by a killed process (a warning, not an error). A malformed line anywhere
//! else is an error naming the file and line.

use crate::error::{LoadError, Warning};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::path::Path;

/// Calls `each(line_number, object)` for every non-empty line of `path`, in
/// order; line numbers start at 1. Returns the warnings of lines it skipped.
pub fn read_objects(
    path: &Path,
    mut each: impl FnMut(usize, Map<String, Value>) -> Result<(), LoadError>,
) -> Result<Vec<Warning>, LoadError> {
    read_lines(path, |number, bytes| {
        let object = parse_object(bytes).map_err(LineError::Parse)?;
        each(number, object).map_err(LineError::Load)
    })
}

/// Why a line was not taken.
pub enum LineError {
    /// The line is not what it should be: an error, or a warning when it is
    /// the cut-short last line.
    Parse(String),
    /// Stop the whole read.
    Load(LoadError),
}

/// Calls `each(line_number, bytes)` for every non-empty line of `path`, with
/// the line end, a byte-order mark and NUL padding taken care of. A parse
/// error on a last line without its newline is a warning (a killed writer);
/// anywhere else it is an error naming the line.
pub fn read_lines(
    path: &Path,
    mut each: impl FnMut(usize, &[u8]) -> Result<(), LineError>,
) -> Result<Vec<Warning>, LoadError> {
    read_line_blocks(path, |lines, warnings| {
        for line in lines {
            match each(line.number, line.bytes) {
                Ok(()) => {}
                Err(LineError::Load(e)) => return Err(e),
                Err(LineError::Parse(message)) => parse_failure(path, line, message, warnings)?,
            }
        }
        Ok(())
    })
}

/// One line of a JSON-lines file.
pub struct Line<'a> {
    pub number: usize,
    pub bytes: &'a [u8],
    /// Whether it ended with a newline (the last line of a killed writer does not).
    pub complete: bool,
}

/// What a line that does not parse means: a warning for a cut-short last
/// line, an error naming the line anywhere else.
pub fn parse_failure(path: &Path, line: &Line<'_>, message: String, warnings: &mut Vec<Warning>) -> Result<(), LoadError> {
    if line.complete {
        return Err(LoadError::Line { path: path.to_path_buf(), line: line.number, message });
    }
    warnings.push(Warning {
        file: path.to_path_buf(),
        line: Some(line.number),
        message: format!("last line is cut short ({message}); the run was probably killed while writing it; skipped"),
    });
    Ok(())
}

/// Bytes read at a time; lines are handed over a block of them at a time.
const BLOCK_BYTES: usize = 8 << 20;

/// Calls `each(lines, warnings)` for consecutive blocks of the non-empty lines
/// of `path`, so that a caller can parse a block's lines in parallel.
pub fn read_line_blocks(
    path: &Path,
    mut each: impl FnMut(&[Line<'_>], &mut Vec<Warning>) -> Result<(), LoadError>,
) -> Result<Vec<Warning>, LoadError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut warnings = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut block = vec![0u8; BLOCK_BYTES];
    let mut number = 0usize;
    let mut at_end = false;
    while !at_end {
        let read = loop {
            match file.read(&mut block) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LoadError::io(path, e)),
            }
        };
        at_end = read == 0;
        pending.extend_from_slice(&block[..read]);
        // Whole lines only, except at the end, where the rest is the last line.
        let cut = if at_end { pending.len() } else { pending.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) };
        if cut == 0 {
            continue;
        }
        let mut lines = Vec::new();
        for raw in pending[..cut].split_inclusive(|&b| b == b'\n') {
            number += 1;
            let complete = raw.last() == Some(&b'\n');
            let mut bytes = if complete { &raw[..raw.len() - 1] } else { raw };
            if bytes.last() == Some(&b'\r') {
                bytes = &bytes[..bytes.len() - 1];
            }
            if number == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if bytes.iter().all(|&b| b == 0 || b.is_ascii_whitespace()) {
                // What a file system leaves after a crash: the size grew, the data did not land.
                warnings.push(Warning {
                    file: path.to_path_buf(),
                    line: Some(number),
                    message: "NUL bytes where a line should be (the writer crashed?); skipped".into(),
                });
                continue;
            }
            lines.push(Line { number, bytes, complete });
        }
        each(&lines, &mut warnings)?;
        pending.drain(..cut);
    }
    Ok(warnings)
}

/// A value of a metrics line, read without building a JSON tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// A non-negative integer, kept exact (steps above 2^53).
    Unsigned(u64),
    Number(f64),
    Null,
    Text(Cow<'a, str>),
    /// An array of non-negative integers (class counts).
    Counts(Vec<u64>),
    /// Anything else: booleans, objects, other arrays.
    Other,
}

impl Field<'_> {
    /// The value as a float, as [`number`] reads JSON values.
    pub fn number(&self) -> Option<f64> {
        match self {
            Field::Number(v) => Some(*v),
            Field::Unsigned(v) => Some(*v as f64),
            Field::Text(t) => text_number(t),
            _ => None,
        }
    }

    fn from_value(value: Value) -> Field<'static> {
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(u) => Field::Unsigned(u),
                None => n.as_f64().map_or(Field::Other, Field::Number),
            },
            Value::Null => Field::Null,
            Value::String(s) => Field::Text(Cow::Owned(s)),
            Value::Array(items) => items.iter().map(|v| v.as_u64()).collect::<Option<Vec<u64>>>().map_or(Field::Other, Field::Counts),
            _ => Field::Other,
        }
    }
}

/// The `(key, value)` pairs of one metrics line. Well-formed lines are read
/// straight from the bytes (keys borrowed, numbers as floats); a line with bare
/// NaN/Infinity tokens goes through [`parse_object`].
pub fn parse_fields(bytes: &[u8]) -> Result<Vec<(Cow<'_, str>, Field<'_>)>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let fast = serde::de::DeserializeSeed::deserialize(LineSeed, &mut de).and_then(|fields| de.end().map(|()| fields));
    match fast {
        Ok(fields) => Ok(fields),
        Err(_) => Ok(parse_object(bytes)?.into_iter().map(|(k, v)| (Cow::Owned(k), Field::from_value(v))).collect()),
    }
}

struct LineSeed;

impl<'de> serde::de::DeserializeSeed<'de> for LineSeed {
    type Value = Vec<(Cow<'de, str>, Field<'de>)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LineSeed {
    type Value = Vec<(Cow<'de, str>, Field<'de>)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(24));
        while let Some(Key(key)) = map.next_key()? {
            fields.push((key, map.next_value::<FieldOf>()?.0));
        }
        Ok(fields)
    }
}

/// A key, borrowed from the line unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

struct FieldOf<'de>(Field<'de>);

impl<'de> serde::Deserialize<'de> for FieldOf<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FieldOf<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a metric value")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Number(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Unsigned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Number(v as f64)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Other))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Text(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldOf(Field::Text(Cow::Owned(v.to_string()))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut counts = Vec::new();
                let mut all_counts = true;
                while let Some(v) = seq.next_element::<Value>()? {
                    match v.as_u64() {
                        Some(c) if all_counts => counts.push(c),
                        _ => all_counts = false,
                    }
                }
                Ok(FieldOf(if all_counts { Field::Counts(counts) } else { Field::Other }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(FieldOf(Field::Other))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses one line into a JSON object, allowing bare non-finite tokens.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8 ({e})"))?;
    let value = match serde_json::from_str::<Value>(text) {
        Ok(value) => value,
        Err(first) => match quote_nonfinite_tokens(text) {
            Some(quoted) => serde_json::from_str::<Value>(&quoted).map_err(|_| json_message(&first))?,
            None => return Err(json_message(&first)),
        },
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, found {}", kind_of(&other))),
    }
}

fn json_message(e: &serde_json::Error) -> String {
    format!("invalid JSON at column {}: {e}", e.column())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` outside strings as strings,
/// which [`number`] reads back as floats. `None` when there is none.
fn quote_nonfinite_tokens(text: &str) -> Option<String> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let (mut i, mut start, mut in_string, mut changed) = (0, 0, false, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(token) = TOKENS.iter().find(|t| bytes[i..].starts_with(t.as_bytes())) {
            out.push_str(&text[start..i]);
            out.push('"');
            out.push_str(token);
            out.push('"');
            i += token.len();
            start = i;
            changed = true;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[start.min(text.len())..]);
    changed.then_some(out)
}

/// A metric value as a float: numbers, the non-finite tokens, and numbers
/// written as strings (type drift between lines). `None` for null, missing
/// markers such as "NA", and anything that is not a number.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => text_number(s),
        _ => None,
    }
}

/// A number written as text: the non-finite tokens in any case, or a decimal.
fn text_number(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_tokens_become_floats_outside_strings_only() {
        let obj = parse_object(br#"{"step":3,"loss":NaN,"g":-Infinity,"h":Infinity,"note":"NaN is fine"}"#).unwrap();
        assert!(number(&obj["loss"]).unwrap().is_nan());
        assert_eq!(number(&obj["g"]), Some(f64::NEG_INFINITY));
        assert_eq!(number(&obj["h"]), Some(f64::INFINITY));
        assert_eq!(obj["note"], Value::String("NaN is fine".into()));
    }

    #[test]
    fn fast_fields_match_the_json_tree() {
        for line in [
            &br#"{"step":3,"loss":0.5,"n":7,"neg":-2,"s":"1.5","x":null,"c":[1,2],"b":true,"o":{"a":[1]},"k\u00e9y":1}"#[..],
            br#"{"step":1,"loss":NaN,"g":-Infinity,"c":[3,4]}"#,
        ] {
            let fields = parse_fields(line).unwrap();
            let tree = parse_object(line).unwrap();
            assert_eq!(fields.len(), tree.len());
            for (k, f) in &fields {
                let expected = Field::from_value(tree[k.as_ref()].clone());
                match (f, &expected) {
                    (Field::Number(a), Field::Text(_)) => assert!(a.is_nan() || a.is_infinite() || Some(*a) == expected.number()),
                    (Field::Unsigned(a), Field::Unsigned(b)) => assert_eq!(a, b),
                    (Field::Text(_), Field::Number(_)) => unreachable!(),
                    _ => assert!(f == &expected || f.number().is_some_and(|v| v.is_nan()), "{k}: {f:?} vs {expected:?}"),
                }
            }
        }
        assert!(parse_fields(b"{\"step\": 1,").is_err());
        assert!(parse_fields(b"[1]").is_err());
    }

    #[test]
    fn strings_and_missing_markers() {
        assert_eq!(number(&Value::String("1.5".into())), Some(1.5));
        assert!(number(&Value::String("nan".into())).unwrap().is_nan());
        assert_eq!(number(&Value::String("NA".into())), None);
        assert_eq!(number(&Value::Null), None);
        assert_eq!(number(&Value::Bool(true)), None);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse_object(b"[1,2]").unwrap_err().contains("expected a JSON object"));
        assert!(parse_object(b"{\"step\": 1,").unwrap_err().contains("invalid JSON"));
        assert!(parse_object(b"{\"a\":\xff}").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn truncated_last_line_is_a_warning_and_a_bad_middle_line_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "\u{feff}{\"step\":0}\r\n\n{\"step\":1}\n{\"step\":2,\"lo").unwrap();
        let mut steps = Vec::new();
        let warnings = read_objects(&path, |_, o| {
            steps.push(o["step"].as_u64().unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(steps, [0, 1]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, Some(4));
        std::fs::write(&path, "{\"step\":0}\n{oops}\n{\"step\":2}\n").unwrap();
        let err = read_objects(&path, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("m.jsonl:2:"), "{err}");
    }
}
