//! `metrics.jsonl` into a polars DataFrame.
//!
//! Polars' own NDJSON reader fails on bare NaN tokens and on a truncated last
//! line, and infers its schema from the first lines (so a validation metric
//! that first appears after thousands of steps is lost). Lines are therefore
//! parsed one by one ([`crate::jsonl`]) into columns, and the frame is built
//! from those columns.
//!
//! Rows come out one per step, in increasing step order: lines that repeat the
//! previous step are merged into its row (a training line and a validation line
//! of the same step), and a step that goes back (a run resumed from an earlier
//! checkpoint) drops the rows it supersedes.

use crate::error::{LoadError, Warning};
use crate::jsonl;
use polars::prelude::{Column, DataFrame};
use jsonl::Field;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// The name of the step column of [`MetricsTable::frame`].
pub const STEP: &str = "step";
/// Distinct metric names kept; a file with more (a hostile or mistaken one,
/// logging a value per tensor element) keeps the first ones and says so.
const MAX_COLUMNS: usize = 4096;

/// The metrics of a run.
#[derive(Debug, Clone)]
pub struct MetricsTable {
    /// `step` (UInt64) and one Float64 column per scalar metric recorded on
    /// every row, sorted by name. NaN and infinities are kept as floats.
    pub frame: DataFrame,
    /// Metrics missing from some rows, as `(step, value)` points: a table
    /// column per key would cost every row for a key seen once, and a file
    /// could name thousands of such keys.
    pub sparse: BTreeMap<String, Vec<(u64, f64)>>,
    /// List-valued metrics such as `label_counts` and `pred_counts`: per key,
    /// `(step, counts)` in step order.
    pub counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>,
    /// The step column, kept as a plain vector: every series is read against it.
    steps: Vec<u64>,
    /// For a series an importer stored under a key of docs/FORMAT.md, the
    /// name the source gave it (`loss` from `Loss/Train_Epoch`).
    pub origins: BTreeMap<String, String>,
}

impl MetricsTable {
    pub fn empty() -> Self {
        let steps: Vec<u64> = Vec::new();
        let frame = DataFrame::new(0, vec![Column::new(STEP.into(), steps)]).unwrap_or_default();
        MetricsTable::new(frame, BTreeMap::new(), BTreeMap::new())
    }

    /// A table from in-memory series (for writers and tests): every series is
    /// `(step, value)` points; steps are merged and sorted.
    pub fn from_series(series: &[(&str, Vec<(u64, f64)>)], counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>) -> Self {
        Self::from_owned_series(series.iter().map(|(name, points)| (name.to_string(), points.clone())).collect(), counts)
    }

