//! TensorBoard event files (`events.out.tfevents.*`), as PyTorch's
//! `SummaryWriter`, tensorboardX, Keras' `TensorBoard` callback and the
//! Hugging Face `Trainer` write them. A run is a folder holding event files,
//! with Keras' `train/` and `validation/` subfolders as one run (validation
//! values become `val_*`); one event file alone is a run too.
//!
//! Files are TFRecord streams (length, masked CRC-32C of the length, data,
//! masked CRC-32C of the data) of `Event` protocol buffers, decoded with
//! prost from the message definitions below (the fields postmortem reads;
//! others are skipped). Scalars come as `simple_value` or as rank-0 tensors
//! (TF2); histograms as `HistogramProto` or as TF2 `k x 3` tensors (left,
//! right, count), and become weight or gradient statistics by their tag.
//! Images, audio, text and graphs are counted and left alone.

use super::histogram::{self, Histogram, HistogramTags};
use super::{read_full, ImportOptions, Points, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::{Framework, RunMeta, TensorRecord};
use prost::Message;
use std::path::{Path, PathBuf};

/// The start of an event file's name.
const EVENT_FILE_PREFIX: &str = "events.out.tfevents";
/// Subfolders whose events are validation values (Keras writes `validation/`).
const VALIDATION_FOLDERS: [&str; 4] = ["validation", "val", "eval", "valid"];
/// The longest record read; a length beyond it is a corrupt header.
const MAX_RECORD_BYTES: u64 = 256 << 20;

/// The messages read, as TensorFlow's event.proto and summary.proto define
/// them (only the fields postmortem reads; prost skips the others).
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// The hparams plugin's content (tensorboard's `plugins/hparams/plugin_data.proto`):
/// a session's start holds its hyperparameters.
#[derive(Clone, PartialEq, Message)]
pub struct HParamsPluginData {
    #[prost(message, optional, tag = "3")]
    pub session_start_info: Option<SessionStartInfo>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    #[prost(map = "string, message", tag = "1")]
    pub hparams: std::collections::HashMap<String, ProtoValue>,
}

/// `google.protobuf.Value`, for the kinds a hyperparameter takes.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoValue {
    #[prost(double, optional, tag = "2")]
    pub number_value: Option<f64>,
    #[prost(string, optional, tag = "3")]
    pub string_value: Option<String>,
    #[prost(bool, optional, tag = "4")]
    pub bool_value: Option<bool>,
}

impl ProtoValue {
    fn text(&self) -> Option<String> {
        self.number_value.map(|n| n.to_string()).or_else(|| self.string_value.clone()).or_else(|| self.bool_value.map(|b| b.to_string()))
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

// TensorFlow's DataType numbers.
const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_BFLOAT16: i32 = 14;
const DT_HALF: i32 = 19;

impl TensorProto {
    fn dims(&self) -> Vec<i64> {
        self.tensor_shape.as_ref().map(|s| s.dim.iter().map(|d| d.size).collect()).unwrap_or_default()
    }

    /// The values as floats, from the typed fields or the raw bytes
    /// (little-endian); `None` for a type that is not numeric.
    fn values(&self) -> Option<Vec<f64>> {
        let raw = &self.tensor_content;
        let from_raw = |width: usize, read: &dyn Fn(&[u8]) -> f64| raw.chunks_exact(width).map(read).collect::<Vec<f64>>();
        let values = match self.dtype {
            DT_FLOAT if raw.is_empty() => self.float_val.iter().map(|&v| v as f64).collect(),
            DT_FLOAT => from_raw(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            DT_DOUBLE if raw.is_empty() => self.double_val.clone(),
            DT_DOUBLE => from_raw(8, &|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            DT_INT32 if raw.is_empty() => self.int_val.iter().map(|&v| v as f64).collect(),
            DT_INT32 => from_raw(4, &|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            DT_INT64 if raw.is_empty() => self.int64_val.iter().map(|&v| v as f64).collect(),
            DT_INT64 => from_raw(8, &|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64),
            DT_HALF if raw.is_empty() => self.half_val.iter().map(|&v| half::f16::from_bits(v as u16).to_f64()).collect(),
            DT_HALF => from_raw(2, &|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64()),
            DT_BFLOAT16 if raw.is_empty() => self.half_val.iter().map(|&v| half::bf16::from_bits(v as u16).to_f64()).collect(),
            DT_BFLOAT16 => from_raw(2, &|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64()),
            _ => return None,
        };
        Some(values)
    }
}

/// A record as TFRecord frames it: the length, its masked CRC-32C, the
/// data, its masked CRC-32C. For writers of test and benchmark inputs.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc(&length).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc(data).to_le_bytes());
    record
}

/// Whether a file name is an event file's.
pub fn is_event_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(EVENT_FILE_PREFIX))
}

/// Whether a folder is a TensorBoard run: event files in it, or in its
/// Keras-style `train/` and `validation/` subfolders.
pub fn is_run_dir(dir: &Path) -> bool {
    let has_events = |d: &Path| std::fs::read_dir(d).is_ok_and(|entries| entries.flatten().any(|e| is_event_file(&e.path())));
    has_events(dir) || ["train"].iter().chain(VALIDATION_FOLDERS.iter()).any(|sub| has_events(&dir.join(sub)))
}

/// The event files of a run with the prefix their values get: `val_` in a
/// validation subfolder.
fn event_files(path: &Path) -> Vec<(PathBuf, &'static str)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), "")];
    }
    let mut files = Vec::new();
    let mut add = |dir: &Path, prefix: &'static str| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| is_event_file(p) && p.is_file()).collect();
        // Event file names carry their start time: name order is write order.
        found.sort();
        files.extend(found.into_iter().map(|p| (p, prefix)));
    };
    add(path, "");
    add(&path.join("train"), "");
    for sub in VALIDATION_FOLDERS {
        add(&path.join(sub), "val_");
    }
    files
}

