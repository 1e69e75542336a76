//! A tolerant reader of JSON-lines files as training runs really write them.
//!
//! It accepts the bare `NaN`, `Infinity` and `-Infinity` tokens that Python's
//! `json` writes, CRLF line ends, a byte-order mark, and a last line cut short
//! by a killed process. A line that cannot be read is skipped: one broken line
//! costs that line, and the lines skipped are reported as one warning (their
//! count and the first line numbers), not one per line.

use crate::error::{LoadError, Warning};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::path::Path;

/// Calls `each(line_number, object)` for every non-empty line of `path` that
/// is a JSON object, in order; line numbers start at 1. `each` returns why a
/// line is unusable, and that line is skipped too. Returns the warnings.
pub fn read_objects(path: &Path, mut each: impl FnMut(usize, Map<String, Value>) -> Result<(), String>) -> Result<Vec<Warning>, LoadError> {
    let mut skipped = SkippedLines::default();
    let mut warnings = read_line_blocks(path, |lines, warnings| {
        for line in lines {
            if let Err(message) = parse_object(line.bytes).and_then(|object| each(line.number, object)) {
                skipped.skip(path, line.number, line.complete, message, warnings);
            }
        }
        Ok(())
    })?;
    skipped.finish(path, &mut warnings);
    Ok(warnings)
}

/// One line of a JSON-lines file.
pub struct Line<'a> {
    pub number: usize,
    pub bytes: &'a [u8],
    /// Whether it ended with a newline (the last line of a killed writer does not).
    pub complete: bool,
}

/// Line numbers shown in the warning about skipped lines.
const SKIPPED_LINES_SHOWN: usize = 5;

/// The lines of a file that could not be read, gathered into one warning.
#[derive(Debug, Default)]
pub struct SkippedLines {
    count: usize,
    first: Vec<usize>,
    first_reason: Option<String>,
}

impl SkippedLines {
    /// Skips a line. A cut-short last line gets a warning of its own: it says
    /// the writer was killed, not that the file is damaged.
    pub fn skip(&mut self, path: &Path, number: usize, complete: bool, reason: String, warnings: &mut Vec<Warning>) {
        if !complete {
            warnings.push(Warning::new(
                path,
                Some(number),
                format!("last line is cut short ({reason}); the run was probably killed while writing it; skipped"),
            ));
            return;
        }
        self.count += 1;
        if self.first.len() < SKIPPED_LINES_SHOWN {
            self.first.push(number);
        }
        self.first_reason.get_or_insert(reason);
    }

    /// The one warning about every skipped line, if any was.
    pub fn finish(self, path: &Path, warnings: &mut Vec<Warning>) {
        let Some(&first) = self.first.first() else {
            return;
        };
        let numbers: Vec<String> = self.first.iter().map(|n| n.to_string()).collect();
        let more = if self.count > self.first.len() { ", ..." } else { "" };
        warnings.push(Warning::new(
            path,
            Some(first),
            format!(
                "{} line(s) could not be read and were skipped (lines {}{more}); the first: {}",
                self.count,
                numbers.join(", "),
                self.first_reason.unwrap_or_default()
            ),
        ));
    }
}

/// Bytes read at a time; lines are handed over a block of them at a time.
pub(crate) const BLOCK_BYTES: usize = 4 << 20;

