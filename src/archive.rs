//! What an audit concluded about an archive: one row per run and the sweeps
//! among them. Plain data, written by [`crate::audit`] and rendered by the
//! exporters (`index.html`, `summary.csv`, `summary.json`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One run of the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Path under the archive, `/`-separated.
    pub run: String,
    pub name: String,
    /// `clean`, `info`, `warning`, `error`, or `unreadable`.
    pub verdict: String,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    /// Rules that fired, in checklist order.
    pub rules: Vec<String>,
    pub final_loss: Option<f64>,
    pub last_step: Option<u64>,
    pub incomplete: bool,
    /// The run's report, relative to the output folder.
    pub report: Option<String>,
    /// Why the run could not be analyzed.
    pub error: Option<String>,
    /// What was wrong with the run's files but did not stop its analysis
    /// (files left out, lines and fields skipped).
    #[serde(default)]
    pub input_warnings: Vec<String>,
    /// `run.json` hyperparameters, for sweeps.
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    /// Sizes and modification times of the run's files (`--changed`).
    #[serde(default)]
    pub fingerprint: String,
    /// `dataset.standard` of the run.
    #[serde(default)]
    pub standard_dataset: Option<bool>,
    /// For a run told to train a control on a standard corpus: sibling runs
    /// (same folder) that are such a control.
    #[serde(default)]
    pub controls: Vec<String>,
}

/// Everything the audit found, for the exporters.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub archive: String,
    pub rows: Vec<AuditRow>,
    pub sweeps: Vec<Sweep>,
    /// Runs left out by `--since`.
    pub left_out: usize,
    /// Runs whose previous row was reused (`--changed`).
    pub reused: usize,
}

impl Audit {
    /// Runs per verdict, in a fixed order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        ["clean", "info", "warning", "error", "unreadable"].into_iter().map(|v| (v, self.rows.iter().filter(|r| r.verdict == v).count())).collect()
    }
}

/// Runs that share every hyperparameter but one numeric one.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub parameter: String,
    /// `(value, final loss, run)` in increasing value.
    pub points: Vec<(f64, Option<f64>, String)>,
    pub best: Option<String>,
    /// Runs of the sweep whose loss diverged or became non-finite.
    pub diverged: Vec<String>,
}
