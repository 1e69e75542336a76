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

/// A source of blocks of lines, for [`crate::run::metrics`]: a JSON-lines
/// file, or the entries of a JSON array read as if each were a line.
pub trait LineBlocks {
    fn next_block(&mut self) -> Result<Option<Block>, LoadError>;
    /// Takes back a block that is no longer needed, to read the next ones into.
    fn recycle(&mut self, block: Block);
}

impl<T: LineBlocks> LineBlocks for &mut T {
    fn next_block(&mut self) -> Result<Option<Block>, LoadError> {
        (**self).next_block()
    }
    fn recycle(&mut self, block: Block) {
        (**self).recycle(block)
    }
}

impl LineBlocks for BlockReader {
    fn next_block(&mut self) -> Result<Option<Block>, LoadError> {
        BlockReader::next_block(self)
    }
    fn recycle(&mut self, block: Block) {
        BlockReader::recycle(self, block)
    }
}

/// The most bytes kept of a file around the array an [`ArrayEntries`] reads.
const MAX_OUTSIDE_BYTES: usize = 64 << 20;

/// Reads the entries of the array under one key of a JSON object file (the
/// `log_history` of a Hugging Face `trainer_state.json`) as the lines of a
/// JSON-lines file: a block of whole entries at a time, each entry one
/// [`Line`] numbered by the file line it starts on, so that a history of a
/// million entries is parsed in parallel and never held whole. The rest of
/// the file, with the array replaced by `null`, is kept in `outside`; entries
/// holding `set_aside_marker` are kept in `set_aside` instead of handed over.
pub struct ArrayEntries {
    path: std::path::PathBuf,
    file: std::fs::File,
    key: Vec<u8>,
    set_aside_marker: &'static [u8],
    phase: Phase,
    /// Bytes of an entry cut off by the end of the previous block.
    carry: Vec<u8>,
    /// The file line at the start of `carry`.
    line: usize,
    at_end: bool,
    spare: Vec<Vec<u8>>,
    pub outside: Vec<u8>,
    pub set_aside: Vec<Vec<u8>>,
    /// Whether the key was found with an array under it.
    pub found: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    Inside,
    After,
}

impl ArrayEntries {
    pub fn open(path: &Path, key: &str, set_aside_marker: &'static [u8]) -> Result<Self, LoadError> {
        let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
        Ok(ArrayEntries {
            path: path.to_path_buf(),
            file,
            key: format!("\"{key}\"").into_bytes(),
            set_aside_marker,
            phase: Phase::Before,
            carry: Vec::new(),
            line: 1,
            at_end: false,
            spare: Vec::new(),
            outside: Vec::new(),
            set_aside: Vec::new(),
            found: false,
        })
    }

    fn keep_outside(&mut self, bytes: &[u8]) -> Result<(), LoadError> {
        if self.outside.len() + bytes.len() > MAX_OUTSIDE_BYTES {
            return Err(LoadError::Import {
                path: self.path.clone(),
                message: format!("more than {} MiB outside the {} array", MAX_OUTSIDE_BYTES >> 20, String::from_utf8_lossy(&self.key)),
            });
        }
        self.outside.extend_from_slice(bytes);
        Ok(())
    }

    /// Finds the key and the `[` after it in `bytes`: the offset just past the `[`.
    fn array_start(&self, bytes: &[u8]) -> Option<Result<usize, usize>> {
        let at = memchr::memmem::find(bytes, &self.key)?;
        let mut i = at + self.key.len();
        let skip = |i: &mut usize| {
            while bytes.get(*i).is_some_and(u8::is_ascii_whitespace) {
                *i += 1;
            }
        };
        skip(&mut i);
        if bytes.get(i) != Some(&b':') {
            return if i >= bytes.len() { None } else { Some(Err(at)) };
        }
        i += 1;
        skip(&mut i);
        match bytes.get(i) {
            Some(b'[') => Some(Ok(i + 1)),
            Some(_) => Some(Err(at)),
            None => None,
        }
    }
}

impl LineBlocks for ArrayEntries {
    fn recycle(&mut self, block: Block) {
        if self.spare.len() < 2 {
            self.spare.push(block.bytes);
        }
    }

