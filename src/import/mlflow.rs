//! MLflow's file store: a run folder `mlruns/<experiment>/<run>/` with
//! `meta.yaml`, `metrics/<key>` (lines of `timestamp value step`),
//! `params/<name>` and `tags/<name>` (one value per file). An experiment
//! folder or an `mlruns/` root holds many runs: `audit` reads those.

use super::{metrics_run, standard_names, ImportOptions, Points, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::{Framework, Hyperparameters, RunMeta, RunStatus};
use std::path::Path;

const META_FILE: &str = "meta.yaml";
const METRICS_DIR: &str = "metrics";
const PARAMS_DIR: &str = "params";
const TAGS_DIR: &str = "tags";
/// The most metric files read from one run.
const MAX_METRIC_FILES: usize = 4096;

/// A run folder has `meta.yaml` and `metrics/`; an experiment folder only the first.
pub fn is_run_dir(dir: &Path) -> bool {
    dir.join(META_FILE).is_file() && dir.join(METRICS_DIR).is_dir()
}

pub fn load(path: &Path, _options: &ImportOptions) -> Result<Run, LoadError> {
    if !is_run_dir(path) {
        return Err(LoadError::Import { path: path.to_path_buf(), message: "not an MLflow run folder (meta.yaml and metrics/)".into() });
    }
    let mut warnings = Vec::new();
    let mut points = Points::default();
    let metrics_dir = path.join(METRICS_DIR);
    // Keys with '/' are folders under metrics/.
    let files: Vec<_> = walkdir::WalkDir::new(&metrics_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .take(MAX_METRIC_FILES)
        .collect();
    let mut bad_lines = 0;
    for entry in &files {
        let key = entry.path().strip_prefix(&metrics_dir).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        let text = match std::fs::read_to_string(entry.path()) {
            Ok(text) => text,
            Err(e) => {
                warnings.push(Warning::new(entry.path(), None, format!("not read: {e}")));
                continue;
            }
        };
        for (index, line) in text.lines().enumerate() {
            let mut fields = line.split_whitespace();
            let (_timestamp, value, step) = (fields.next(), fields.next(), fields.next());
            let value = value.and_then(crate::jsonl::text_number);
            // Old stores have no step column: the line's place stands in.
            let step = match step {
                Some(step) => step.parse::<u64>().ok(),
                None => Some(index as u64),
            };
            match (value, step) {
                (Some(value), Some(step)) => points.push(&key, step, value),
                _ if line.trim().is_empty() => {}
                _ => bad_lines += 1,
            }
        }
    }
    if bad_lines > 0 {
        warnings.push(Warning::new(&metrics_dir, None, format!("{bad_lines} metric line(s) that are not `timestamp value step` were left out")));
    }
    let mapping = standard_names(points.names().map(str::to_string).collect::<Vec<_>>().iter().map(String::as_str));
    points.rename(&mapping);
    let meta = read_meta(path, &mut warnings);
    metrics_run(path, SourceFormat::Mlflow, meta, points, warnings)
}

/// One value per file, as params/ and tags/ hold them.
fn read_values(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut values: Vec<(String, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .take(MAX_METRIC_FILES)
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).ok()?.trim().to_string())))
        .collect();
    values.sort();
    values
}

fn read_meta(path: &Path, warnings: &mut Vec<Warning>) -> RunMeta {
    let mut meta = RunMeta::new(super::name_of(path));
    meta.framework = Some(Framework { name: Some("mlflow".into()), ..Default::default() });
    let meta_file = path.join(META_FILE);
    match std::fs::read_to_string(&meta_file).map_err(|e| e.to_string()).and_then(|t| yaml_rust2::YamlLoader::load_from_str(&t).map_err(|e| e.to_string())) {
        Ok(docs) => {
            if let Some(doc) = docs.first() {
                if let Some(name) = doc["run_name"].as_str().filter(|n| !n.is_empty()) {
                    meta.name = Some(name.to_string());
                }
                // RunStatus of MLflow: 1 running, 2 scheduled, 3 finished, 4 failed, 5 killed.
                meta.status = match doc["status"].as_i64() {
                    Some(3) => Some(RunStatus::Finished),
                    Some(1) => Some(RunStatus::Running),
                    Some(4) => Some(RunStatus::Crashed),
                    Some(5) => Some(RunStatus::Running),
                    _ => None,
                };
            }
        }
        Err(why) => warnings.push(Warning::new(&meta_file, None, format!("not read: {why}"))),
    }
    for (tag, value) in read_values(&path.join(TAGS_DIR)) {
        if tag == "mlflow.runName" && !value.is_empty() {
            meta.name = Some(value);
        }
    }
    let mut hyper = Hyperparameters::default();
    for (name, value) in read_values(&path.join(PARAMS_DIR)) {
        let number = value.parse::<f64>().ok();
        match (name.as_str(), number) {
            ("lr" | "learning_rate" | "opt_learning_rate", Some(n)) => hyper.learning_rate = Some(n),
            ("batch_size", Some(n)) => hyper.batch_size = super::whole(n),
            ("epochs" | "max_epochs", Some(n)) => hyper.epochs = super::whole(n),
            ("weight_decay", Some(n)) => hyper.weight_decay = Some(n),
            ("optimizer_name" | "opt_name" | "optimizer", _) => hyper.optimizer = Some(value),
            (_, Some(n)) => {
                hyper.extra.insert(name, n.into());
            }
            (_, None) => {
                hyper.extra.insert(name, value.into());
            }
        }
    }
    meta.hyperparameters = Some(hyper);
    meta
}