/// Calls `each(lines, warnings)` for consecutive blocks of the non-empty lines
/// of `path`, so that a caller can parse a block's lines in parallel.
pub fn read_line_blocks(
    path: &Path,
    mut each: impl FnMut(&[Line<'_>], &mut Vec<Warning>) -> Result<(), LoadError>,
) -> Result<Vec<Warning>, LoadError> {
    let mut reader = BlockReader::open(path)?;
    let mut warnings = Vec::new();
    while let Some(mut block) = reader.next_block()? {
        warnings.append(&mut block.warnings);
        each(&block.lines(), &mut warnings)?;
    }
    Ok(warnings)
}

/// Reads a JSON-lines file a block of whole lines at a time. Each block owns
/// its bytes, so that one block can be parsed while the next is read.
pub struct BlockReader {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// The start of a line cut off by the end of the previous block.
    carry: Vec<u8>,
    /// Lines numbered so far.
    number: usize,
    at_end: bool,
    /// Buffers of blocks handed back, reused: a fresh 4 MB buffer per block
    /// costs the kernel a page fault and a zeroed page every 4 KB.
    spare: Vec<Vec<u8>>,
}

/// Whole lines of a file and what was skipped among them.
pub struct Block {
    bytes: Vec<u8>,
    spans: Vec<(usize, std::ops::Range<usize>, bool)>,
    /// Lines of NUL bytes, skipped.
    pub warnings: Vec<Warning>,
}

impl Block {
    /// The block's non-empty lines, in order.
    pub fn lines(&self) -> Vec<Line<'_>> {
        self.spans.iter().map(|(number, range, complete)| Line { number: *number, bytes: &self.bytes[range.clone()], complete: *complete }).collect()
    }
}

impl BlockReader {
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
        Ok(BlockReader { path: path.to_path_buf(), file, carry: Vec::new(), number: 0, at_end: false, spare: Vec::new() })
    }

    /// Takes back a block that is no longer needed, to read the next ones into.
    pub fn recycle(&mut self, block: Block) {
        if self.spare.len() < 2 {
            self.spare.push(block.bytes);
        }
    }

    /// The next block, `None` at the end of the file. A line end, a byte-order
    /// mark and NUL padding are taken care of; the last line may lack its
    /// newline (then it is not `complete`).
    pub fn next_block(&mut self) -> Result<Option<Block>, LoadError> {
        use std::io::Read;
        loop {
            if self.at_end {
                return Ok(None);
            }
            // A long line being gathered keeps its buffer; a short carry
            // moves into a reused one.
            let mut bytes = match self.spare.pop_if(|_| self.carry.len() < BLOCK_BYTES / 64) {
                Some(mut spare) => {
                    spare.clear();
                    spare.append(&mut self.carry);
                    spare
                }
                None => std::mem::take(&mut self.carry),
            };
            bytes.reserve(BLOCK_BYTES);
            let read = (&mut self.file).take(BLOCK_BYTES as u64).read_to_end(&mut bytes).map_err(|e| LoadError::io(&self.path, e))?;
            self.at_end = read == 0;
            // Whole lines only, except at the end, where the rest is the last line.
            let cut = if self.at_end { bytes.len() } else { memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1) };
            if cut == 0 {
                // No line end yet (a long line): keep reading into the same buffer.
                self.carry = bytes;
                continue;
            }
            self.carry = bytes[cut..].to_vec();
            bytes.truncate(cut);
            let mut block = Block { spans: Vec::new(), warnings: Vec::new(), bytes: Vec::new() };
            let mut start = 0;
            while start < cut {
                let end = memchr::memchr(b'\n', &bytes[start..cut]).map_or(cut, |i| start + i + 1);
                let line_start = start;
                start = end;
                self.number += 1;
                let complete = bytes[end - 1] == b'\n';
                let mut range = line_start..if complete { end - 1 } else { end };
                if bytes[range.clone()].last() == Some(&b'\r') {
                    range.end -= 1;
                }
                if self.number == 1 && bytes[range.clone()].starts_with(b"\xEF\xBB\xBF") {
                    range.start += 3;
                }
                let text = &bytes[range.clone()];
                if text.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                if text.iter().all(|&b| b == 0 || b.is_ascii_whitespace()) {
                    // What a file system leaves after a crash: the size grew, the data did not land.
                    block.warnings.push(Warning::new(
                        &self.path,
                        Some(self.number),
                        "NUL bytes where a line should be (the writer crashed?); skipped",
                    ));
                    continue;
                }
                block.spans.push((self.number, range, complete));
            }
            block.bytes = bytes;
            return Ok(Some(block));
        }
    }
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
    /// The same value, owning its text.
    pub fn into_owned(self) -> Field<'static> {
        match self {
            Field::Unsigned(v) => Field::Unsigned(v),
            Field::Number(v) => Field::Number(v),
            Field::Null => Field::Null,
            Field::Text(t) => Field::Text(Cow::Owned(t.into_owned())),
            Field::Counts(c) => Field::Counts(c),
            Field::Other => Field::Other,
        }
    }

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

/// The `(key, value)` pairs of one metrics line, in line order. A flat line
/// of numbers, plain strings, nulls, the bare non-finite tokens and arrays of
/// counts is scanned straight from the bytes (keys borrowed); any other line
/// goes through the JSON tree of [`parse_object`], with the same result.
pub fn parse_fields(bytes: &[u8]) -> Result<Vec<(Cow<'_, str>, Field<'_>)>, String> {
    if let Some(fields) = scan_flat(bytes) {
        return Ok(fields);
    }
    Ok(parse_object(bytes)?.into_iter().map(|(k, v)| (Cow::Owned(k), Field::from_value(v))).collect())
}

/// The fields of a flat line, or `None` where the general path is needed.
fn scan_flat(bytes: &[u8]) -> Option<Vec<(Cow<'_, str>, Field<'_>)>> {
    let mut fields = Vec::with_capacity(24);
    scan_fields(bytes, |key, value| {
        fields.push((Cow::Borrowed(std::str::from_utf8(key).ok()?), value));
        Some(())
    })?;
    Some(fields)
}

