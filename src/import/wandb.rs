//! W&B run folders (`wandb/run-*/`, `wandb/offline-run-*/`): the
//! `run-<id>.wandb` log the W&B SDK keeps of every run, online or offline.
//!
//! The log is LevelDB's log format with W&B's header (`:W&B`, a magic number,
//! a version) and a plain CRC-32 over each chunk's type and data: 32 KiB
//! blocks of chunks, each a 7-byte header (checksum, length, FULL, FIRST,
//! MIDDLE or LAST) and its data. A record is one protobuf `Record`; history
//! rows, config, summary, the run's own record and its exit are read, the
//! rest (telemetry, system stats, console output, files) is skipped unread.
//! `files/config.yaml` and `files/wandb-summary.json` stand in for what the
//! log lacks, and `files/wandb-metadata.json` tells what ran on what. `wandb.watch` histograms (`gradients/<param>`,
//! `parameters/<param>`) become gradient and weight statistics.

use super::histogram::{self, Histogram, HistogramTags};
use super::{hyperparameters, read_full, ImportOptions, Points, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::{Framework, RunMeta, RunStatus, TensorRecord};
use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const LOG_EXTENSION: &str = ".wandb";
const FILE_IDENT: &[u8; 4] = b":W&B";
const FILE_MAGIC: u16 = 0xBEE1;
const FILE_HEADER_LEN: usize = 7;
const BLOCK_LEN: usize = 32 * 1024;
const CHUNK_HEADER_LEN: usize = 7;
/// The largest record kept: a history row of a few thousand histograms.
const MAX_RECORD_BYTES: usize = 256 << 20;
/// The most config and summary entries kept.
const MAX_ENTRIES: usize = 4096;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

// The parts of W&B's `wandb_internal.proto` that are read; prost skips the
// other fields.

#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(message, optional, tag = "2")]
    pub history: Option<HistoryRecord>,
    #[prost(message, optional, tag = "3")]
    pub summary: Option<ItemsRecord>,
    #[prost(message, optional, tag = "5")]
    pub config: Option<ItemsRecord>,
    #[prost(message, optional, tag = "17")]
    pub run: Option<RunRecord>,
    #[prost(message, optional, tag = "18")]
    pub exit: Option<RunExitRecord>,
    #[prost(message, optional, tag = "21")]
    pub header: Option<HeaderRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<HistoryItem>,
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryItem {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(sint64, optional, tag = "5")]
    pub integer: Option<i64>,
    #[prost(double, optional, tag = "6")]
    pub number: Option<f64>,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryStep {
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// `ConfigRecord` and `SummaryRecord`: updates and removals of items.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ItemsRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
    #[prost(message, repeated, tag = "2")]
    pub remove: Vec<Item>,
}

/// `ConfigItem` and `SummaryItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(string, tag = "3")]
    pub project: String,
    #[prost(message, optional, tag = "4")]
    pub config: Option<ItemsRecord>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<ItemsRecord>,
    #[prost(string, tag = "8")]
    pub display_name: String,
    #[prost(int64, tag = "14")]
    pub starting_step: i64,
    #[prost(bool, tag = "18")]
    pub resumed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunExitRecord {
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderRecord {
    #[prost(message, optional, tag = "1")]
    pub version_info: Option<VersionInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionInfo {
    #[prost(string, tag = "1")]
    pub producer: String,
}

/// Whether a file is a run's log: `run-<id>.wandb`.
pub fn is_log_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| {
        let name = n.to_string_lossy();
        name.starts_with("run-") && name.ends_with(LOG_EXTENSION)
    })
}

/// The logs of a run folder, in name order.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| is_log_file(p) && p.is_file()).collect();
    files.sort();
    files
}

/// Whether a folder is a W&B run folder: one holding a `run-<id>.wandb`.
pub fn is_run_dir(dir: &Path) -> bool {
    !log_files(dir).is_empty()
}

