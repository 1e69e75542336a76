//! A recorded run, loaded for analysis: `run.json`, the metrics as a polars
//! DataFrame, the tensor statistics, and the checkpoint headers. Nothing in the
//! run directory is ever written; every file is opened read-only.

pub mod checkpoint;
pub mod metrics;

use crate::error::{DataSource, LoadError, Warning};
use crate::jsonl;
use checkpoint::Checkpoint;
use metrics::MetricsTable;
use postmortem_recorder::format::{
    parse_checkpoint_file_name, CHECKPOINT_DIR, FORMAT_VERSION, METRICS_FILE, RUN_FILE, TENSORS_FILE,
};
use postmortem_recorder::{RunMeta, RunStatus, TensorRecord};
use std::path::{Path, PathBuf};

/// The most classes postmortem counts, more than any vocabulary in use
/// (250,000 tokens): `task.num_classes` sizes per-class counts, and a larger
/// number from a file is not believed.
pub const MAX_CLASSES: usize = 1 << 20;

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
    /// only weights. A file that cannot be read costs only its own data: it
    /// becomes a warning that names it, and the rest is analyzed. The load
    /// fails only when there is no run at `path`, the run is of a format this
    /// version does not read, or none of its data can be read.
    pub fn load(path: &Path) -> Result<Run, LoadError> {
        let info = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
        if info.is_file() {
            return Self::load_bare_checkpoint(path);
        }
        let run_file = path.join(RUN_FILE);
        let metrics_file = path.join(METRICS_FILE);
        let tensors_file = path.join(TENSORS_FILE);
        let checkpoint_dir = path.join(CHECKPOINT_DIR);
        let present = |p: &Path| p.symlink_metadata().is_ok();
        if !present(&run_file) && !present(&metrics_file) && !present(&tensors_file) && !present(&checkpoint_dir) {
            return Err(LoadError::NotARun { path: path.to_path_buf() });
        }
        let mut warnings = Vec::new();
        let meta = load_meta(&run_file, &mut warnings)?;
        // Metrics, tensor statistics and checkpoints: whatever can be read.
        let mut reasons = Vec::new();
        let metrics = if present(&metrics_file) {
            load_or_warn(&metrics_file, DataSource::Metrics, &mut reasons, &mut warnings, |w| metrics::load(&metrics_file, w))
        } else {
            reasons.push(format!("{METRICS_FILE} is missing"));
            warnings.push(Warning::unreadable(&metrics_file, DataSource::Metrics, MISSING));
            None
        };
        let tensors = present(&tensors_file)
            .then(|| load_or_warn(&tensors_file, DataSource::TensorStats, &mut reasons, &mut warnings, |w| load_tensor_records(&tensors_file, w)))
            .flatten();
        let (checkpoints, unreadable_checkpoints) = load_checkpoints(&checkpoint_dir, &mut warnings);
        reasons.extend(unreadable_checkpoints);
        if metrics.is_none() && tensors.is_none() && checkpoints.is_empty() {
            return Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons });
        }
        if meta.status == Some(RunStatus::Running) || meta.status.is_none() {
            warnings.push(Warning::new(
                &run_file,
                None,
                match meta.status {
                    Some(_) => "status is \"running\": the run did not finish (still going, or killed); analyzing what it recorded",
                    None => "no status: whether the run finished is unknown",
                },
            ));
        }
        Ok(Run {
            source: path.to_path_buf(),
            meta,
            metrics: metrics.unwrap_or_else(MetricsTable::empty),
            tensors: tensors.unwrap_or_default(),
            checkpoints,
            warnings,
        })
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

/// Loads a file of the run; one that cannot be read becomes a warning that
/// names it and what the analysis goes on without, and a reason in case
/// nothing at all can be read.
fn load_or_warn<T>(
    file: &Path,
    source: DataSource,
    reasons: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
    load: impl FnOnce(&mut Vec<Warning>) -> Result<T, LoadError>,
) -> Option<T> {
    match load(warnings) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            reasons.push(e.to_string());
            warnings.push(Warning::unreadable(file, source, error_text(&e, file)));
            None
        }
    }
}

