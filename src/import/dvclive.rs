//! DVCLive's output folder: `dvclive/plots/metrics/**/NAME.tsv`, one file
//! per metric (`step` and the value, sometimes a `timestamp` too), named by
//! its path under `plots/metrics` (`train/loss`, `val/synth/loss`), with
//! `params.yaml` beside them.

use super::{metrics_run, name_within, ImportOptions, Points, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::RunMeta;
use std::path::{Path, PathBuf};

/// DVCLive's default output folder.
pub const DIR: &str = "dvclive";
/// Metric files at most: a folder of many more is no DVCLive run.
const MAX_FILES: usize = 4096;

/// The `plots/metrics` folder of a DVCLive output, given it or the folder
/// that holds `dvclive/`.
fn metrics_dir(dir: &Path) -> Option<PathBuf> {
    [dir.join(DIR), dir.to_path_buf()].into_iter().map(|base| base.join("plots").join("metrics")).find(|m| m.is_dir())
}

/// Whether a folder is (or holds, as `dvclive/`) a DVCLive output.
pub fn is_run_dir(dir: &Path) -> bool {
    metrics_dir(dir).is_some()
}

pub fn load(path: &Path, _options: &ImportOptions) -> Result<Run, LoadError> {
    let metrics = metrics_dir(path).ok_or_else(|| LoadError::Import { path: path.to_path_buf(), message: "no dvclive/plots/metrics folder".into() })?;
    let mut warnings: Vec<Warning> = Vec::new();
    let mut points = Points::default();
    let files = walkdir::WalkDir::new(&metrics).follow_links(false).max_depth(8).sort_by_file_name().into_iter().flatten();
    for entry in files.filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "tsv")).take(MAX_FILES) {
        let file = entry.path();
        let name = file.strip_prefix(&metrics).unwrap_or(file).with_extension("").to_string_lossy().replace('\\', "/");
        if let Err(e) = read_tsv(file, &name, &mut points) {
            warnings.push(Warning::new(file, None, format!("not read: {e}")));
        }
    }
    points.standardize_names();
    let root = metrics.parent().and_then(Path::parent).unwrap_or(path);
    let mut meta = RunMeta::new(name_within(root, DIR));
    super::lightning_csv::read_hparams(&root.join("params.yaml"), &mut meta, &mut warnings);
    metrics_run(path, SourceFormat::Dvclive, meta, points, warnings)
}

/// One metric's file: its `step` column and its value column (the last that
/// is neither the step nor a timestamp).
fn read_tsv(file: &Path, name: &str, points: &mut Points) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b'\t').flexible(true).from_path(file).map_err(|e| e.to_string())?;
    let header: Vec<String> = reader.headers().map_err(|e| e.to_string())?.iter().map(|h| h.trim().to_string()).collect();
    let step = header.iter().position(|h| h == "step").ok_or("no step column")?;
    let value = header.iter().rposition(|h| h != "step" && h != "timestamp").ok_or("no value column")?;
    for record in reader.records().flatten() {
        let (Some(s), Some(v)) = (record.get(step).and_then(|s| s.trim().parse::<u64>().ok()), record.get(value).and_then(|v| crate::jsonl::text_number(v.trim()))) else {
            continue;
        };
        points.push_resuming(name, s, v);
    }
    Ok(())
}