/// The LevelDB-log framing of a `.wandb` file, read one block at a time.
struct LogReader<R> {
    reader: R,
    block: Vec<u8>,
    /// Bytes of `block` filled, and the read position in it.
    filled: usize,
    at: usize,
    /// File offset of the block's first byte.
    block_offset: u64,
    /// Chunks dropped for a bad checksum, length or type.
    corrupt: usize,
}

/// How a log ended.
#[derive(Debug, PartialEq)]
enum End {
    Whole,
    /// The last record is incomplete (a live or killed writer), at this offset.
    Cut(u64),
}

impl<R: Read> LogReader<R> {
    /// Checks the file header; `None` if the file is not a W&B log.
    fn open(mut reader: R) -> std::io::Result<Option<Self>> {
        let mut block = vec![0u8; BLOCK_LEN];
        let filled = read_full(&mut reader, &mut block)?;
        let header = &block[..filled.min(FILE_HEADER_LEN)];
        if header.len() < FILE_HEADER_LEN || &header[..4] != FILE_IDENT || u16::from_le_bytes([header[4], header[5]]) != FILE_MAGIC {
            return Ok(None);
        }
        Ok(Some(LogReader { reader, block, filled, at: FILE_HEADER_LEN, block_offset: 0, corrupt: 0 }))
    }

    /// The next record, or how the log ended.
    fn next_record(&mut self) -> Result<Vec<u8>, End> {
        let mut pending: Option<Vec<u8>> = None;
        loop {
            if self.at + CHUNK_HEADER_LEN > self.filled {
                // The rest of a block too short for a header is padding.
                if self.filled < BLOCK_LEN || !self.next_block() {
                    return Err(self.end(pending.is_some()));
                }
                continue;
            }
            let header = &self.block[self.at..self.at + CHUNK_HEADER_LEN];
            let checksum = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let length = u16::from_le_bytes([header[4], header[5]]) as usize;
            let kind = header[6];
            let start = self.at + CHUNK_HEADER_LEN;
            if kind == 0 && length == 0 && checksum == 0 {
                // Zeros to the end of a block.
                self.at = self.filled;
                continue;
            }
            if start + length > self.filled {
                if self.filled < BLOCK_LEN {
                    return Err(End::Cut(self.block_offset + self.at as u64));
                }
                // A length past the block: the block is corrupt.
                self.skip_block(&mut pending);
                continue;
            }
            let data = &self.block[start..start + length];
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&[kind]);
            hasher.update(data);
            if hasher.finalize() != checksum || !(FULL..=LAST).contains(&kind) {
                self.skip_block(&mut pending);
                continue;
            }
            self.at = start + length;
            match (kind, pending.as_mut()) {
                (FULL, previous) => {
                    self.corrupt += usize::from(previous.is_some());
                    return Ok(data.to_vec());
                }
                (FIRST, previous) => {
                    self.corrupt += usize::from(previous.is_some());
                    pending = Some(data.to_vec());
                }
                (MIDDLE | LAST, Some(record)) if record.len() + length <= MAX_RECORD_BYTES => {
                    record.extend_from_slice(data);
                    if kind == LAST {
                        return Ok(pending.take().unwrap_or_default());
                    }
                }
                // A continuation without its start, or a record too large.
                _ => {
                    self.corrupt += 1;
                    pending = None;
                }
            }
        }
    }

    /// Moves to the next block; `false` at the end of the file.
    fn next_block(&mut self) -> bool {
        self.block_offset += self.filled as u64;
        self.filled = read_full(&mut self.reader, &mut self.block).unwrap_or(0);
        self.at = 0;
        self.filled > 0
    }

    /// Drops the rest of a block whose chunk cannot be trusted, and any
    /// record begun before it.
    fn skip_block(&mut self, pending: &mut Option<Vec<u8>>) {
        self.corrupt += 1;
        *pending = None;
        self.at = self.filled;
    }

    fn end(&self, partial: bool) -> End {
        if partial {
            End::Cut(self.block_offset + self.at as u64)
        } else {
            End::Whole
        }
    }
}