    /// Like [`MetricsTable::from_series`], taking the series: points are
    /// put in step order, and of two at the same step the later one is kept.
    /// A series with a value at every step becomes a column of the frame,
    /// the others stay points (no column is allocated for them).
    pub fn from_owned_series(mut series: Vec<(String, Vec<(u64, f64)>)>, counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>) -> Self {
        for (_, points) in &mut series {
            points.sort_by_key(|p| p.0);
            // The later of two points at one step wins: keep the last of each run.
            let mut kept: Vec<(u64, f64)> = Vec::with_capacity(points.len());
            for &(step, value) in points.iter() {
                match kept.last_mut() {
                    Some(last) if last.0 == step => last.1 = value,
                    _ => kept.push((step, value)),
                }
            }
            *points = kept;
        }
        let mut steps: Vec<u64> = series.iter().flat_map(|(_, p)| p.iter().map(|(s, _)| *s)).collect();
        steps.extend(counts.values().flat_map(|c| c.iter().map(|(s, _)| *s)));
        steps.sort_unstable();
        steps.dedup();
        let mut columns = vec![Column::new(STEP.into(), steps.clone())];
        let mut sparse = BTreeMap::new();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, points) in series {
            if points.len() == steps.len() {
                columns.push(Column::new(name.as_str().into(), points.into_iter().map(|(_, v)| v).collect::<Vec<f64>>()));
            } else {
                sparse.insert(name, points);
            }
        }
        let frame = DataFrame::new(steps.len(), columns).unwrap_or_default();
        MetricsTable::new(frame, sparse, counts)
    }

    fn new(frame: DataFrame, sparse: BTreeMap<String, Vec<(u64, f64)>>, counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>) -> Self {
        let steps = match frame.column(STEP).and_then(|c| c.u64()) {
            Ok(steps) => steps.iter().flatten().collect(),
            Err(_) => Vec::new(),
        };
        MetricsTable { frame, sparse, counts, steps, origins: BTreeMap::new() }
    }

    /// Stores a series under another name, in place (no copy of its
    /// values, and every row kept); `false` when there is no such series or
    /// the new name is taken.
    pub fn rename_series(&mut self, from: &str, to: &str) -> bool {
        if from == STEP || to == STEP || self.names().iter().any(|n| n == to) {
            return false;
        }
        if let Some(points) = self.sparse.remove(from) {
            self.sparse.insert(to.to_string(), points);
            return true;
        }
        self.frame.rename(from, to.into()).is_ok()
    }

    /// Adds a series of points at steps the table already has (a sum of
    /// its series), kept as points: no other series is copied. `false` when
    /// the name is taken.
    pub fn insert_series(&mut self, name: &str, points: Vec<(u64, f64)>) -> bool {
        if name == STEP || self.names().iter().any(|n| n == name) {
            return false;
        }
        self.sparse.insert(name.to_string(), points);
        true
    }

    pub fn rows(&self) -> usize {
        self.frame.height()
    }

    pub fn steps(&self) -> &[u64] {
        &self.steps
    }

    /// Names of the scalar metrics, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .frame
            .get_column_names()
            .into_iter()
            .filter(|name| name.as_str() != STEP)
            .map(|name| name.to_string())
            .chain(self.sparse.keys().cloned())
            .collect();
        names.sort();
        names
    }

    /// Counts over one scalar metric, read from its column without building
    /// the series: for summaries and the non-finite check of every metric.
    pub fn facts(&self, name: &str) -> Option<MetricFacts> {
        let mut facts = MetricFacts::default();
        let mut add = |step: u64, v: f64| {
            facts.count += 1;
            if v.is_finite() {
                facts.last_finite = Some(v);
            } else {
                facts.nonfinite += 1;
                facts.first_nonfinite.get_or_insert((step, v));
            }
        };
        match self.sparse.get(name) {
            Some(points) => points.iter().for_each(|&(step, v)| add(step, v)),
            None => {
                // Table columns have a value on every row: scan the slice.
                let values = self.frame.column(name).ok()?.f64().ok()?.cont_slice().ok()?;
                let first_bad = values.iter().position(|v| !v.is_finite());
                facts.count = values.len();
                if let Some(i) = first_bad {
                    facts.first_nonfinite = Some((self.steps[i], values[i]));
                    facts.nonfinite = values[i..].iter().filter(|v| !v.is_finite()).count();
                }
                facts.last_finite = values.iter().rev().find(|v| v.is_finite()).copied();
            }
        }
        Some(facts)
    }

    /// The recorded `(step, value)` points of one scalar metric, nulls left out.
    pub fn series(&self, name: &str) -> Option<Vec<(u64, f64)>> {
        if let Some(points) = self.sparse.get(name) {
            return Some(points.clone());
        }
        let values = self.frame.column(name).ok()?.f64().ok()?;
        let steps = self.steps.iter().copied();
        // Without nulls the values are one contiguous slice: zip it directly.
        if let Ok(dense) = values.cont_slice() {
            return Some(steps.zip(dense.iter().copied()).collect());
        }
        Some(steps.zip(values.iter()).filter_map(|(step, value)| value.map(|v| (step, v))).collect())
    }
}

/// One metric's values as rows come in: dense while the key has been on
/// every row from the first (the usual case: 8 bytes a value, handed to polars
/// without a copy), sparse from the first row that lacks it, so that a key
/// seen once costs one entry, not one per row.
enum ColumnValues {
    /// The values of rows `0..len`.
    Dense(Vec<f64>),
    /// Rows with a value, in increasing order, and their values.
    Sparse { rows: Vec<usize>, values: Vec<f64> },
}

impl Default for ColumnValues {
    fn default() -> Self {
        ColumnValues::Dense(Vec::new())
    }
}

impl ColumnValues {
    /// Sets the value of `row`, the last row or a later one; a later line of
    /// the same step wins.
    fn set(&mut self, row: usize, value: f64) {
        if let ColumnValues::Dense(values) = self {
            if row + 1 == values.len() {
                values[row] = value;
                return;
            }
            if row == values.len() {
                values.push(value);
                return;
            }
            *self = ColumnValues::Sparse { rows: (0..values.len()).collect(), values: std::mem::take(values) };
        }
        if let ColumnValues::Sparse { rows, values } = self {
            match (rows.last(), values.last_mut()) {
                (Some(&last), Some(v)) if last == row => *v = value,
                _ => {
                    rows.push(row);
                    values.push(value);
                }
            }
        }
    }

