//! A recorded run, loaded for analysis: `run.json`, the metrics as a polars
//! DataFrame, the tensor statistics, and the checkpoint headers. Nothing in the
//! run directory is ever written; every file is opened read-only.

pub mod checkpoint;
pub mod metrics;

use crate::error::{LoadError, Warning};
use crate::jsonl;
use checkpoint::Checkpoint;
use metrics::MetricsTable;
use postmortem_recorder::format::{
    parse_checkpoint_file_name, CHECKPOINT_DIR, FORMAT_VERSION, METRICS_FILE, RUN_FILE, TENSORS_FILE,
};
use postmortem_recorder::{RunMeta, RunStatus, TensorRecord};
use std::path::{Path, PathBuf};

/// Everything postmortem knows of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory, or the safetensors file of a bare checkpoint.
    pub source: PathBuf,
    pub meta: RunMeta,
    pub metrics: MetricsTable,
    /// Lines of `tensors.jsonl`, in file order.
    pub tensors: Vec<TensorRecord>,
    /// Checkpoint headers in step order.
    pub checkpoints: Vec<Checkpoint>,
    /// What was wrong with the input but did not stop the analysis.
    pub warnings: Vec<Warning>,
}

impl Run {
    /// Loads a run directory, or a bare `.safetensors` file as a run that has
    /// only weights.
    pub fn load(path: &Path) -> Result<Run, LoadError> {
        let info = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
        if info.is_file() {
            return Self::load_bare_checkpoint(path);
        }
        let run_file = path.join(RUN_FILE);
        if !run_file.exists() {
            return Err(LoadError::NotARun { path: path.to_path_buf() });
        }
        let meta = load_meta(&run_file)?;
        let mut warnings = Vec::new();
        let metrics_file = path.join(METRICS_FILE);
        if !metrics_file.exists() {
            return Err(LoadError::MissingFile { path: metrics_file });
        }
        let metrics = metrics::load(&metrics_file, &mut warnings)?;
        let tensors_file = path.join(TENSORS_FILE);
        let tensors = if tensors_file.exists() { load_tensor_records(&tensors_file, &mut warnings)? } else { Vec::new() };
        let checkpoints = load_checkpoints(&path.join(CHECKPOINT_DIR), &mut warnings)?;
        if meta.status == Some(RunStatus::Running) || meta.status.is_none() {
            warnings.push(Warning {
                file: run_file,
                line: None,
                message: match meta.status {
                    Some(_) => "status is \"running\": the run did not finish (still going, or killed); analyzing what it recorded".into(),
                    None => "no status: whether the run finished is unknown".into(),
                },
            });
        }
        Ok(Run { source: path.to_path_buf(), meta, metrics, tensors, checkpoints, warnings })
    }

    fn load_bare_checkpoint(path: &Path) -> Result<Run, LoadError> {
        let checkpoint = Checkpoint::open(path)?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut meta = RunMeta::new(name);
        meta.status = None;
        Ok(Run {
            source: path.to_path_buf(),
            meta,
            metrics: MetricsTable::empty(),
            tensors: Vec::new(),
            checkpoints: vec![checkpoint],
            warnings: Vec::new(),
        })
    }

    /// Whether the run says it finished.
    pub fn is_complete(&self) -> bool {
        self.meta.status == Some(RunStatus::Finished)
    }

    /// The run's name, or its directory's.
    pub fn name(&self) -> String {
        self.meta.name.clone().unwrap_or_else(|| {
            self.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        })
    }
}

/// Reads `run.json`; a wrong `format` or a field of the wrong type is an error
/// that names the field's line and column.
pub fn load_meta(path: &Path) -> Result<RunMeta, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
    let json_error = |e: serde_json::Error| LoadError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(json_error)?;
    let format = value.get("format");
    match format.and_then(|f| f.as_str()) {
        Some(FORMAT_VERSION) => {}
        _ => {
            return Err(LoadError::UnsupportedFormat {
                path: path.to_path_buf(),
                found: format.map_or_else(|| "missing".to_string(), |f| f.to_string()),
                expected: FORMAT_VERSION,
            })
        }
    }
    // Parse the text again rather than the value, so errors carry positions,
    // and name the field: serde's message alone can be as bare as "expected value".
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes)).map_err(|e| {
        let field = e.path().to_string();
        let error = e.into_inner();
        LoadError::Json { path: path.to_path_buf(), line: error.line(), column: error.column(), message: format!("in {field:?}: {error}") }
    })
}

fn load_tensor_records(path: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<TensorRecord>, LoadError> {
    let mut records = Vec::new();
    let line_warnings = jsonl::read_objects(path, |line, object| {
        let record: TensorRecord = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| LoadError::Line { path: path.to_path_buf(), line, message: e.to_string() })?;
        records.push(record);
        Ok(())
    })?;
    warnings.extend(line_warnings);
    Ok(records)
}

fn load_checkpoints(folder: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<Checkpoint>, LoadError> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(folder).map_err(|e| LoadError::io(folder, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::io(folder, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if parse_checkpoint_file_name(&name).is_some() {
            paths.push(entry.path());
        } else if name.ends_with(".tmp") {
            warnings.push(Warning {
                file: entry.path(),
                line: None,
                message: "a checkpoint that was still being written; ignored".into(),
            });
        }
    }
    paths.sort();
    let mut checkpoints = paths.iter().map(|p| Checkpoint::open(p)).collect::<Result<Vec<_>, _>>()?;
    checkpoints.sort_by_key(|c| c.step);
    Ok(checkpoints)
}
