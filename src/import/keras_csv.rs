//! Keras' `CSVLogger`, and a `History` exported as CSV: one row per epoch,
//! with or without an `epoch` column, `acc` or `accuracy`. `CSVLogger(append=True)`
//! appends each fit to the same file: the epoch starting again begins a new
//! fit, and each fit is a run of its own.

use super::{choose_fit, metrics_run, name_of, read_csv, Fit, ImportOptions, SourceFormat};
use crate::error::LoadError;
use crate::run::Run;
use postmortem_recorder::{Framework, RunMeta};
use std::path::Path;

pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let csv = read_csv(path)?;
    let mut warnings = Vec::new();
    csv.warn(path, &mut warnings);
    let epoch_column = csv.header.iter().position(|h| h.eq_ignore_ascii_case("epoch"));
    // Names are read by their words once the fit is chosen.
    let targets: Vec<Option<&String>> = csv.header.iter().enumerate().map(|(i, h)| (Some(i) != epoch_column).then_some(h)).collect();
    let mut fits: Vec<Fit> = Vec::new();
    let mut previous_epoch: Option<u64> = None;
    for (row, (line, values)) in csv.rows.iter().enumerate() {
        // The epoch is the step; without an epoch column, the row's place.
        let epoch = match epoch_column {
            Some(c) => values[c].and_then(super::whole),
            None => Some(row as u64),
        };
        let Some(epoch) = epoch else { continue };
        if fits.is_empty() || previous_epoch.is_some_and(|p| epoch <= p) {
            fits.push(Fit { lines: (*line, *line), ..Default::default() });
        }
        previous_epoch = Some(epoch);
        let Some(fit) = fits.last_mut() else { continue };
        fit.lines.1 = *line;
        fit.points.entry(epoch);
        for (value, target) in values.iter().zip(&targets) {
            if let (Some(value), Some(target)) = (value, target) {
                fit.points.push(target, epoch, *value);
            }
        }
    }
    let mut fit = choose_fit(fits, options, path, &mut warnings)?;
    fit.points.standardize_names();
    let mut meta = RunMeta::new(name_of(path));
    meta.framework = Some(Framework { name: Some("keras".into()), ..Default::default() });
    metrics_run(path, SourceFormat::KerasCsv, meta, fit.points, warnings)
}