    /// Keeps the values of rows `0..keep`.
    fn truncate(&mut self, keep: usize) {
        match self {
            ColumnValues::Dense(values) => values.truncate(keep.min(values.len())),
            ColumnValues::Sparse { rows, values } => {
                let cut = rows.partition_point(|&row| row < keep);
                rows.truncate(cut);
                values.truncate(cut);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            ColumnValues::Dense(values) => values.is_empty(),
            ColumnValues::Sparse { values, .. } => values.is_empty(),
        }
    }

    /// A polars column when every one of the `height` rows has a value, else
    /// the `(step, value)` points there are.
    fn finish(self, name: &str, steps: &[u64]) -> Result<Column, Vec<(u64, f64)>> {
        use polars::prelude::{Float64Chunked, IntoColumn};
        match self {
            ColumnValues::Dense(values) if values.len() == steps.len() => Ok(Float64Chunked::from_vec(name.into(), values).into_column()),
            ColumnValues::Dense(values) => Err(steps.iter().copied().zip(values).collect()),
            ColumnValues::Sparse { rows, values } => Err(rows.into_iter().map(|row| steps[row]).zip(values).collect()),
        }
    }
}

/// The lines of one parsing task, as the builder takes them: numeric values
/// of metrics already in the table come with their column; every other field
/// keeps its key, for the builder to resolve in line order. Nothing borrows
/// the file's bytes, so the next block can be parsed while this one is added;
/// and the lines share flat vectors, because freeing many small allocations
/// made on another thread contends for the allocator's locks.
#[derive(Default)]
struct ResolvedChunk {
    lines: Vec<ResolvedLine>,
    /// `(column, value)` of every line in order; each line has a range.
    known: Vec<(usize, f64)>,
    /// Keys new to the table, counts, text and other values, likewise.
    other: Vec<(String, Field<'static>)>,
}

impl ResolvedChunk {
    /// Closes a line whose values were pushed since the previous one.
    fn end_line(&mut self, line: &jsonl::Line<'_>, step: Result<Option<u64>, String>) {
        self.lines.push(ResolvedLine {
            number: line.number,
            complete: line.complete,
            step,
            known_end: self.known.len(),
            other_end: self.other.len(),
        });
    }
}

struct ResolvedLine {
    number: usize,
    complete: bool,
    /// The line's step (`None`: it has none), or why the line did not parse.
    step: Result<Option<u64>, String>,
    /// Where the line's values end in `known` and `other`.
    known_end: usize,
    other_end: usize,
}

/// Resolves lines against the metric names known when their block began.
/// Lines usually repeat their keys in the same order, so the scanner first
/// compares each key with the one at its position on the previous line: a
/// flat line of known metrics costs a byte comparison per key and a number
/// parse per value, and allocates nothing.
struct Resolver<'n> {
    names: &'n BTreeMap<String, usize>,
    /// The raw key and column of each position of the last line that had a
    /// known metric there.
    recent: Vec<Option<(Box<[u8]>, usize)>>,
    /// Changes to `recent` found on the line being scanned, which reads it.
    changed: Vec<(usize, Box<[u8]>, usize)>,
    keys: KeyNames,
}

/// Whose names the keys of the lines are: the format's, or those of a tool
/// whose entries are otherwise metrics lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNames {
    Native,
    /// Hugging Face `Trainer`'s `log_history`: `learning_rate` is `lr`, and
    /// evaluation metrics `eval_X` are `val_X`.
    HfTrainer,
}

impl KeyNames {
    fn format_key(self, key: &[u8]) -> Cow<'_, [u8]> {
        match self {
            KeyNames::Native => Cow::Borrowed(key),
            KeyNames::HfTrainer => match key {
                b"learning_rate" => Cow::Borrowed(b"lr"),
                _ => match key.strip_prefix(b"eval_") {
                    Some(rest) => Cow::Owned([b"val_".as_slice(), rest].concat()),
                    None => Cow::Borrowed(key),
                },
            },
        }
    }
}

/// The step of the line being resolved: the value of its first "step" key.
#[derive(Default)]
struct StepField {
    seen: bool,
    step: Option<u64>,
}