    fn next_block(&mut self) -> Result<Option<Block>, LoadError> {
        use std::io::Read;
        loop {
            if self.at_end && self.carry.is_empty() {
                return Ok(None);
            }
            let mut bytes = self.spare.pop().unwrap_or_default();
            bytes.clear();
            bytes.append(&mut self.carry);
            bytes.reserve(BLOCK_BYTES);
            let read = (&mut self.file).take(BLOCK_BYTES as u64).read_to_end(&mut bytes).map_err(|e| LoadError::io(&self.path, e))?;
            self.at_end |= read == 0;
            let mut start = 0;
            if self.phase == Phase::Before {
                match self.array_start(&bytes) {
                    Some(Ok(after)) => {
                        let key_at = memchr::memmem::find(&bytes, &self.key).unwrap_or(0);
                        self.keep_outside(&bytes[..key_at])?;
                        let key = self.key.clone();
                        self.keep_outside(&key)?;
                        self.keep_outside(b": null")?;
                        self.line += memchr::memchr_iter(b'\n', &bytes[..after]).count();
                        self.phase = Phase::Inside;
                        self.found = true;
                        start = after;
                    }
                    Some(Err(_)) | None if self.at_end => {
                        // No array under the key: the whole file is outside.
                        self.keep_outside(&bytes)?;
                        return Ok(None);
                    }
                    Some(Err(_)) | None => {
                        // Keep reading; hold back enough bytes for a key cut in two.
                        let keep = bytes.len().saturating_sub(self.key.len() + 64);
                        self.keep_outside(&bytes[..keep])?;
                        self.line += memchr::memchr_iter(b'\n', &bytes[..keep]).count();
                        self.carry = bytes[keep..].to_vec();
                        continue;
                    }
                }
            }
            if self.phase == Phase::After {
                self.keep_outside(&bytes)?;
                if self.at_end {
                    return Ok(None);
                }
                continue;
            }
            let mut block = Block { spans: Vec::new(), warnings: Vec::new(), bytes: Vec::new() };
            let (cut, ended) = self.entries(&bytes, start, &mut block);
            if ended {
                self.phase = Phase::After;
                self.keep_outside(&bytes[cut..])?;
            } else if self.at_end {
                // The file ends inside the array: the last entry is cut short.
                if cut < bytes.len() && !bytes[cut..].iter().all(|b| b.is_ascii_whitespace() || *b == b',') {
                    block.spans.push((self.line, cut..bytes.len(), false));
                }
                block.warnings.push(Warning::new(
                    &self.path,
                    None,
                    "the file ends before the list closes: it was cut short (copied while being written?); what is there is read",
                ));
            } else {
                self.carry = bytes[cut..].to_vec();
            }
            block.bytes = bytes;
            if block.spans.is_empty() && !self.at_end && !ended {
                // One entry longer than a block: keep gathering.
                self.carry = std::mem::take(&mut block.bytes)[cut..].to_vec();
                continue;
            }
            return Ok(Some(block));
        }
    }
}

impl ArrayEntries {
    /// Adds the whole entries of `bytes[start..]` to `block`: where the scan
    /// stopped (the start of an entry cut off by the block's end, or just past
    /// the array's `]`), and whether the array ended.
    fn entries(&mut self, bytes: &[u8], start: usize, block: &mut Block) -> (usize, bool) {
        let mut i = start;
        // Between entries: whitespace and commas.
        loop {
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' | b',' => {}
                    _ => break,
                }
                i += 1;
            }
            match bytes.get(i) {
                None => return (i, false),
                Some(b']') => return (i + 1, true),
                Some(_) => {}
            }
            let entry_line = self.line;
            // The common entry, a flat object: its end is the first `}` when
            // no `{` or escape comes before it and the quotes before it pair
            // up. Checked with memchr's SIMD searches, not byte by byte.
            if bytes[i] == b'{' {
                if let Some(close) = memchr::memchr(b'}', &bytes[i + 1..]).map(|j| i + 1 + j) {
                    let inside = &bytes[i + 1..close];
                    let flat = memchr::memchr2(b'{', b'\\', inside).is_none() && memchr::memchr_iter(b'"', inside).count().is_multiple_of(2);
                    if flat {
                        self.line += memchr::memchr_iter(b'\n', inside).count();
                        self.take(bytes, i..close + 1, entry_line, block);
                        i = close + 1;
                        continue;
                    }
                }
            }
            // Any other value: scan to its end, minding strings and nesting.
            let (entry_start, lines_before) = (i, self.line);
            let (mut depth, mut in_string) = (0usize, false);
            let mut end = None;
            while i < bytes.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(j) if bytes[i + j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            in_string = false;
                        }
                        None => i = bytes.len(),
                    }
                    continue;
                }
                match bytes[i] {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            // The array's own `]` after a bare value.
                            end = Some(i);
                            break;
                        }
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    b',' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    b'\n' => self.line += 1,
                    _ => {}
                }
                i += 1;
            }
            let Some(end) = end.filter(|&e| e <= bytes.len()) else {
                // Cut off by the block's end: rescanned with the next block.
                self.line = lines_before;
                return (entry_start, false);
            };
            self.take(bytes, entry_start..end, entry_line, block);
            i = end;
        }
    }

    /// Hands a whole entry over in the block, or sets it aside when it holds
    /// the marker.
    fn take(&mut self, bytes: &[u8], range: std::ops::Range<usize>, line: usize, block: &mut Block) {
        if memchr::memmem::find(&bytes[range.clone()], self.set_aside_marker).is_some() {
            self.set_aside.push(bytes[range].to_vec());
        } else {
            block.spans.push((line, range, true));
        }
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
pub fn scan_fields<'a>(bytes: &'a [u8], mut each: impl FnMut(&'a [u8], Field<'a>) -> Option<()>) -> Option<()> {
    (Scanner { bytes, at: 0 }).object(|_| None, |key, _, value| each(key, value))
}