/// What a run's logs held.
#[derive(Default)]
struct Contents {
    points: Points,
    tensors: Vec<TensorRecord>,
    config: BTreeMap<String, Value>,
    summary: BTreeMap<String, Value>,
    saw_config: bool,
    saw_summary: bool,
    name: Option<String>,
    project: Option<String>,
    producer: Option<String>,
    exit_code: Option<i32>,
    rows: u64,
    /// Values that are neither numbers nor histograms (media, tables, text).
    ignored: usize,
    /// Histograms whose keys name neither weights nor gradients.
    unknown_histograms: usize,
}

pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let (dir, files) = if path.is_file() { (path.parent().unwrap_or(Path::new(".")).to_path_buf(), vec![path.to_path_buf()]) } else { (path.to_path_buf(), log_files(path)) };
    if files.is_empty() {
        return Err(LoadError::NotARun { path: path.to_path_buf() });
    }
    let mut warnings = Vec::new();
    let mut contents = Contents::default();
    let mut read_any = false;
    for file in &files {
        read_any |= read_log(file, &options.histogram_tags, &mut contents, &mut warnings);
    }
    if !read_any {
        return Err(LoadError::NothingReadable {
            path: path.to_path_buf(),
            reasons: files.iter().map(|f| format!("{}: not a W&B run log (no :W&B header)", f.display())).collect(),
        });
    }
    read_fallbacks(&dir, &mut contents, &mut warnings);
    if contents.ignored > 0 {
        warnings.push(Warning::new(path, None, format!("{} media, table, text or other non-numeric value(s) were left alone", contents.ignored)));
    }
    histogram::warn_unnamed(path, contents.unknown_histograms, &mut warnings);
    let Contents { mut points, tensors, config, summary, name, project, producer, exit_code, .. } = contents;
    if points.is_empty() && tensors.is_empty() {
        return Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons: vec!["no metric value or histogram in the run's history".into()] });
    }
    points.standardize_names();
    let mut meta = RunMeta::new(name.unwrap_or_else(|| super::name_of(&dir)));
    let mut framework = Framework { name: Some("wandb".into()), version: producer, ..Default::default() };
    if let Some(project) = project {
        framework.extra.insert("project".into(), project.into());
    }
    meta.framework = Some(framework);
    read_metadata(&dir, &mut meta, &mut warnings);
    // No exit record: the process died, or it is still running.
    meta.status = Some(match exit_code {
        Some(0) => RunStatus::Finished,
        Some(_) => RunStatus::Crashed,
        None => RunStatus::Running,
    });
    if let Some(code) = exit_code.filter(|&c| c != 0) {
        meta.extra.insert("exit_code".into(), code.into());
    }
    if !summary.is_empty() {
        meta.extra.insert("wandb_summary".into(), Value::Object(summary.into_iter().collect()));
    }
    meta.hyperparameters = Some(hyperparameters(config.into_iter().map(|(k, v)| (k, value_text(&v)))));
    super::mark_imported(&mut meta, SourceFormat::Wandb);
    let metrics = points.finish(path, &mut warnings);
    Ok(Run { source: path.to_path_buf(), meta, metrics, tensors: histogram::resumed(tensors), checkpoints: Vec::new(), warnings })
}

/// A config value as MLflow-style text: strings bare, the rest as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads one log into `contents`; `false` if it is not a W&B log at all.
fn read_log(file: &Path, tags: &HistogramTags, contents: &mut Contents, warnings: &mut Vec<Warning>) -> bool {
    let reader = match std::fs::File::open(file).and_then(|f| LogReader::open(std::io::BufReader::with_capacity(1 << 20, f))) {
        Ok(Some(reader)) => reader,
        Ok(None) => return false,
        Err(e) => {
            warnings.push(Warning::new(file, None, format!("not read: {e}")));
            return false;
        }
    };
    let mut reader = reader;
    let mut undecodable = 0usize;
    let end = loop {
        match reader.next_record() {
            Ok(bytes) => match Record::decode(bytes.as_slice()) {
                Ok(record) => add_record(record, tags, contents),
                Err(_) => undecodable += 1,
            },
            Err(end) => break end,
        }
    };
    if reader.corrupt + undecodable > 0 {
        warnings.push(Warning::new(file, None, format!("{} record(s) with a wrong checksum, length or content were skipped", reader.corrupt + undecodable)));
    }
    if let End::Cut(offset) = end {
        warnings.push(Warning::new(file, None, format!("cut short at byte {offset} (a live or killed run): read up to there")));
    }
    true
}

