//! Lightning's `CSVLogger`: `lightning_logs/version_N/metrics.csv`, with
//! `hparams.yaml` beside it. Rows are sparse: step rows (`train_loss_step`)
//! and epoch or validation rows (`train_loss_epoch`, `val_loss`) interleave,
//! each with the cells of the others empty; every row has the global `step`.

use super::{hyperparameters, mark_imported, name_of, name_within, ImportOptions, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::{Framework, RunMeta};
use std::path::Path;

/// The file Lightning writes.
pub const METRICS_CSV: &str = "metrics.csv";
const HPARAMS_FILE: &str = "hparams.yaml";

pub fn load(path: &Path, _options: &ImportOptions) -> Result<Run, LoadError> {
    let (file, dir) = if path.is_dir() { (path.join(METRICS_CSV), path.to_path_buf()) } else { (path.to_path_buf(), path.parent().unwrap_or(Path::new(".")).to_path_buf()) };
    let header: Vec<String> = csv::Reader::from_path(&file)
        .and_then(|mut r| r.headers().cloned())
        .map_err(|e| LoadError::Import { path: file.clone(), message: format!("no CSV header: {e}") })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let Some(step_column) = header.iter().position(|h| h == "step") else {
        return Err(LoadError::Import { path: file, message: "no \"step\" column: not a Lightning CSVLogger file (--from keras-csv reads per-epoch CSVs)".into() });
    };
    let choice = super::names::choose(header.iter().enumerate().filter(|(i, _)| *i != step_column).map(|(_, h)| h.as_str()));
    let names: Vec<Option<String>> = header.iter().enumerate().map(|(i, h)| if i == step_column { None } else { choice.mapping.get(h).cloned() }).collect();
    let mut warnings: Vec<Warning> = choice.notes.iter().map(|note| super::read_as(&file, note)).collect();
    let mut metrics = crate::run::metrics::load_csv(&file, step_column, &names, &mut warnings)?;
    metrics.origins = choice.origins();
    let mut meta = RunMeta::new(run_name(&dir, &file));
    meta.framework = Some(Framework { name: Some("lightning".into()), ..Default::default() });
    read_hparams(&dir.join(HPARAMS_FILE), &mut meta, &mut warnings);
    if metrics.rows() == 0 {
        return Err(LoadError::NothingReadable { path: file, reasons: vec!["no row with a step".into()] });
    }
    mark_imported(&mut meta, SourceFormat::LightningCsv);
    Ok(Run { source: file, meta, metrics, tensors: Vec::new(), checkpoints: Vec::new(), warnings })
}

/// `version_N` alone says little: the folder above names the experiment.
fn run_name(dir: &Path, file: &Path) -> String {
    match name_within(dir, "version_") {
        name if name.is_empty() => name_of(file),
        name => name,
    }
}

/// Learning rate, batch size and epochs from `hparams.yaml`, where the
/// model's `save_hyperparameters()` wrote them under common names.
pub(crate) fn read_hparams(path: &Path, meta: &mut RunMeta, warnings: &mut Vec<Warning>) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let docs = match yaml_rust2::YamlLoader::load_from_str(&text) {
        Ok(docs) => docs,
        Err(e) => {
            warnings.push(Warning::new(path, None, format!("not read: {e}")));
            return;
        }
    };
    let Some(yaml_rust2::Yaml::Hash(map)) = docs.into_iter().next() else { return };
    // Numbers only: the model's own arguments, of which a few are names the
    // format knows.
    let numbers = map.into_iter().filter_map(|(key, value)| {
        let number = value.as_f64().or_else(|| value.as_i64().map(|v| v as f64))?;
        Some((key.as_str()?.to_string(), number.to_string()))
    });
    meta.hyperparameters = Some(hyperparameters(numbers));
}
