//! MLflow's file store: a run folder `mlruns/<experiment>/<run>/` with
//! `meta.yaml`, `metrics/<key>` (lines of `timestamp value step`),
//! `params/<name>` and `tags/<name>` (one value per file). An experiment
//! folder or an `mlruns/` root holds many runs: `audit` reads those.
//!
//! The SQLite tracking store (`mlflow.db`, MLflow 3's default) holds the same
//! in tables (`runs`, `metrics`, `params`, `tags`); it is opened read-only.
//! One of its runs is addressed as `mlflow.db/<run id>`; a database of one
//! run is that run, and `audit` lists every run of a database.

use super::{hyperparameters, metrics_run, ImportOptions, Points, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::{Framework, RunMeta, RunStatus};
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
    if let Some((database, run_id)) = database_run(path)? {
        return load_database_run(&database, &run_id, path);
    }
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
    points.standardize_names();
    let meta = read_meta(path, &mut warnings);
    metrics_run(path, SourceFormat::Mlflow, meta, points, warnings)
}

/// Whether a file is an SQLite database, from its first bytes.
pub fn is_database(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"SQLite format 3\0"
}

fn open_database(path: &Path) -> Result<rusqlite::Connection, LoadError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags).map_err(|e| database_error(path, e))
}

fn database_error(path: &Path, e: rusqlite::Error) -> LoadError {
    LoadError::Import { path: path.to_path_buf(), message: format!("not readable as an MLflow database: {e}") }
}

/// The runs of an MLflow database that are not deleted, as `(run id, name)`.
pub fn database_runs(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let connection = open_database(path)?;
    let mut statement = connection
        .prepare("SELECT run_uuid, COALESCE(name, '') FROM runs WHERE lifecycle_stage != 'deleted' ORDER BY start_time, run_uuid")
        .map_err(|e| database_error(path, e))?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))).map_err(|e| database_error(path, e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| database_error(path, e))
}

/// `(database, run id)` when `path` names a database run: the database
/// itself when it holds one run, or `DATABASE/RUN_ID`.
fn database_run(path: &Path) -> Result<Option<(std::path::PathBuf, String)>, LoadError> {
    if path.is_file() && is_database(path) {
        let runs = database_runs(path)?;
        return match runs.as_slice() {
            [(id, _)] => Ok(Some((path.to_path_buf(), id.clone()))),
            [] => Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons: vec!["the database holds no run".into()] }),
            several => Err(LoadError::Ambiguous {
                path: path.to_path_buf(),
                found: several.iter().take(10).map(|(id, name)| format!("{} ({name})", path.join(id).display())).collect(),
                more: several.len().saturating_sub(10),
            }),
        };
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(id)) if !path.exists() && parent.is_file() && is_database(parent) => {
            Ok(Some((parent.to_path_buf(), id.to_string_lossy().into_owned())))
        }
        _ => Ok(None),
    }
}

fn load_database_run(database: &Path, run_id: &str, source: &Path) -> Result<Run, LoadError> {
    let connection = open_database(database)?;
    let error = |e| database_error(database, e);
    let found: Option<(String, String)> = connection
        .query_row("SELECT COALESCE(name, ''), COALESCE(status, '') FROM runs WHERE run_uuid = ?1", [run_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(Some)
        .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
        .map_err(error)?;
    let Some((name, status)) = found else {
        return Err(LoadError::Import { path: source.to_path_buf(), message: format!("no run {run_id:?} in the database") });
    };
    let mut points = Points::default();
    let mut statement = connection
        .prepare("SELECT key, value, step, is_nan FROM metrics WHERE run_uuid = ?1 ORDER BY key, step, timestamp")
        .map_err(error)?;
    let rows = statement
        .query_map([run_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, f64>(1)?, row.get::<_, i64>(2)?, row.get::<_, bool>(3)?)))
        .map_err(error)?;
    let mut bad_rows = 0;
    for row in rows {
        match row {
            // MLflow stores NaN as is_nan with a value of 0.
            Ok((key, value, step, is_nan)) if step >= 0 => points.push(&key, step as u64, if is_nan { f64::NAN } else { value }),
            _ => bad_rows += 1,
        }
    }
    let mut warnings = Vec::new();
    if bad_rows > 0 {
        warnings.push(Warning::new(database, None, format!("{bad_rows} metric row(s) of run {run_id} could not be read and were left out")));
    }
    points.standardize_names();
    let pairs = |table: &str| -> Result<Vec<(String, String)>, LoadError> {
        let mut statement = connection.prepare(&format!("SELECT key, COALESCE(value, '') FROM {table} WHERE run_uuid = ?1 ORDER BY key")).map_err(error)?;
        let rows = statement.query_map([run_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))).map_err(error)?;
        Ok(rows.flatten().take(MAX_METRIC_FILES).collect())
    };
    let mut meta = RunMeta::new(if name.is_empty() { run_id.to_string() } else { name });
    meta.framework = Some(Framework { name: Some("mlflow".into()), ..Default::default() });
    meta.status = match status.as_str() {
        "FINISHED" => Some(RunStatus::Finished),
        "FAILED" => Some(RunStatus::Crashed),
        "RUNNING" | "KILLED" => Some(RunStatus::Running),
        _ => None,
    };
    meta.hyperparameters = Some(hyperparameters(pairs("params")?));
    metrics_run(source, SourceFormat::Mlflow, meta, points, warnings)
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
    meta.hyperparameters = Some(hyperparameters(read_values(&path.join(PARAMS_DIR))));
    meta
}