fn add_record(record: Record, tags: &HistogramTags, contents: &mut Contents) {
    if let Some(history) = record.history {
        add_history(history, tags, contents);
    }
    if let Some(run) = record.run {
        if !run.display_name.is_empty() {
            contents.name = Some(run.display_name);
        } else if !run.run_id.is_empty() {
            contents.name.get_or_insert(run.run_id);
        }
        if !run.project.is_empty() {
            contents.project = Some(run.project);
        }
        if let Some(config) = run.config {
            add_items(config, &mut contents.config, &mut contents.saw_config);
        }
        if let Some(summary) = run.summary {
            add_items(summary, &mut contents.summary, &mut contents.saw_summary);
        }
    }
    if let Some(config) = record.config {
        add_items(config, &mut contents.config, &mut contents.saw_config);
    }
    if let Some(summary) = record.summary {
        add_items(summary, &mut contents.summary, &mut contents.saw_summary);
    }
    if let Some(exit) = record.exit {
        contents.exit_code = Some(exit.exit_code);
    }
    if let Some(version) = record.header.and_then(|h| h.version_info) {
        // `0.31.0+<commit>`: the release.
        let release = version.producer.split('+').next().unwrap_or("").to_string();
        contents.producer = Some(release).filter(|r| !r.is_empty());
    }
}

/// An item's key: W&B's own internal keys start with `_` (`_step`,
/// `_runtime`, `_wandb`); nested keys are joined with dots, as W&B shows them.
fn item_key(key: &str, nested: &[String]) -> String {
    if key.is_empty() {
        nested.join(".")
    } else {
        key.to_string()
    }
}

/// A history value read as a number: bare `NaN` and `Infinity` included.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.starts_with(['{', '[', '"']) || text == "null" {
        return None;
    }
    crate::jsonl::text_number(text)
}

/// The parts of a logged histogram, in the nested items of one row
/// (`gradients/fc1.weight` with `_type`, `values`, `bins`) or in one object.
#[derive(Default)]
struct HistogramParts {
    kind: Option<String>,
    values: Option<Value>,
    bins: Option<Value>,
    packed_bins: Option<Value>,
}

impl HistogramParts {
    fn set(&mut self, field: &str, value: Value) {
        match field {
            "_type" => self.kind = value.as_str().map(str::to_string),
            "values" => self.values = Some(value),
            "bins" => self.bins = Some(value),
            "packedBins" => self.packed_bins = Some(value),
            _ => {}
        }
    }

    fn from_object(object: &serde_json::Map<String, Value>) -> Self {
        let mut parts = HistogramParts::default();
        for (field, value) in object {
            parts.set(field, value.clone());
        }
        parts
    }

    /// The histogram, if the parts make one.
    fn histogram(&self) -> Option<Histogram> {
        if self.kind.as_deref() != Some("histogram") {
            return None;
        }
        let numbers = |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().take(1 << 17).map(Value::as_f64).collect() };
        let counts = numbers(self.values.as_ref()?)?;
        let edges = match (&self.bins, &self.packed_bins) {
            (Some(bins), _) => numbers(bins)?,
            // `{"min", "size", "count"}`: evenly spaced edges.
            (None, Some(packed)) => {
                let (min, size) = (packed.get("min")?.as_f64()?, packed.get("size")?.as_f64()?);
                (0..=counts.len()).map(|i| min + size * i as f64).collect()
            }
            (None, None) => return None,
        };
        Histogram::from_edges(&edges, &counts)
    }
}