/// What the records of a file held, beyond the values taken.
#[derive(Debug, Default)]
struct Counts {
    corrupt: usize,
    summary: usize,
    ignored: usize,
    unknown_histograms: usize,
    /// The hparams plugin's hyperparameters, as `(name, value)`.
    hparams: Vec<(String, String)>,
}

pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let files = event_files(path);
    if files.is_empty() {
        return Err(LoadError::NotARun { path: path.to_path_buf() });
    }
    let mut warnings = Vec::new();
    let mut tensors = Vec::new();
    let mut counts = Counts::default();
    // Each tag is a series of its own: one that goes back to an earlier step
    // (a restart, in the same file or a later one) follows the format's
    // resume rule for that tag.
    let mut points = Points::default();
    for (file, prefix) in &files {
        read_file(file, prefix, &options.histogram_tags, &mut points, &mut tensors, &mut counts, &mut warnings);
    }
    if counts.corrupt > 0 {
        warnings.push(Warning::new(path, None, format!("{} record(s) with a wrong checksum were skipped", counts.corrupt)));
    }
    if counts.ignored > 0 {
        warnings.push(Warning::new(path, None, format!("{} image, audio, text or other non-numeric value(s) were left alone", counts.ignored)));
    }
    histogram::warn_unnamed(path, counts.unknown_histograms, &mut warnings);
    points.standardize_names();
    let mut meta = RunMeta::new(super::name_of(path));
    meta.framework = Some(Framework { name: Some("tensorboard".into()), ..Default::default() });
    if !counts.hparams.is_empty() {
        meta.hyperparameters = Some(super::hyperparameters(std::mem::take(&mut counts.hparams)));
    }
    super::mark_imported(&mut meta, SourceFormat::Tensorboard);
    if points.is_empty() && tensors.is_empty() {
        return Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons: vec!["no scalar or histogram in the event files".into()] });
    }
    let tensors = histogram::resumed(tensors);
    let metrics = points.finish(path, &mut warnings);
    Ok(Run { source: path.to_path_buf(), meta, metrics, tensors, checkpoints: Vec::new(), warnings })
}