impl Resolver<'_> {
    fn lines(&mut self, lines: &[jsonl::Line<'_>]) -> ResolvedChunk {
        // Lines usually carry every known metric: room for them up front, so
        // the values are not copied over and over as the vector grows.
        let width = self.names.len().min(64);
        let mut chunk = ResolvedChunk { lines: Vec::with_capacity(lines.len()), known: Vec::with_capacity(lines.len() * width), ..Default::default() };
        for line in lines {
            let (known_start, other_start) = (chunk.known.len(), chunk.other.len());
            let mut step = StepField::default();
            let mut position = 0;
            let recent = std::mem::take(&mut self.recent);
            let scanned = jsonl::scan_fields_expecting(
                line.bytes,
                |position| recent.get(position)?.as_ref().map(|(key, _)| &**key),
                |key, as_expected, value| {
                    let known = as_expected.then(|| recent[position].as_ref().map(|(_, index)| *index)).flatten();
                    self.field(&mut chunk, &mut step, position, key, known, value)?;
                    position += 1;
                    Some(())
                },
            );
            self.recent = recent;
            let step = match scanned {
                Some(()) => Ok(step.step),
                None => {
                    // The general path, from a clean start. Its keys are
                    // unescaped, not the line's bytes: none is expected later
                    // (nor those the failed scan noted).
                    chunk.known.truncate(known_start);
                    chunk.other.truncate(other_start);
                    let mut step = StepField::default();
                    let parsed = jsonl::parse_fields(line.bytes).map(|fields| {
                        for (position, (key, value)) in fields.into_iter().enumerate() {
                            self.field(&mut chunk, &mut step, position, key.as_bytes(), None, value);
                        }
                        step.step
                    });
                    self.changed.clear();
                    parsed
                }
            };
            for (position, key, index) in self.changed.drain(..) {
                if self.recent.len() <= position {
                    self.recent.resize(position + 1, None);
                }
                self.recent[position] = Some((key, index));
            }
            chunk.end_line(line, step);
        }
        chunk
    }

    /// Takes one field; `known` is its column where the key is the one the
    /// position had on an earlier line. `None` for a key that is not UTF-8.
    fn field(&mut self, chunk: &mut ResolvedChunk, step: &mut StepField, position: usize, raw_key: &[u8], known: Option<usize>, value: Field<'_>) -> Option<()> {
        let plain = match value {
            Field::Number(v) => Some(v),
            Field::Unsigned(v) => Some(v as f64),
            _ => None,
        };
        if let (Some(v), Some(index)) = (plain, known) {
            chunk.known.push((index, v));
            return Some(());
        }
        let key = self.keys.format_key(raw_key);
        let key: &[u8] = &key;
        if key == STEP.as_bytes() {
            if !step.seen {
                step.seen = true;
                step.step = step_of(&value);
            }
            return Some(());
        }
        let key = std::str::from_utf8(key).ok()?;
        match plain.and_then(|v| Some((*self.names.get(key)?, v))) {
            Some((index, v)) => {
                self.changed.push((position, raw_key.into(), index));
                chunk.known.push((index, v));
            }
            None => chunk.other.push((key.to_string(), value.into_owned())),
        }
        Some(())
    }
}

/// What [`MetricsTable::facts`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricFacts {
    /// Steps that recorded a value.
    pub count: usize,
    pub nonfinite: usize,
    /// The first NaN or infinite value, with its step.
    pub first_nonfinite: Option<(u64, f64)>,
    pub last_finite: Option<f64>,
}

/// Columns under construction, one row per step.
#[derive(Default)]
struct Builder {
    steps: Vec<u64>,
    /// Column index by metric name.
    names: BTreeMap<String, usize>,
    columns: Vec<ColumnValues>,
    /// Keys beyond `MAX_COLUMNS`, ignored: (count, first line).
    overflow: Option<(usize, usize)>,
    counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>,
    ignored_keys: BTreeMap<String, usize>,
    resumes: Vec<(usize, u64, u64)>,
    stepless: Vec<usize>,
    unreadable: jsonl::SkippedLines,
}