/// The fields of a typed value W&B spreads over nested items.
const TYPED_FIELDS: [&str; 4] = ["_type", "values", "bins", "packedBins"];

fn add_history(history: HistoryRecord, tags: &HistogramTags, contents: &mut Contents) {
    let mut step = history.step.and_then(|s| u64::try_from(s.num).ok());
    let mut scalars = Vec::new();
    let mut typed: BTreeMap<String, HistogramParts> = BTreeMap::new();
    for item in history.item {
        let path: Vec<&str> = if item.key.is_empty() { item.nested_key.iter().map(String::as_str).collect() } else { vec![item.key.as_str()] };
        let Some(first) = path.first() else { continue };
        let value = item.number.or(item.integer.map(|i| i as f64));
        if *first == "_step" && path.len() == 1 {
            if let Some(s) = value.or_else(|| number(&item.value_json)).and_then(super::whole) {
                step = Some(s);
            }
            continue;
        }
        if first.starts_with('_') {
            continue;
        }
        if let [parent @ .., field] = path.as_slice() {
            if !parent.is_empty() && TYPED_FIELDS.contains(field) {
                if let Ok(parsed) = serde_json::from_str::<Value>(&item.value_json) {
                    typed.entry(parent.join(".")).or_default().set(field, parsed);
                }
                continue;
            }
        }
        let key = item_key(&item.key, &item.nested_key);
        let trimmed = item.value_json.trim_start();
        if let Some(v) = value.or_else(|| number(&item.value_json)) {
            scalars.push((key, v));
        } else if trimmed.starts_with('{') {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(object)) => {
                    typed.insert(key, HistogramParts::from_object(&object));
                }
                _ => contents.ignored += 1,
            }
        } else if !trimmed.is_empty() && trimmed != "null" {
            contents.ignored += 1;
        }
    }
    let step = step.unwrap_or(contents.rows);
    contents.rows += 1;
    contents.points.entry(step);
    for (key, value) in scalars {
        contents.points.push(&key, step, value);
    }
    for (key, parts) in typed {
        match parts.histogram() {
            Some(h) => match histogram::tensor_record(&key, step, &h, tags) {
                Some(record) => contents.tensors.push(record),
                None => contents.unknown_histograms += 1,
            },
            None => contents.ignored += 1,
        }
    }
}

/// Applies config or summary updates: W&B's own (`_wandb`, `_runtime`),
/// histograms and media (typed values, spread over nested items or whole)
/// and arrays are left out.
fn add_items(record: ItemsRecord, into: &mut BTreeMap<String, Value>, seen: &mut bool) {
    *seen = true;
    for item in record.update {
        let key = item_key(&item.key, &item.nested_key);
        let typed_part = item.nested_key.len() >= 2 && item.nested_key.last().is_some_and(|last| TYPED_FIELDS.contains(&last.as_str()));
        if key.starts_with('_') || typed_part || (!item.key.is_empty() && !item.nested_key.is_empty()) || into.len() >= MAX_ENTRIES && !into.contains_key(&key) {
            continue;
        }
        let value = match number(&item.value_json) {
            Some(n) if !n.is_finite() => Value::String(item.value_json.trim().to_string()),
            _ => match serde_json::from_str::<Value>(&item.value_json) {
                Ok(Value::Object(_) | Value::Array(_)) | Err(_) => continue,
                Ok(value) => value,
            },
        };
        into.insert(key, value);
    }
    for item in record.remove {
        into.remove(&item_key(&item.key, &item.nested_key));
    }
}