/// The scanner of [`parse_fields`] on its own: calls `each(key, value)` for
/// every field of a flat line, the key as raw bytes (without escapes, but
/// its UTF-8 not checked: a caller that recognizes the bytes of a key it has
/// seen need not check them again). `None`, from the scanner or from `each`,
/// means the line needs [`parse_fields`]; fields already given are void.
pub fn scan_fields<'a>(bytes: &'a [u8], each: impl FnMut(&'a [u8], Field<'a>) -> Option<()>) -> Option<()> {
    (Scanner { bytes, at: 0 }).object(each)
}

/// Checks the scanner of [`parse_fields`] against the JSON tree on one line:
/// where the scanner takes a line, the tree must read the same values (the
/// last of repeated keys), and where the tree fails, the scanner must not
/// have taken it. Returns what differs (for tests and the fuzz target).
pub fn scanner_disagreement(bytes: &[u8]) -> Option<String> {
    let scanned = scan_flat(bytes)?;
    let tree = match parse_object(bytes) {
        Ok(tree) => tree,
        Err(e) => return Some(format!("scanned, but the JSON tree fails: {e}")),
    };
    let mut last: std::collections::BTreeMap<&str, &Field<'_>> = Default::default();
    for (key, field) in &scanned {
        last.insert(key, field);
    }
    if last.len() != tree.len() {
        return Some(format!("{} keys scanned, {} in the tree", last.len(), tree.len()));
    }
    for (key, value) in &tree {
        let expected = Field::from_value(value.clone());
        let same = match (last.get(key.as_str()), &expected) {
            (Some(Field::Number(a)), Field::Number(b)) => a.to_bits() == b.to_bits(),
            (Some(Field::Number(a)), Field::Text(t)) => a.is_nan() && text_number(t).is_some_and(f64::is_nan) || Some(*a) == text_number(t),
            (Some(found), expected) => *found == expected,
            (None, _) => false,
        };
        if !same {
            return Some(format!("{key}: scanned {:?}, tree {expected:?}", last.get(key.as_str())));
        }
    }
    None
}

/// A scanner for the common shape of a metrics line. Every method returns
/// `None` on anything it does not handle, valid JSON or not; the caller then
/// takes the general path, which also writes the error messages.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn object(mut self, mut each: impl FnMut(&'a [u8], Field<'a>) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                let key = self.raw_string()?;
                self.expect(b':')?;
                let value = self.value()?;
                each(key, value)?;
                match self.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.skip_whitespace();
        (self.at == self.bytes.len()).then_some(())
    }

    fn value(&mut self) -> Option<Field<'a>> {
        match self.peek()? {
            b'"' => Some(Field::Text(Cow::Borrowed(std::str::from_utf8(self.raw_string()?).ok()?))),
            b'n' => self.word(b"null", Field::Null),
            b'N' => self.word(b"NaN", Field::Number(f64::NAN)),
            b'I' => self.word(b"Infinity", Field::Number(f64::INFINITY)),
            b'-' if self.bytes.get(self.at + 1) == Some(&b'I') => {
                self.at += 1;
                self.word(b"Infinity", Field::Number(f64::NEG_INFINITY))
            }
            b'[' => self.counts(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The bytes of a string without escapes or control characters.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let len = self.bytes[start..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.at = start + len;
        if self.bytes[self.at] != b'"' {
            return None;
        }
        self.at += 1;
        Some(&self.bytes[start..start + len])
    }

    /// A JSON number, read as serde_json reads it: non-negative integers as
    /// exact `u64`, others as the nearest `f64` (`-0` too); out of range is
    /// left to it.
    fn number(&mut self) -> Option<Field<'a>> {
        let rest = &self.bytes[self.at..];
        let negative = *rest.first()? == b'-';
        let int_start = negative as usize;
        // The float parser reads the longest number it can (correctly rounded,
        // as serde_json does); what JSON forbids beyond that is checked here:
        // a start that is not a digit, leading zeros, "1." and ".5".
        let (value, len): (f64, usize) = fast_float2::parse_partial(rest).ok()?;
        let text = &rest[..len];
        let first = *text.get(int_start)?;
        if !first.is_ascii_digit() || (first == b'0' && text.get(int_start + 1).is_some_and(u8::is_ascii_digit)) {
            return None;
        }
        let dot = text.iter().position(|&b| b == b'.');
        if let Some(dot) = dot {
            if !text.get(dot + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        self.at += len;
        if dot.is_none() && !negative && text.iter().all(u8::is_ascii_digit) {
            let exact = text.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
            if let Some(v) = exact {
                return Some(Field::Unsigned(v));
            }
        }
        value.is_finite().then_some(Field::Number(value))
    }

    /// An array of non-negative integers (class counts).
    fn counts(&mut self) -> Option<Field<'a>> {
        self.expect(b'[')?;
        let mut counts = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Field::Counts(counts));
        }
        loop {
            self.skip_whitespace();
            let Field::Unsigned(count) = self.number()? else { return None };
            counts.push(count);
            match self.next()? {
                b',' => continue,
                b']' => return Some(Field::Counts(counts)),
                _ => return None,
            }
        }
    }

    fn word(&mut self, word: &[u8], field: Field<'a>) -> Option<Field<'a>> {
        self.bytes[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            field
        })
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, without taking it.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }
}