impl Builder {
    fn add_line(
        &mut self,
        line: usize,
        step: Option<u64>,
        known: &[(usize, f64)],
        other: impl Iterator<Item = (String, Field<'static>)>,
    ) {
        let Some(step) = step else {
            self.stepless.push(line);
            return;
        };
        let row = match self.steps.last() {
            Some(&last) if last == step => self.steps.len() - 1,
            Some(&last) if step < last => {
                self.resumes.push((line, last, step));
                self.truncate_from(step);
                self.push_row(step)
            }
            _ => self.push_row(step),
        };
        for &(index, value) in known {
            self.columns[index].set(row, value);
        }
        for (key, value) in other {
            match value {
                Field::Counts(counts) => {
                    let series = self.counts.entry(key).or_default();
                    match series.last_mut() {
                        Some((s, c)) if *s == step => *c = counts,
                        _ => series.push((step, counts)),
                    }
                    continue;
                }
                Field::Other => {
                    self.ignored_keys.entry(key).or_insert(line);
                    continue;
                }
                _ => {}
            }
            let number = value.number();
            if number.is_none() && !matches!(&value, Field::Null) && !is_missing_marker(&value) {
                self.ignored_keys.entry(key.clone()).or_insert(line);
            }
            let Some(number) = number else { continue };
            let Some(index) = self.column_index(&key, line) else { continue };
            self.columns[index].set(row, number);
        }
    }

    /// The column of `key`, created if new; `None` past `MAX_COLUMNS` keys.
    fn column_index(&mut self, key: &str, line: usize) -> Option<usize> {
        match self.names.get(key) {
            Some(&index) => Some(index),
            None if self.columns.len() >= MAX_COLUMNS => {
                let (count, _) = self.overflow.get_or_insert((0, line));
                *count += 1;
                None
            }
            None => {
                self.columns.push(ColumnValues::default());
                self.names.insert(key.to_string(), self.columns.len() - 1);
                Some(self.columns.len() - 1)
            }
        }
    }

    /// Adds resolved lines in order; a line that did not parse is skipped.
    fn add_chunk(&mut self, path: &Path, chunk: ResolvedChunk, warnings: &mut Vec<Warning>) {
        let mut other = chunk.other.into_iter();
        let (mut known_start, mut other_start) = (0, 0);
        for line in chunk.lines {
            let known = &chunk.known[known_start..line.known_end];
            let mut others = other.by_ref().take(line.other_end - other_start);
            match line.step {
                Ok(step) => self.add_line(line.number, step, known, others.by_ref()),
                Err(message) => self.unreadable.skip(path, line.number, line.complete, message, warnings),
            }
            // What a line without a step left unread.
            others.for_each(drop);
            (known_start, other_start) = (line.known_end, line.other_end);
        }
    }

    fn push_row(&mut self, step: u64) -> usize {
        self.steps.push(step);
        self.steps.len() - 1
    }

    /// Drops every row at or after `step` (rows are in increasing step order).
    fn truncate_from(&mut self, step: u64) {
        let keep = self.steps.partition_point(|&s| s < step);
        self.steps.truncate(keep);
        for column in self.columns.iter_mut() {
            column.truncate(keep);
        }
        for series in self.counts.values_mut() {
            series.retain(|(s, _)| *s < step);
        }
    }

    fn finish(mut self, path: &Path, warnings: &mut Vec<Warning>) -> Result<MetricsTable, LoadError> {
        std::mem::take(&mut self.unreadable).finish(path, warnings);
        let warn = |line: Option<usize>, message: String| Warning::new(path, line, message);
        if let Some(&first) = self.stepless.first() {
            warnings.push(warn(
                Some(first),
                format!(
                    "{} line(s) without a non-negative integer \"step\" were skipped (first here)",
                    self.stepless.len()
                ),
            ));
        }
        for &(line, from, to) in &self.resumes {
            warnings.push(warn(
                Some(line),
                format!("step goes back from {from} to {to} (a resumed run?); the earlier rows from step {to} on were replaced"),
            ));
        }
        for (key, line) in &self.ignored_keys {
            warnings.push(warn(Some(*line), format!("values of {key:?} that are not numbers were ignored (first here)")));
        }
        if let Some((count, line)) = self.overflow {
            warnings.push(warn(
                Some(line),
                format!("more than {MAX_COLUMNS} metric names: {count} values of further names were ignored (first here)"),
            ));
        }
        let height = self.steps.len();
        let mut columns = Vec::new();
        let mut sparse = BTreeMap::new();
        for (name, index) in &self.names {
            // Taken one at a time, so that memory holds one copy of the values.
            let values = std::mem::take(&mut self.columns[*index]);
            if !values.is_empty() {
                match values.finish(name, &self.steps) {
                    Ok(column) => columns.push(column),
                    Err(points) => {
                        sparse.insert(name.clone(), points);
                    }
                }
            }
        }
        columns.insert(0, Column::new(STEP.into(), self.steps));
        let frame = DataFrame::new(height, columns).map_err(|e| LoadError::Line {
            path: path.to_path_buf(),
            line: 0,
            message: format!("could not build the metrics table: {e}"),
        })?;
        Ok(MetricsTable::new(frame, sparse, self.counts))
    }
}

/// A step is a non-negative integer; `12.0` is accepted as 12.
fn step_of(value: &Field<'_>) -> Option<u64> {
    match value {
        Field::Unsigned(step) => Some(*step),
        Field::Number(f) => whole_number(*f),
        _ => None,
    }
}

/// A non-negative whole number as a step or count (`12.0` is 12).
pub(crate) fn whole_number(value: f64) -> Option<u64> {
    (value >= 0.0 && value.fract() == 0.0 && value < u64::MAX as f64).then_some(value as u64)
}

fn is_missing_marker(value: &Field<'_>) -> bool {
    matches!(value, Field::Text(t) if matches!(t.trim(), "" | "NA" | "N/A" | "null" | "None" | "-"))
}

/// Lines parsed by one task: enough to spread a block over the cores.
const LINES_PER_TASK: usize = 512;

/// Loads `metrics.jsonl`; the warnings say what was skipped or repaired.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<MetricsTable, LoadError> {
    let reader = jsonl::BlockReader::open(path)?;
    load_blocks(path, reader, Builder::default(), warnings, |lines, names| {
        lines.par_chunks(LINES_PER_TASK).map(|chunk| Resolver { names, recent: Vec::new(), changed: Vec::new(), keys: KeyNames::Native }.lines(chunk)).collect()
    })
}