/// `files/config.yaml` and `files/wandb-summary.json`, for a log that has no
/// config or no summary (W&B writes them when a run syncs or ends).
fn read_fallbacks(dir: &Path, contents: &mut Contents, warnings: &mut Vec<Warning>) {
    let files = dir.join("files");
    let config_file = files.join("config.yaml");
    if !contents.saw_config && config_file.is_file() {
        match std::fs::read_to_string(&config_file).map_err(|e| e.to_string()).and_then(|t| yaml_rust2::YamlLoader::load_from_str(&t).map_err(|e| e.to_string())) {
            Ok(docs) => {
                if let Some(yaml_rust2::Yaml::Hash(entries)) = docs.first() {
                    for (key, entry) in entries.iter().take(MAX_ENTRIES) {
                        let Some(key) = key.as_str().filter(|k| !k.starts_with('_') && *k != "wandb_version") else { continue };
                        // `name: {desc: ..., value: ...}`
                        if let Some(value) = yaml_scalar(&entry["value"]) {
                            contents.config.insert(key.to_string(), value);
                        }
                    }
                }
            }
            Err(why) => warnings.push(Warning::new(&config_file, None, format!("not read: {why}"))),
        }
    }
    let summary_file = files.join("wandb-summary.json");
    if !contents.saw_summary && summary_file.is_file() {
        // W&B writes non-finite summaries as bare `NaN` and `Infinity`.
        let parsed = std::fs::read_to_string(&summary_file).map_err(|e| e.to_string()).and_then(|text| {
            let quoted = crate::jsonl::quote_nonfinite_tokens(&text);
            serde_json::from_str::<Value>(quoted.as_deref().unwrap_or(&text)).map_err(|e| e.to_string())
        });
        match parsed {
            Ok(Value::Object(object)) => {
                let items = object.into_iter().filter(|(k, v)| !k.starts_with('_') && !v.is_object()).take(MAX_ENTRIES);
                contents.summary.extend(items);
            }
            Ok(_) => warnings.push(Warning::new(&summary_file, None, "not read: not a JSON object".to_string())),
            Err(why) => warnings.push(Warning::new(&summary_file, None, format!("not read: {why}"))),
        }
    }
}

/// Facts of `files/wandb-metadata.json` kept with the run: what ran, on
/// what. The host, user, paths and git remote are not kept, since reports
/// travel to tickets.
const METADATA_KEPT: [&str; 6] = ["program", "args", "python", "gpu", "gpu_count", "startedAt"];

/// `files/wandb-metadata.json`: the GPU becomes the framework's device, and
/// [`METADATA_KEPT`] is kept as `wandb_metadata`.
fn read_metadata(dir: &Path, meta: &mut RunMeta, warnings: &mut Vec<Warning>) {
    let file = dir.join("files").join("wandb-metadata.json");
    let Ok(bytes) = std::fs::read(&file) else { return };
    let object = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return warnings.push(Warning::new(&file, None, "not read: not a JSON object".to_string())),
        Err(e) => return warnings.push(Warning::new(&file, None, format!("not read: {e}"))),
    };
    if let (Some(gpu), Some(framework)) = (object.get("gpu").and_then(Value::as_str), meta.framework.as_mut()) {
        framework.device.get_or_insert_with(|| gpu.to_string());
    }
    let kept: serde_json::Map<String, Value> = METADATA_KEPT.iter().filter_map(|k| Some((k.to_string(), object.get(*k)?.clone()))).collect();
    if !kept.is_empty() {
        meta.extra.insert("wandb_metadata".into(), Value::Object(kept));
    }
}

fn yaml_scalar(yaml: &yaml_rust2::Yaml) -> Option<Value> {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Real(text) => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        Yaml::Integer(i) => Some((*i).into()),
        Yaml::String(s) => Some(s.clone().into()),
        Yaml::Boolean(b) => Some((*b).into()),
        _ => None,
    }
}