/// Why a file every run should have was not read.
const MISSING: &str = "missing (every run should have one; see docs/FORMAT.md)";

/// The most fields of `run.json` left out before giving up on the rest.
const MAX_FIELDS_DROPPED: usize = 64;

/// Reads `run.json`. Every field but `format` is optional, so a field of the
/// wrong type or value is left out with a warning that names it, and a file
/// that is not JSON at all costs only the metadata. Only a `format` of
/// another version is an error: its fields may mean something else.
pub fn load_meta(path: &Path, warnings: &mut Vec<Warning>) -> Result<RunMeta, LoadError> {
    let unknown = || RunMeta { name: None, ..RunMeta::new(String::new()) };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(Warning::unreadable(path, DataSource::Metadata, MISSING));
            return Ok(unknown());
        }
        Err(e) => {
            warnings.push(Warning::unreadable(path, DataSource::Metadata, e));
            return Ok(unknown());
        }
    };
    let mut value = match jsonl::parse_value(&bytes) {
        Ok(value) => value,
        Err(why) => {
            warnings.push(Warning::unreadable(path, DataSource::Metadata, why));
            return Ok(unknown());
        }
    };
    let Some(object) = value.as_object_mut() else {
        warnings.push(Warning::unreadable(path, DataSource::Metadata, "not a JSON object"));
        return Ok(unknown());
    };
    match object.get("format") {
        Some(serde_json::Value::String(format)) if format == FORMAT_VERSION => {}
        Some(serde_json::Value::String(format)) => {
            return Err(LoadError::UnsupportedFormat { path: path.to_path_buf(), found: format.clone(), expected: FORMAT_VERSION })
        }
        found => {
            let found = found.map_or_else(|| "missing".to_string(), |f| f.to_string());
            warnings.push(Warning::new(path, None, format!("\"format\" is {found}; read as {FORMAT_VERSION}")));
            object.insert("format".into(), FORMAT_VERSION.into());
        }
    }
    // Each pass names the first field that does not fit; it is dropped and
    // the rest read again.
    for _ in 0..MAX_FIELDS_DROPPED {
        match serde_path_to_error::deserialize::<_, RunMeta>(&value) {
            Ok(mut meta) => {
                let classes = meta.task.as_mut().and_then(|t| t.num_classes.take_if(|c| *c > MAX_CLASSES as u64));
                if let Some(classes) = classes {
                    warnings.push(Warning::new(
                        path,
                        None,
                        format!("field \"task.num_classes\" ignored: {classes} is more classes than postmortem counts ({MAX_CLASSES})"),
                    ));
                }
                return Ok(meta);
            }
            Err(e) => {
                let field = e.path().to_string();
                let why = e.into_inner();
                if field == "." || !drop_field(&mut value, &field) {
                    warnings.push(Warning::unreadable(path, DataSource::Metadata, why));
                    return Ok(unknown());
                }
                warnings.push(Warning::new(path, None, format!("field \"{field}\" ignored: {}", in_plain_words(&why))));
            }
        }
    }
    warnings.push(Warning::unreadable(path, DataSource::Metadata, format!("more than {MAX_FIELDS_DROPPED} fields do not fit the format")));
    Ok(unknown())
}

/// Removes the value at a path as serde_path_to_error writes it
/// (`model.layers[2].activation`); false when there is none.
fn drop_field(value: &mut serde_json::Value, path: &str) -> bool {
    let mut steps: Vec<Result<usize, &str>> = Vec::new();
    for part in path.split('.') {
        let (key, indices) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            steps.push(Err(key));
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            match index.trim_end_matches(']').parse() {
                Ok(i) => steps.push(Ok(i)),
                Err(_) => return false,
            }
        }
    }
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut at = value;
    for step in parents {
        let next = match step {
            Ok(i) => at.get_mut(*i),
            Err(key) => at.get_mut(*key),
        };
        match next {
            Some(next) => at = next,
            None => return false,
        }
    }
    match (last, at) {
        (Ok(i), serde_json::Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        (Err(key), serde_json::Value::Object(map)) => map.remove(*key).is_some(),
        _ => false,
    }
}