/// Loads lines of metrics whose keys are named as `keys` says, from any
/// source of line blocks (the entries of a `trainer_state.json`, say).
pub fn load_lines(path: &Path, source: impl jsonl::LineBlocks + Send, keys: KeyNames, warnings: &mut Vec<Warning>) -> Result<MetricsTable, LoadError> {
    load_blocks(path, source, Builder::default(), warnings, |lines, names| {
        lines.par_chunks(LINES_PER_TASK).map(|chunk| Resolver { names, recent: Vec::new(), changed: Vec::new(), keys }.lines(chunk)).collect()
    })
}

/// Loads a CSV file of one row per logging call, the step in column
/// `step_column` and the metric of each other column named by `names`
/// (`None`: left out). Rows that share a step are merged, and a step that
/// goes back is a resume, as in `metrics.jsonl`. The first line is the header.
pub fn load_csv(path: &Path, step_column: usize, names: &[Option<String>], warnings: &mut Vec<Warning>) -> Result<MetricsTable, LoadError> {
    let mut builder = Builder::default();
    // Every column is known from the header on, so rows resolve without looking names up.
    let columns: Vec<Option<usize>> = names.iter().map(|n| n.as_ref().and_then(|n| builder.column_index(n, 1))).collect();
    let reader = jsonl::BlockReader::open(path)?;
    load_blocks(path, reader, builder, warnings, |lines, _| {
        lines.par_chunks(LINES_PER_TASK).map(|chunk| csv_rows(chunk, step_column, names, &columns)).collect()
    })
}