/// Parses one line into a JSON object, allowing bare non-finite tokens.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match parse_value(bytes)? {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, found {}", kind_of(&other))),
    }
}

/// A JSON value, with the bare non-finite tokens that Python writes read as
/// the strings "NaN", "Infinity" and "-Infinity".
pub fn parse_value(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8 ({e})"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(value),
        Err(first) => match quote_nonfinite_tokens(text) {
            Some(quoted) => serde_json::from_str::<Value>(&quoted).map_err(|_| json_message(&first)),
            None => Err(json_message(&first)),
        },
    }
}

fn json_message(e: &serde_json::Error) -> String {
    format!("invalid JSON: {e}")
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
pub(crate) fn quote_nonfinite_tokens(text: &str) -> Option<String> {
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
pub(crate) fn text_number(text: &str) -> Option<f64> {
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
    fn scanner_agrees_with_the_json_tree() {
        let mut lines: Vec<String> = [
            r#"{"step":3,"loss":0.5,"n":7,"neg":-2,"s":"1.5","x":null,"c":[1,2],"b":true,"o":{"a":[1]}}"#,
            r#"{"step":1,"loss":NaN,"g":-Infinity,"h":Infinity,"c":[3, 4 ,5],"e":[]}"#,
            r#" { "step" : 1 , "loss" : 2 } "#,
            r#"{"kéy":1,"esc":"a"b","tab":"a	b"}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{}"#,
            r#"{"big":18446744073709551615,"bigger":18446744073709551616,"neg":-9223372036854775809,"z":-0,"f":-0.0}"#,
            r#"{"e":1e5,"E":1E-5,"p":1e+5,"huge":1e400,"tiny":1e-400,"long":0.1000000000000000055511151231257827}"#,
            r#"{"lead":01,"dot":1.,"frac":.5,"plus":+1,"exp":1e,"hex":0x10}"#,
            r#"{"step":1,"loss":nan,"x":inf,"y":-NaN,"z":Infinit}"#,
            r#"{"step":1,"c":[1,-2],"d":[1.5],"e":[1,]}"#,
            r#"{"step":1,}"#,
            r#"{"c":["#,
            r#"{"c":[1, "#,
            r#"{"c":[1,"#,
            r#"{"c":-"#,
            r#"{"step":1}}"#,
            r#"{"step":1} x"#,
            r#"{"step" 1}"#,
            r#"["step",1]"#,
            "{\"a\":\"\u{7f}\u{202e}\u{1F600}\"}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut state = 17u64;
        for _ in 0..2000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = f64::from_bits(state) ;
            let small = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 10f64.powi((state % 40) as i32 - 20);
            lines.push(format!("{{\"step\":{},\"a\":{v:?},\"b\":{small},\"c\":{small:e},\"d\":{}}}", state >> 20, state as i64));
        }
        for line in &lines {
            assert_eq!(scanner_disagreement(line.as_bytes()), None, "{line}");
        }
        // The common lines are taken by the scanner, not the slow path.
        assert!(scan_flat(lines[2].as_bytes()).is_some());
        assert!(scan_flat(lines[1].as_bytes()).is_some());
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
    fn truncated_last_line_and_bad_middle_lines_are_skipped_with_one_warning_each() {
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
        let mut text = b"{\"step\":0}\n{oops}\n{\"step\":2}\n".to_vec();
        for bad in 0..9 {
            text.extend_from_slice(if bad % 2 == 0 { b"[1]\n" } else { b"{\"step\":3}\n{\"step\": \xff}\n" });
        }
        std::fs::write(&path, text).unwrap();
        let mut steps = Vec::new();
        let warnings = read_objects(&path, |_, o| {
            let step = o["step"].as_u64().ok_or("no step")?;
            steps.push(step);
            Ok(())
        })
        .unwrap();
        assert_eq!(steps, [0, 2, 3, 3, 3, 3]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, Some(2));
        let text = warnings[0].to_string();
        assert!(text.contains("m.jsonl:2: 10 line(s) could not be read") && text.contains("(lines 2, 4, 6, 7, 9, ...)"), "{text}");
    }
}
