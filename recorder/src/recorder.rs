//! The writer of a run directory.
//!
//! Crash safety: each line goes to the kernel in one `write` call on a file
//! opened for appending, so a process killed at any moment leaves every line it
//! had logged complete (only a line being written can be cut). `run.json` and
//! checkpoints are written under a temporary name and renamed, so each is whole
//! or absent. A run that is never finished keeps `status: running`.

use crate::format::{
    checkpoint_file_name, RunMeta, RunStatus, TensorKind, TensorRecord, TensorStats,
    CHECKPOINT_DIR, FORMAT_VERSION, METRICS_FILE, RUN_FILE, TENSORS_FILE,
};
use crate::policy::RecordPolicy;
use crate::Error;
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The scalar metrics of one step, in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    entries: Vec<(String, MetricValue)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Scalar(f64),
    /// Class counts, as `label_counts` and `pred_counts` hold them.
    Counts(Vec<u64>),
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a scalar; NaN and infinities are written as the bare tokens
    /// `NaN`, `Infinity`, `-Infinity`, so a diverged loss stays visible.
    pub fn scalar(mut self, key: impl Into<String>, value: f64) -> Self {
        self.entries.push((key.into(), MetricValue::Scalar(value)));
        self
    }

    /// Adds a list of class counts.
    pub fn counts(mut self, key: impl Into<String>, counts: Vec<u64>) -> Self {
        self.entries.push((key.into(), MetricValue::Counts(counts)));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `metrics.jsonl` line for `step`, newline included.
    pub fn to_line(&self, step: u64) -> String {
        let mut line = format!("{{\"step\":{step}");
        for (key, value) in &self.entries {
            if key == "step" {
                continue;
            }
            let key = serde_json::Value::String(key.clone()).to_string();
            let _ = write!(line, ",{key}:");
            match value {
                MetricValue::Scalar(v) => push_number(&mut line, *v),
                MetricValue::Counts(counts) => {
                    line.push('[');
                    for (i, c) in counts.iter().enumerate() {
                        if i > 0 {
                            line.push(',');
                        }
                        let _ = write!(line, "{c}");
                    }
                    line.push(']');
                }
            }
        }
        line.push_str("}\n");
        line
    }
}

fn push_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("Infinity");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Infinity");
    } else {
        // serde_json prints the shortest text that reads back as the same f64.
        out.push_str(&serde_json::Number::from_f64(v).map_or_else(|| "null".into(), |n| n.to_string()));
    }
}

/// A tensor's bytes on the host, ready for a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Little-endian element bytes, row-major.
    pub data: Vec<u8>,
}

impl HostTensor {
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        HostTensor { dtype: Dtype::F32, shape, data }
    }

    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        HostTensor { dtype: Dtype::I64, shape, data }
    }

    pub fn from_u32(shape: Vec<usize>, values: &[u32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        HostTensor { dtype: Dtype::U32, shape, data }
    }
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Writes one run directory. Create it, log steps, write checkpoints, finish.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    meta: RunMeta,
    policy: RecordPolicy,
    metrics: File,
    tensors: Option<File>,
    done: bool,
}