/// Rows of a CSV file as the builder takes lines. A row with a quote goes
/// through the csv crate; others are split at commas.
fn csv_rows(lines: &[jsonl::Line<'_>], step_column: usize, names: &[Option<String>], columns: &[Option<usize>]) -> ResolvedChunk {
    let mut chunk = ResolvedChunk { lines: Vec::with_capacity(lines.len()), known: Vec::with_capacity(lines.len() * columns.len()), ..Default::default() };
    let mut quoted = csv::StringRecord::new();
    for line in lines.iter().filter(|l| l.number > 1) {
        let mut step: Result<Option<u64>, String> = Ok(None);
        let mut add = |i: usize, cell: &[u8], chunk: &mut ResolvedChunk| {
            let cell = cell.trim_ascii();
            if cell.is_empty() {
                return;
            }
            if i == step_column {
                step = match fast_float2::parse::<f64, _>(cell) {
                    Ok(v) => Ok(step_of(&Field::Number(v))),
                    Err(_) => Err(format!("step {:?} is not a number", String::from_utf8_lossy(cell))),
                };
                return;
            }
            let Some(Some(column)) = columns.get(i) else { return };
            match fast_float2::parse::<f64, _>(cell) {
                Ok(v) => chunk.known.push((*column, v)),
                Err(_) => {
                    let text = String::from_utf8_lossy(cell).into_owned();
                    let value = match jsonl::text_number(&text) {
                        Some(v) => Field::Number(v),
                        None => Field::Text(Cow::Owned(text)),
                    };
                    if let Some(Some(name)) = names.get(i) {
                        chunk.other.push((name.clone(), value));
                    }
                }
            }
        };
        if memchr::memchr(b'"', line.bytes).is_some() {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line.bytes);
            if reader.read_record(&mut quoted).unwrap_or(false) {
                for (i, cell) in quoted.iter().enumerate() {
                    add(i, cell.as_bytes(), &mut chunk);
                }
            }
        } else {
            for (i, cell) in line.bytes.split(|&b| b == b',').enumerate() {
                add(i, cell, &mut chunk);
            }
        }
        chunk.end_line(line, step);
    }
    chunk
}