/// [`scan_fields`] for lines that usually repeat the keys of the line
/// before: `expected(i)` is the key expected as the line's `i`-th, a key this
/// scanner gave for an earlier line. Where the line has exactly those bytes
/// there, they are compared at once instead of searched for the string's
/// end, and `each(key, true, value)` says so.
pub fn scan_fields_expecting<'a, 'k>(
    bytes: &'a [u8],
    expected: impl Fn(usize) -> Option<&'k [u8]>,
    each: impl FnMut(&'a [u8], bool, Field<'a>) -> Option<()>,
) -> Option<()> {
    (Scanner { bytes, at: 0 }).object(expected, each)
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

/// Checks [`scan_fields_expecting`] on `line`, the keys of `previous` (as
/// the scanner read them) expected: it must read what [`scan_fields`] reads.
/// Returns what differs (for tests and the fuzz target).
pub fn expecting_disagreement(previous: &[u8], line: &[u8]) -> Option<String> {
    let mut keys: Vec<&[u8]> = Vec::new();
    scan_fields(previous, |key, _| {
        keys.push(key);
        Some(())
    });
    let plain = scan_flat(line);
    let mut expecting = Vec::new();
    let scanned = scan_fields_expecting(
        line,
        |position| keys.get(position).copied(),
        |key, as_expected, value| {
            if as_expected && keys.get(expecting.len()) != Some(&key) {
                return None;
            }
            expecting.push((Cow::Borrowed(std::str::from_utf8(key).ok()?), value));
            Some(())
        },
    );
    // NaN is a value like any other here.
    let same = |a: &(Cow<'_, str>, Field<'_>), b: &(Cow<'_, str>, Field<'_>)| {
        a.0 == b.0
            && match (&a.1, &b.1) {
                (Field::Number(x), Field::Number(y)) => x.to_bits() == y.to_bits(),
                (x, y) => x == y,
            }
    };
    match (plain, scanned) {
        (None, None) => None,
        (Some(plain), Some(())) if plain.len() == expecting.len() && plain.iter().zip(&expecting).all(|(a, b)| same(a, b)) => None,
        (plain, _) => Some(format!("without expected keys {plain:?}, with them {expecting:?}")),
    }
}

/// A scanner for the common shape of a metrics line. Every method returns
/// `None` on anything it does not handle, valid JSON or not; the caller then
/// takes the general path, which also writes the error messages.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn object<'k>(
        mut self,
        expected: impl Fn(usize) -> Option<&'k [u8]>,
        mut each: impl FnMut(&'a [u8], bool, Field<'a>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            for position in 0.. {
                let (key, as_expected) = match expected(position).and_then(|key| self.string_equal_to(key)) {
                    Some(key) => (key, true),
                    None => (self.raw_string()?, false),
                };
                self.expect(b':')?;
                let value = self.value()?;
                each(key, as_expected, value)?;
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

    /// The string next if its bytes are `key`'s, a string without escapes
    /// or control characters (as [`Scanner::raw_string`] gives), else
    /// nothing taken.
    fn string_equal_to(&mut self, key: &[u8]) -> Option<&'a [u8]> {
        self.skip_whitespace();
        let start = self.at + 1;
        let end = start + key.len();
        let found = self.bytes.get(self.at..=end)?;
        (found[0] == b'"' && same_bytes(&found[1..found.len() - 1], key) && found[found.len() - 1] == b'"').then(|| {
            self.at = end + 1;
            &self.bytes[start..end]
        })
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
    /// left to it. One pass checks the grammar JSON allows and gathers the
    /// digits; a value of at most 19 digits whose mantissa and power of ten
    /// are exact as floats is one correctly rounded multiplication or
    /// division (Clinger's fast path, as the float parser's own), and only
    /// the rest goes to the float parser.
    fn number(&mut self) -> Option<Field<'a>> {
        let rest = &self.bytes[self.at..];
        let negative = *rest.first()? == b'-';
        let int_start = negative as usize;
        let mut mantissa = 0u64;
        let mut end = digits(rest, int_start, &mut mantissa);
        let int_len = end - int_start;
        // No digit, or a leading zero ("01").
        if int_len == 0 || (int_len > 1 && rest[int_start] == b'0') {
            return None;
        }
        let mut frac_len = 0;
        if rest.get(end) == Some(&b'.') {
            let frac_start = end + 1;
            end = digits(rest, frac_start, &mut mantissa);
            frac_len = end - frac_start;
            if frac_len == 0 {
                return None;
            }
        }
        let mut exponent = 0i64;
        let has_exponent = matches!(rest.get(end), Some(b'e' | b'E'));
        if has_exponent {
            end += 1;
            let exponent_negative = rest.get(end) == Some(&b'-');
            end += matches!(rest.get(end), Some(b'-' | b'+')) as usize;
            let exponent_start = end;
            while let Some(&d @ b'0'..=b'9') = rest.get(end) {
                // Beyond any float's range either way; only the sign matters.
                exponent = (exponent * 10 + i64::from(d - b'0')).min(1 << 20);
                end += 1;
            }
            if end == exponent_start {
                return None;
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        self.at += end;
        let text = &rest[..end];
        let exact_mantissa = int_len + frac_len <= 19;
        if frac_len == 0 && !has_exponent && !negative {
            let exact = if exact_mantissa {
                Some(mantissa)
            } else {
                text.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            };
            if let Some(v) = exact {
                return Some(Field::Unsigned(v));
            }
        }
        let power = exponent - frac_len as i64;
        if exact_mantissa && mantissa <= 1 << 53 && power.abs() <= 22 {
            let magnitude = if power < 0 { mantissa as f64 / POWERS_OF_TEN[(-power) as usize] } else { mantissa as f64 * POWERS_OF_TEN[power as usize] };
            return Some(Field::Number(if negative { -magnitude } else { magnitude }));
        }
        let value: f64 = fast_float2::parse(text).ok()?;
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

/// Whether two slices hold the same bytes. Keys of metrics are short: up to
/// 16 bytes are compared as two overlapping words, without a call.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    let word = |s: &[u8], at: usize| s.get(at..at + 8).and_then(|w| w.try_into().ok()).map(u64::from_le_bytes);
    let half = |s: &[u8], at: usize| s.get(at..at + 4).and_then(|w| w.try_into().ok()).map(u32::from_le_bytes);
    n == b.len()
        && match n {
            0..=3 => a == b,
            4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
            8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
            _ => a == b,
        }
}

/// The powers of ten that are exact as `f64`.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Reads the ASCII digits of `bytes` from `start` into `mantissa` (wrapping
/// past 19 digits: the caller counts them) and returns where they end. Eight
/// digits at a time where eight bytes are left.
fn digits(bytes: &[u8], start: usize, mantissa: &mut u64) -> usize {
    let mut at = start;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        match eight_digits(word) {
            Some(value) => {
                *mantissa = mantissa.wrapping_mul(100_000_000).wrapping_add(value);
                at += 8;
            }
            None => break,
        }
    }
    while let Some(&d @ b'0'..=b'9') = bytes.get(at) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        at += 1;
    }
    at
}

/// The value of eight ASCII digits read as a little-endian word, or `None`
/// if any byte is not a digit (the usual SWAR check and reduction: pairs,
/// then quads, then the eight).
fn eight_digits(word: u64) -> Option<u64> {
    let low = word.wrapping_sub(0x3030_3030_3030_3030);
    let high = word.wrapping_add(0x4646_4646_4646_4646);
    if (low | high) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    let pairs = low.wrapping_mul(10).wrapping_add(low >> 8) & 0x00ff_00ff_00ff_00ff;
    let quads = pairs.wrapping_mul(100).wrapping_add(pairs >> 16) & 0x0000_ffff_0000_ffff;
    Some(quads.wrapping_mul(10_000).wrapping_add(quads >> 32) & 0xffff_ffff)
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
    fn same_bytes_is_slice_equality() {
        for n in 0usize..40 {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same_bytes(&a, &b), "length {n}, differing at {at}");
            }
        }
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
            r#"{"a":0.49999999999999999,"b":0.50000000000000001,"c":0.49999999999999997,"d":0.99999999999999999,"e":1.9999999999999999,"f":0.1000000000000000055}"#,
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
            // Short and long decimals around the exact fast path's limits (19
            // digits, mantissa 2^53, powers of ten up to 22), runs of eight
            // digits cut anywhere, leading zeros after the point.
            let digits = (state % 24) as u32;
            let mantissa = (state >> 8) % 10u64.pow(digits.min(19));
            let power = (state >> 40) % 60;
            let sign = if state & 1 == 0 { "-" } else { "" };
            let places = (state >> 50) as usize % 26;
            lines.push(format!(
                "{{\"m\":{sign}{mantissa}e{}, \"p\":{sign}0.{}{mantissa},\"q\":{sign}{mantissa}.{mantissa}E+{},\"r\":{small:.places$}}}",
                power as i64 - 30,
                "0".repeat(places),
                power / 3
            ));
        }
        for line in &lines {
            assert_eq!(scanner_disagreement(line.as_bytes()), None, "{line}");
        }
        // Every line read with the keys of every other expected.
        let shapes = &lines[..30];
        for previous in shapes {
            for line in shapes.iter().chain(&lines[30..60]) {
                assert_eq!(expecting_disagreement(previous.as_bytes(), line.as_bytes()), None, "{previous} then {line}");
            }
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

    /// The entries of an array, read a block at a time, are the array's
    /// elements as a JSON parser reads them: across block boundaries, with
    /// nested values, braces and escapes in strings, indented or compact, and
    /// the rest of the file kept with the array as null.
    #[test]
    fn array_entries_are_the_elements_of_the_array() {
        let mut elements = Vec::new();
        for i in 0..200_000u64 {
            elements.push(match i % 500 {
                7 => format!(r#"{{"step": {i}, "note": "a }} in a string, and a \" quote", "loss": 1.5}}"#),
                8 => format!(r#"{{"step": {i}, "nested": {{"a": [1, {{"b": 2}}]}}, "loss": 2.5}}"#),
                9 => "[1, 2]".to_string(),
                10 => "3".to_string(),
                11 => format!(r#"{{"step": {i}, "train_runtime": 1.0}}"#),
                _ => format!("{{\n      \"loss\": {}.25,\n      \"step\": {i}\n    }}", i % 7),
            });
        }
        let text = format!("{{\n  \"epoch\": 3.0,\n  \"log_history\": [\n    {}\n  ],\n  \"max_steps\": 200000\n}}\n", elements.join(",\n    "));
        assert!(text.len() > 2 * BLOCK_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trainer_state.json");
        std::fs::write(&path, &text).unwrap();
        let file_lines: Vec<&str> = text.lines().collect();
        let mut reader = ArrayEntries::open(&path, "log_history", b"\"train_runtime\"").unwrap();
        let mut read = Vec::new();
        while let Some(block) = reader.next_block().unwrap() {
            for line in block.lines() {
                assert!(line.complete);
                // Each entry starts on the line the reader numbers it with.
                assert_eq!(file_lines[line.number - 1].trim_start().as_bytes()[0], line.bytes[0]);
                read.push(parse_value(line.bytes).unwrap());
            }
            reader.recycle(block);
        }
        let expected: Vec<Value> = elements.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        let kept: Vec<&Value> = expected.iter().filter(|v| v.get("train_runtime").is_none()).collect();
        assert_eq!(read.len(), kept.len());
        assert!(read.iter().zip(&kept).all(|(a, b)| a == *b));
        assert_eq!(reader.set_aside.len(), 400);
        let outside: Value = serde_json::from_slice(&reader.outside).unwrap();
        assert_eq!(outside, serde_json::json!({"epoch": 3.0, "log_history": null, "max_steps": 200000}));
        // A file cut off inside an entry: the entry is handed over as cut
        // short; cut off between entries, the list is said to be unclosed.
        let inside_entry = text[..text.len() / 2].rfind("\"loss\"").unwrap() + 3;
        let between = text[..text.len() / 2].rfind(",\n").unwrap() + 1;
        for (cut, last_complete) in [(inside_entry, false), (between, true)] {
            std::fs::write(&path, &text[..cut]).unwrap();
            let mut reader = ArrayEntries::open(&path, "log_history", b"\"train_runtime\"").unwrap();
            let (mut last, mut warned) = (None, false);
            while let Some(block) = reader.next_block().unwrap() {
                last = block.lines().last().map(|l| l.complete).or(last);
                warned |= block.warnings.iter().any(|w| w.message.contains("cut short"));
                reader.recycle(block);
            }
            assert_eq!((last, warned), (Some(last_complete), true));
        }
    }
}