impl Recorder {
    /// Creates `dir` (and its parents) and writes `run.json` with status
    /// `running`. Refuses a directory that already holds a run.
    pub fn create(dir: impl AsRef<Path>, mut meta: RunMeta) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let run_file = dir.join(RUN_FILE);
        if run_file.exists() {
            return Err(Error::RunExists(dir));
        }
        meta.format = FORMAT_VERSION.to_string();
        meta.status = Some(RunStatus::Running);
        write_atomically(&run_file, &run_json_bytes(&meta)?)?;
        let metrics = open_append(&dir.join(METRICS_FILE))?;
        Ok(Recorder { dir, meta, policy: RecordPolicy::default(), metrics, tensors: None, done: false })
    }

    /// Replaces the default choice of what to record and how often.
    pub fn with_policy(mut self, policy: RecordPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &RecordPolicy {
        &self.policy
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    /// Appends one line to `metrics.jsonl`. Call it for every step you want
    /// kept (see [`RecordPolicy::wants_metrics`]).
    pub fn log_metrics(&mut self, step: u64, metrics: &Metrics) -> Result<(), Error> {
        let line = metrics.to_line(step);
        self.metrics
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.dir.join(METRICS_FILE), e))
    }

    /// Appends one line to `tensors.jsonl`, without the tensor's shape.
    pub fn log_tensor(&mut self, step: u64, name: &str, kind: TensorKind, stats: &TensorStats) -> Result<(), Error> {
        self.write_tensor_line(TensorRecord { step, name: name.to_string(), kind, shape: None, span: None, stats: *stats })
    }

    /// Appends one line to `tensors.jsonl` with the tensor's shape, from which
    /// the analyzer takes a weight's fan-in.
    pub fn log_tensor_shaped(&mut self, step: u64, name: &str, kind: TensorKind, shape: &[usize], stats: &TensorStats) -> Result<(), Error> {
        let shape = Some(shape.iter().map(|&d| d as u64).collect());
        self.write_tensor_line(TensorRecord { step, name: name.to_string(), kind, shape, span: None, stats: *stats })
    }

    fn write_tensor_line(&mut self, record: TensorRecord) -> Result<(), Error> {
        let mut line = serde_json::to_string(&record).map_err(Error::Json)?;
        line.push('\n');
        let path = self.dir.join(TENSORS_FILE);
        if self.tensors.is_none() {
            self.tensors = Some(open_append(&path)?);
        }
        let file = self.tensors.as_mut().ok_or_else(|| Error::io(&path, std::io::ErrorKind::NotFound.into()))?;
        file.write_all(line.as_bytes()).map_err(|e| Error::io(&path, e))
    }

    /// Writes `checkpoints/step-NNNNNNNN.safetensors` whole or not at all.
    /// Names follow the format: parameters bare, `grad/<param>`, `act/<layer>`,
    /// `input`, `labels`, `logits`.
    pub fn write_checkpoint(&mut self, step: u64, tensors: &[(String, HostTensor)]) -> Result<PathBuf, Error> {
        let folder = self.dir.join(CHECKPOINT_DIR);
        fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        let path = folder.join(checkpoint_file_name(step));
        // One key only: safetensors writes the metadata map in hash order, and a
        // checkpoint should be byte-for-byte reproducible.
        let metadata: HashMap<String, String> = [("step".to_string(), step.to_string())].into_iter().collect();
        let views = tensors.iter().map(|(name, tensor)| (name.as_str(), tensor));
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(Error::SafeTensors)?;
        write_atomically(&path, &bytes)?;
        Ok(path)
    }

    /// Marks the run `finished`.
    pub fn finish(mut self) -> Result<(), Error> {
        self.set_status(RunStatus::Finished)
    }

    /// Marks the run `crashed`, for a training loop that caught its own failure.
    pub fn mark_crashed(mut self) -> Result<(), Error> {
        self.set_status(RunStatus::Crashed)
    }

    fn set_status(&mut self, status: RunStatus) -> Result<(), Error> {
        self.done = true;
        self.meta.status = Some(status);
        write_atomically(&self.dir.join(RUN_FILE), &run_json_bytes(&self.meta)?)
    }
}

impl Drop for Recorder {
    /// A training loop that panics leaves a `crashed` run, not a `running` one.
    fn drop(&mut self) {
        if !self.done && std::thread::panicking() {
            let _ = self.set_status(RunStatus::Crashed);
        }
    }
}

fn run_json_bytes(meta: &RunMeta) -> Result<Vec<u8>, Error> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(Error::Json)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn open_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))
}

/// Writes `path.tmp`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_use_bare_nonfinite_tokens() {
        let line = Metrics::new()
            .scalar("loss", f64::NAN)
            .scalar("lr", 0.001)
            .scalar("gap", f64::NEG_INFINITY)
            .scalar("odd \"key\"", 1.0)
            .counts("label_counts", vec![3, 0, 5])
            .to_line(42);
        assert_eq!(
            line,
            "{\"step\":42,\"loss\":NaN,\"lr\":0.001,\"gap\":-Infinity,\"odd \\\"key\\\"\":1.0,\"label_counts\":[3,0,5]}\n"
        );
    }

    #[test]
    fn refuses_to_overwrite_a_run() {
        let dir = tempfile::tempdir().unwrap();
        Recorder::create(dir.path(), RunMeta::new("a")).unwrap().finish().unwrap();
        let err = Recorder::create(dir.path(), RunMeta::new("b")).unwrap_err();
        assert!(matches!(err, Error::RunExists(_)), "{err}");
    }
}