/// CRC-32C masked as TFRecord stores it.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Reads the records of one event file; a file cut short ends where its
/// last whole record does.
fn read_file(file: &Path, prefix: &str, tags: &HistogramTags, points: &mut Points, tensors: &mut Vec<TensorRecord>, counts: &mut Counts, warnings: &mut Vec<Warning>) {
    let reader = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            warnings.push(Warning::new(file, None, format!("not read: {e}")));
            return;
        }
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut offset: u64 = 0;
    let mut data = Vec::new();
    loop {
        let mut header = [0u8; 12];
        match read_full(&mut reader, &mut header) {
            Ok(0) => return,
            Ok(12) => {}
            Ok(_) | Err(_) => {
                warnings.push(Warning::new(file, None, format!("cut short at byte {offset} (a live or killed writer): read up to there")));
                return;
            }
        }
        let length = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
        let length_crc = u32::from_le_bytes(header[8..].try_into().unwrap_or_default());
        if masked_crc(&header[..8]) != length_crc || length > MAX_RECORD_BYTES {
            warnings.push(Warning::new(file, None, format!("corrupt record header at byte {offset}: the rest of the file is left out")));
            return;
        }
        data.resize(length as usize + 4, 0);
        if read_full(&mut reader, &mut data).map_or(true, |n| n < data.len()) {
            warnings.push(Warning::new(file, None, format!("cut short at byte {offset} (a live or killed writer): read up to there")));
            return;
        }
        offset += 12 + length + 4;
        let (body, crc) = data.split_at(length as usize);
        if masked_crc(body) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
            counts.corrupt += 1;
            continue;
        }
        let Ok(event) = Event::decode(body) else {
            counts.corrupt += 1;
            continue;
        };
        let (Some(summary), Ok(step)) = (event.summary, u64::try_from(event.step)) else { continue };
        for value in summary.value {
            add_value(value, step, prefix, tags, points, tensors, counts);
        }
    }
}

fn add_value(value: SummaryValue, step: u64, prefix: &str, tags: &HistogramTags, points: &mut Points, tensors: &mut Vec<TensorRecord>, counts: &mut Counts) {
    let plugin = value.metadata.as_ref().and_then(|m| m.plugin_data.as_ref()).map(|p| p.plugin_name.as_str()).unwrap_or("");
    // Trainer's closing summary (`train/train_loss`, `train/total_flos`, ...)
    // is one value of the whole run, not a step of its curves.
    let lower = value.tag.to_ascii_lowercase();
    if lower.starts_with("train/train_") || lower == "train/total_flos" {
        counts.summary += 1;
        return;
    }
    if plugin == "hparams" {
        // The experiment and session-end parts carry no hyperparameter.
        let content = value.metadata.and_then(|m| m.plugin_data).map(|p| p.content).unwrap_or_default();
        if let Some(start) = HParamsPluginData::decode(content.as_slice()).ok().and_then(|d| d.session_start_info) {
            let mut pairs: Vec<(String, String)> = start.hparams.iter().filter_map(|(name, v)| Some((name.clone(), v.text()?))).collect();
            pairs.sort();
            counts.hparams.extend(pairs);
        }
        return;
    }
    if let Some(v) = value.simple_value {
        points.push_resuming(&scalar_name(&value.tag, prefix), step, v as f64);
        return;
    }
    if let Some(histogram) = &value.histo {
        add_histogram(&value.tag, step, &proto_histogram(histogram), tags, tensors, counts);
        return;
    }
    let Some(tensor) = &value.tensor else {
        counts.ignored += 1;
        return;
    };
    let dims = tensor.dims();
    match (plugin, tensor.values()) {
        ("histograms", Some(values)) if dims.len() == 2 && dims[1] == 3 => {
            let buckets = values.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
            add_histogram(&value.tag, step, &Histogram::from_buckets(buckets), tags, tensors, counts);
        }
        ("scalars" | "", Some(values)) if dims.iter().product::<i64>() == 1 && values.len() == 1 => {
            points.push_resuming(&scalar_name(&value.tag, prefix), step, values[0]);
        }
        _ => counts.ignored += 1,
    }
}

/// The metric name of a scalar tag: `train/loss` is `loss`, `eval/loss`,
/// `Loss/Validation` and a validation folder's `epoch_loss` are `val_loss`.
fn scalar_name(tag: &str, prefix: &str) -> String {
    let mut validation = !prefix.is_empty();
    let parts: Vec<&str> = tag
        .split('/')
        .filter(|part| {
            let lower = part.to_ascii_lowercase();
            if ["train", "training"].contains(&lower.as_str()) {
                return false;
            }
            if VALIDATION_FOLDERS.contains(&lower.as_str()) || lower == "validation" {
                validation = true;
                return false;
            }
            true
        })
        .collect();
    let name = parts.join("_");
    // Keras' TensorBoard callback names per-epoch values `epoch_loss`.
    let name = name.strip_prefix("epoch_").filter(|rest| !rest.is_empty()).unwrap_or(&name).to_string();
    let name = if name.is_empty() { tag.to_string() } else { name };
    if validation && !name.starts_with("val_") {
        format!("val_{name}")
    } else {
        name
    }
}