/// The pipeline every source goes through: each block's lines are parsed in
/// parallel while the previous block's are added to the table, in order
/// (rows depend on the order: merged and resumed steps). Parsing resolves
/// names against those known before.
fn load_blocks<S, P>(path: &Path, mut reader: S, mut builder: Builder, warnings: &mut Vec<Warning>, parse: P) -> Result<MetricsTable, LoadError>
where
    S: jsonl::LineBlocks + Send,
    P: Fn(&[jsonl::Line<'_>], &BTreeMap<String, usize>) -> Vec<ResolvedChunk> + Sync,
{
    let mut names: BTreeMap<String, usize> = builder.names.clone();
    let mut previous: Vec<ResolvedChunk> = Vec::new();
    let mut current = reader.next_block()?;
    while let Some(mut block) = current.take() {
        warnings.append(&mut block.warnings);
        let lines = block.lines();
        let known = &names;
        // Three things at once: the previous block is added, the next one
        // read, this one parsed (on whatever cores the first two leave).
        let (next, parsed) = rayon::join(
            || {
                for chunk in std::mem::take(&mut previous) {
                    builder.add_chunk(path, chunk, warnings);
                }
                reader.next_block()
            },
            || parse(&lines, known),
        );
        current = next?;
        previous = parsed;
        drop(lines);
        reader.recycle(block);
        if builder.names.len() != names.len() {
            names = builder.names.clone();
        }
    }
    for chunk in previous {
        builder.add_chunk(path, chunk, warnings);
    }
    builder.finish(path, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> (MetricsTable, Vec<Warning>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut warnings = Vec::new();
        let table = load(&path, &mut warnings).unwrap();
        (table, warnings)
    }

    #[test]
    fn late_keys_type_drift_and_merged_steps() {
        let mut text = String::new();
        for step in 0..5000 {
            text.push_str(&format!("{{\"step\":{step},\"loss\":{}}}\n", if step % 2 == 0 { "1".to_string() } else { format!("{}.5", step % 3) }));
        }
        text.push_str("{\"step\":4999,\"val_loss\":\"0.25\",\"label_counts\":[3,4]}\n");
        let (table, warnings) = load_text(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(table.rows(), 5000);
        assert_eq!(table.names(), ["loss", "val_loss"]);
        assert_eq!(table.series("val_loss").unwrap(), [(4999, 0.25)]);
        assert_eq!(table.series("loss").unwrap()[1], (1, 1.5));
        assert_eq!(table.counts["label_counts"], [(4999, vec![3, 4])]);
    }

    #[test]
    fn metrics_missing_from_some_rows_are_kept_as_points() {
        // "acc" is on every row until step 2, then missing, then back; "lr" stops early.
        let (table, _) = load_text(
            "{\"step\":0,\"acc\":0.1,\"lr\":1}\n{\"step\":1,\"acc\":0.2,\"lr\":1}\n{\"step\":2}\n{\"step\":3,\"acc\":0.4}\n{\"step\":3,\"acc\":0.5}\n",
        );
        assert_eq!(table.series("acc").unwrap(), [(0, 0.1), (1, 0.2), (3, 0.5)]);
        assert_eq!(table.series("lr").unwrap(), [(0, 1.0), (1, 1.0)]);
        assert!(table.frame.column("lr").is_err() && table.frame.column("acc").is_err());
        assert_eq!(table.names(), ["acc", "lr"]);
        assert_eq!(table.facts("acc").map(|f| f.count), Some(3));
    }

    /// Many blocks, so that lines are parsed while earlier ones are added:
    /// keys that appear late, steps repeated and a resume across block
    /// boundaries give the rows a plain line-by-line reading gives.
    #[test]
    fn pipelined_blocks_match_a_line_by_line_reading() {
        let mut text = String::new();
        let mut step: i64 = 0;
        for i in 0..300_000u64 {
            if i == 150_000 {
                step -= 40_000; // a resumed run
            }
            let loss = 1.0 / (1 + i) as f64;
            // Now and then the keys of the line before do not repeat: moved,
            // longer or shorter at the same place, escaped, spaced.
            let mut line = match i % 97 {
                3 => format!("{{\"loss\":{loss},\"step\":{step}"),
                5 => format!("{{\"step\":{step},\"loss_ema\":{loss},\"loss\":{loss}"),
                7 => format!("{{\"step\":{step},\"los\":1,\"loss\":{loss}"),
                11 => format!("{{\"step\":{step},\"lo\\u0073s\":{loss}"),
                13 => format!("{{ \"step\" : {step} , \"loss\" : {loss}"),
                _ => format!("{{\"step\":{step},\"loss\":{loss}"),
            };
            if i >= 120_000 {
                line.push_str(&format!(",\"late_{}\":{i}", i % 3));
            }
            text.push_str(&line);
            text.push_str("}\n");
            if i % 1000 == 0 {
                text.push_str(&format!("{{\"step\":{step},\"val_loss\":{i}}}\n"));
            }
            step += 1;
        }
        assert!(text.len() > 3 * jsonl::BLOCK_BYTES);
        // The reference: rows by step, a step that goes back drops the rows from it on.
        let mut rows: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
        for line in text.lines() {
            let fields = jsonl::parse_fields(line.as_bytes()).unwrap();
            let step = fields.iter().find(|(k, _)| k == STEP).and_then(|(_, v)| step_of(v)).unwrap();
            if rows.last_key_value().is_some_and(|(&last, _)| step < last) {
                rows.split_off(&step);
            }
            let row = rows.entry(step).or_default();
            for (key, value) in fields {
                if key != STEP {
                    row.insert(key.into_owned(), value.number().unwrap());
                }
            }
        }
        let (table, warnings) = load_text(&text);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(table.steps(), rows.keys().copied().collect::<Vec<_>>());
        for name in ["loss", "val_loss", "late_0", "late_1", "late_2", "loss_ema", "los"] {
            let expected: Vec<(u64, f64)> = rows.iter().filter_map(|(s, r)| r.get(name).map(|v| (*s, *v))).collect();
            assert_eq!(table.series(name).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn resumed_run_keeps_the_later_rows() {
        let (table, warnings) = load_text(
            "{\"step\":0,\"loss\":3}\n{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":9}\n{\"step\":1,\"loss\":1.5}\n{\"step\":2,\"loss\":1}\n",
        );
        assert_eq!(table.series("loss").unwrap(), [(0, 3.0), (1, 1.5), (2, 1.0)]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("goes back from 2 to 1"));
    }

    #[test]
    fn nonfinite_values_and_lines_without_step() {
        let (table, warnings) =
            load_text("{\"step\":0,\"loss\":NaN}\n{\"loss\":1}\n{\"step\":-1,\"loss\":2}\n{\"step\":1,\"loss\":Infinity,\"tag\":\"x\"}\n");
        let loss = table.series("loss").unwrap();
        assert!(loss[0].1.is_nan() && loss[1].1.is_infinite());
        let facts = table.facts("loss").unwrap();
        assert_eq!((facts.count, facts.nonfinite, facts.last_finite), (2, 2, None));
        assert!(facts.first_nonfinite.is_some_and(|(step, v)| step == 0 && v.is_nan()));
        let (table, _) = load_text("{\"step\":0,\"a\":1}\n{\"step\":1}\n{\"step\":2,\"a\":Infinity}\n{\"step\":3,\"a\":4}\n");
        assert_eq!(table.facts("a"), Some(MetricFacts { count: 3, nonfinite: 1, first_nonfinite: Some((2, f64::INFINITY)), last_finite: Some(4.0) }));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].message.contains("2 line(s) without"));
        assert!(warnings[1].message.contains("\"tag\""));
    }
}