/// A serde error about a file's field in the words of JSON and the format,
/// not of Rust types: "expected a non-negative integer", not "expected u64".
fn in_plain_words(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    let mut plain = text.replace("invalid type: map", "invalid type: an object").replace("invalid type: sequence", "invalid type: an array");
    for (rust, json) in [
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected string or map", "expected a string"),
        ("expected a string or map", "expected a string"),
        ("expected a map", "expected an object"),
        ("unknown variant", "unknown value"),
    ] {
        plain = plain.replace(rust, json);
    }
    if let Some(rest) = plain.strip_prefix("expected struct ") {
        return format!("expected an object ({rest})");
    }
    match plain.split_once(", expected struct ") {
        Some((found, _)) => format!("{found}, expected an object"),
        None => match plain.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            Some(name) => format!("the field \"{name}\" is missing"),
            None => plain,
        },
    }
}

/// An error's text without the path the warning already names.
fn error_text(error: &LoadError, path: &Path) -> String {
    let text = error.to_string();
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).map(str::to_string).unwrap_or(text)
}

fn load_tensor_records(path: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<TensorRecord>, LoadError> {
    let mut records = Vec::new();
    let line_warnings = jsonl::read_objects(path, |_, object| {
        let value = serde_json::Value::Object(object);
        let record: TensorRecord = serde_path_to_error::deserialize(&value).map_err(|e| {
            let field = e.path().to_string();
            let why = in_plain_words(&e.into_inner());
            if field == "." { why } else { format!("\"{field}\": {why}") }
        })?;
        records.push(record);
        Ok(())
    })?;
    warnings.extend(line_warnings);
    Ok(records)
}

/// The readable checkpoints in step order, and why each other one is not
/// (each also a warning).
fn load_checkpoints(folder: &Path, warnings: &mut Vec<Warning>) -> (Vec<Checkpoint>, Vec<String>) {
    let mut unreadable = Vec::new();
    if folder.symlink_metadata().is_err() {
        return (Vec::new(), unreadable);
    }
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) => {
            warnings.push(Warning::unreadable(folder, DataSource::Checkpoints, &e));
            unreadable.push(format!("{}: {e}", folder.display()));
            return (Vec::new(), unreadable);
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warnings.push(Warning::unreadable(folder, DataSource::Checkpoints, e));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if parse_checkpoint_file_name(&name).is_some() {
            paths.push(entry.path());
        } else if name.ends_with(".tmp") {
            warnings.push(Warning::new(entry.path(), None, "a checkpoint that was still being written; ignored"));
        }
    }
    paths.sort();
    let mut checkpoints = Vec::new();
    for path in paths {
        match Checkpoint::open(&path) {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(e) => {
                unreadable.push(e.to_string());
                warnings.push(Warning::unreadable(&path, DataSource::Checkpoints, error_text(&e, &path)));
            }
        }
    }
    checkpoints.sort_by_key(|c| c.step);
    (checkpoints, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_in_the_words_of_json() {
        let error = |text: &str| in_plain_words(&serde_json::from_str::<TensorRecord>(text).unwrap_err());
        let stats = r#""count":1,"mean":0,"std":0,"min":0,"max":0,"abs_mean":0,"l2":0,"zero_frac":0,"nonfinite":0"#;
        assert_eq!(error(&format!(r#"{{"step":-1,"name":"w","kind":"weight",{stats}}}"#)), "invalid value: integer `-1`, expected a non-negative integer");
        assert!(error(&format!(r#"{{"step":1,"name":"w","kind":"bias",{stats}}}"#)).starts_with("unknown value `bias`, expected one of `weight`"));
        assert_eq!(error(&format!(r#"{{"step":1,"kind":"weight",{stats}}}"#)), "the field \"name\" is missing");
        assert_eq!(error(&format!(r#"{{"step":1,"name":"w","kind":"weight","shape":"3x4",{stats}}}"#)), "invalid type: string \"3x4\", expected an array");
        assert_eq!(error("[1]"), "invalid type: an array, expected an object");
    }
}