/// Frames records as the W&B SDK writes a `.wandb` file, for tests and the
/// benchmark.
pub fn write_log(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(FILE_IDENT);
    out.extend_from_slice(&FILE_MAGIC.to_le_bytes());
    out.push(0);
    for record in records {
        let data = record.encode_to_vec();
        let mut rest = data.as_slice();
        let mut first = true;
        loop {
            let left = BLOCK_LEN - out.len() % BLOCK_LEN;
            if left < CHUNK_HEADER_LEN {
                out.resize(out.len() + left, 0);
                continue;
            }
            let take = rest.len().min(left - CHUNK_HEADER_LEN);
            let last = take == rest.len();
            let kind = match (first, last) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, false) => MIDDLE,
                (false, true) => LAST,
            };
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&[kind]);
            hasher.update(&rest[..take]);
            out.extend_from_slice(&hasher.finalize().to_le_bytes());
            out.extend_from_slice(&(take as u16).to_le_bytes());
            out.push(kind);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
            if last {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: i64, items: &[(&[&str], &str)]) -> Record {
        let mut item: Vec<HistoryItem> = items
            .iter()
            .map(|(path, json)| HistoryItem { nested_key: path.iter().map(|s| s.to_string()).collect(), value_json: json.to_string(), ..Default::default() })
            .collect();
        item.push(HistoryItem { nested_key: vec!["_step".into()], value_json: step.to_string(), ..Default::default() });
        Record { history: Some(HistoryRecord { item, step: None }), ..Default::default() }
    }

    /// Records spanning blocks read back; a record cut short ends the log
    /// with a warning, and a flipped byte costs only its block.
    #[test]
    fn framed_records_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let big = format!("\"{}\"", "x".repeat(80_000));
        let mut records = vec![Record { run: Some(RunRecord { display_name: "framed".into(), ..Default::default() }), ..Default::default() }];
        for step in 0..2000 {
            records.push(row(step, &[(&["loss"], &format!("{}", 1.0 / (step + 1) as f64)), (&["note"], if step == 3 { &big } else { "\"ok\"" })]));
        }
        records[100] = row(99, &[(&["loss"], "NaN"), (&["grads/fc1.weight", "_type"], "\"histogram\""), (&["grads/fc1.weight", "values"], "[1, 3]"), (&["grads/fc1.weight", "bins"], "[-1, 0, 1]")]);
        let bytes = write_log(&records);
        assert!(bytes.len() > 4 * BLOCK_LEN);
        let run_dir = dir.path().join("run-1");
        std::fs::create_dir(&run_dir).unwrap();
        let file = run_dir.join("run-abc.wandb");
        std::fs::write(&file, &bytes).unwrap();
        let run = load(&run_dir, &ImportOptions::default()).unwrap();
        assert_eq!(run.meta.name.as_deref(), Some("framed"));
        let loss = run.metrics.series("loss").unwrap();
        assert_eq!(loss.len(), 2000);
        assert!(loss[99].1.is_nan() && loss[1999] == (1999, 1.0 / 2000.0));
        assert_eq!(run.tensors.len(), 1);
        assert_eq!(run.meta.status, Some(RunStatus::Running));

        // Cut mid-record: read up to the last whole one.
        std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
        let cut = load(&run_dir, &ImportOptions::default()).unwrap();
        assert_eq!(cut.metrics.series("loss").unwrap().len(), 1999);
        assert!(cut.warnings.iter().any(|w| w.message.contains("cut short")), "{:?}", cut.warnings);

        // A flipped byte in the second block: that block's records are lost.
        let mut flipped = bytes.clone();
        flipped[BLOCK_LEN + 100] ^= 0xff;
        std::fs::write(&file, &flipped).unwrap();
        let damaged = load(&run_dir, &ImportOptions::default()).unwrap();
        let kept = damaged.metrics.series("loss").unwrap().len();
        assert!(kept < 2000 && kept > 1500, "{kept}");
        assert!(damaged.warnings.iter().any(|w| w.message.contains("wrong checksum")), "{:?}", damaged.warnings);

        // Not a W&B log.
        std::fs::write(&file, b"hello").unwrap();
        assert!(matches!(load(&run_dir, &ImportOptions::default()), Err(LoadError::NothingReadable { .. })));
    }
}