/// A `HistogramProto`: its moments are exact.
fn proto_histogram(h: &HistogramProto) -> Histogram {
    let mut buckets = Vec::with_capacity(h.bucket.len());
    let mut left = h.min;
    for (limit, count) in h.bucket_limit.iter().zip(&h.bucket) {
        buckets.push((left, limit.min(h.max), *count));
        left = *limit;
    }
    Histogram { min: h.min, max: h.max, num: h.num, sum: h.sum, sum_squares: h.sum_squares, buckets }
}

fn add_histogram(tag: &str, step: u64, histogram: &Histogram, tags: &HistogramTags, tensors: &mut Vec<TensorRecord>, counts: &mut Counts) {
    match histogram::tensor_record(tag, step, histogram, tags) {
        Some(record) => tensors.push(record),
        None => counts.unknown_histograms += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postmortem_recorder::TensorKind;

    /// Records framed here read back through the importer: a scalar as a
    /// simple value and as a TF2 double tensor, a TF2 histogram tensor, and a
    /// tag of no known kind.
    #[test]
    fn framed_events_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let tensor = |dtype: i32, dims: &[i64], content: Vec<u8>| TensorProto {
            dtype,
            tensor_shape: Some(TensorShapeProto { dim: dims.iter().map(|&size| Dim { size }).collect() }),
            tensor_content: content,
            ..Default::default()
        };
        let plugin = |name: &str| Some(SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.into(), ..Default::default() }) });
        let triples: Vec<u8> = [-1.0f64, 0.0, 3.0, 0.0, 1.0, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut bytes = Vec::new();
        for step in 0..3i64 {
            let values = vec![
                SummaryValue { tag: "Loss/Train".into(), simple_value: Some(1.0 / (step + 1) as f32), ..Default::default() },
                SummaryValue { tag: "Loss/Validation".into(), tensor: Some(tensor(DT_DOUBLE, &[], 2.0f64.to_le_bytes().to_vec())), metadata: plugin("scalars"), ..Default::default() },
                SummaryValue { tag: "grads/fc1.weight".into(), tensor: Some(tensor(DT_DOUBLE, &[2, 3], triples.clone())), metadata: plugin("histograms"), ..Default::default() },
                SummaryValue { tag: "activations/fc1".into(), histo: Some(HistogramProto { num: 1.0, ..Default::default() }), ..Default::default() },
            ];
            bytes.extend(frame(&Event { wall_time: 0.0, step, summary: Some(Summary { value: values }) }.encode_to_vec()));
        }
        std::fs::write(dir.path().join("events.out.tfevents.1.host"), bytes).unwrap();
        let run = load(dir.path(), &ImportOptions::default()).unwrap();
        assert_eq!(run.metrics.series("loss").unwrap(), [(0, 1.0), (1, 0.5), (2, 1.0 / 3.0)].map(|(s, v)| (s, v as f32 as f64)));
        assert_eq!(run.metrics.series("val_loss").unwrap(), [(0, 2.0), (1, 2.0), (2, 2.0)]);
        let grad = &run.tensors[0];
        assert_eq!((grad.name.as_str(), grad.kind, grad.stats.count), ("fc1.weight", TensorKind::Grad, 4));
        // Three values at -0.5 and one at 0.5, from the bucket centres.
        assert!((grad.stats.mean - -0.25).abs() < 1e-12 && (grad.stats.abs_mean - 0.5).abs() < 1e-12, "{:?}", grad.stats);
        assert!(run.warnings.iter().any(|w| w.message.contains("3 histogram value(s) with tags that name neither")), "{:?}", run.warnings);
        // A prefix of the user's own names them.
        let tags = HistogramTags { weights: vec!["activations/".into()], ..Default::default() };
        let named = load(dir.path(), &ImportOptions { histogram_tags: tags, ..Default::default() }).unwrap();
        assert_eq!(named.tensors.iter().filter(|t| t.name == "fc1" && t.kind == TensorKind::Weight).count(), 3);
        assert!(named.warnings.iter().all(|w| !w.message.contains("name neither")), "{:?}", named.warnings);
    }
}
