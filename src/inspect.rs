//! `postmortem inspect PATH`: how a path was read, before any rule's verdict:
//! the format and why, each series with its role, its points, step range and
//! first and last values, the hyperparameters read, and what the rules that
//! could not run would need.

use crate::analysis::Analysis;
use crate::import::SourceFormat;
use crate::run::Run;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub source: String,
    /// The format read (`--from` names another).
    pub format: &'static str,
    /// Why this format: detected from the path, or named by `--from`.
    pub detected: String,
    pub series: Vec<SeriesInfo>,
    /// Hyperparameters and task facts as read (run.json's fields).
    pub hyperparameters: serde_json::Value,
    pub task: serde_json::Value,
    pub tensor_records: usize,
    pub checkpoints: usize,
    /// Rules that could not run, and what each would need.
    pub missing: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SeriesInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    pub points: usize,
    pub first_step: Option<u64>,
    pub last_step: Option<u64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
}

impl Inspection {
    pub fn of(run: &Run, format: SourceFormat, detected: String, analysis: &Analysis) -> Inspection {
        // Roles and source names as the summary gives them, with each
        // series' points read from the run.
        let series = analysis
            .run
            .metrics
            .iter()
            .filter(|m| !run.metrics.counts.contains_key(&m.name))
            .map(|m| {
                let points = run.metrics.series(&m.name).unwrap_or_default();
                SeriesInfo {
                    name: m.name.clone(),
                    role: m.role,
                    source_name: m.source_name.clone(),
                    points: points.len(),
                    first_step: points.first().map(|p| p.0),
                    last_step: points.last().map(|p| p.0),
                    first: points.first().map(|p| p.1),
                    last: points.last().map(|p| p.1),
                }
            })
            .collect();
        let missing = analysis
            .rules
            .iter()
            .filter(|r| r.status == crate::rules::Status::Skipped)
            .map(|r| (r.rule.to_string(), r.reason.clone().unwrap_or_default()))
            .collect();
        Inspection {
            source: run.source.display().to_string(),
            format: format.id(),
            detected,
            series,
            hyperparameters: serde_json::to_value(&run.meta.hyperparameters).unwrap_or_default(),
            task: serde_json::to_value(&run.meta.task).unwrap_or_default(),
            tensor_records: run.tensors.len(),
            checkpoints: run.checkpoints.len(),
            missing,
            warnings: run.warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}: {} ({})", self.source, self.format, self.detected);
        let _ = writeln!(out, "\nseries ({}):", self.series.len());
        let number = |v: Option<f64>| v.map_or("-".to_string(), crate::summary::format_number);
        for s in &self.series {
            let role = match (&s.role, &s.source_name) {
                (Some(role), Some(source)) => format!("  [{role}, from `{source}`]"),
                (Some(role), None) => format!("  [{role}]"),
                (None, _) => String::new(),
            };
            let steps = match (s.first_step, s.last_step) {
                (Some(a), Some(b)) => format!("steps {a}-{b}"),
                _ => "no steps".into(),
            };
            let _ = writeln!(out, "  {}{role}: {} points, {steps}, {} -> {}", s.name, s.points, number(s.first), number(s.last));
        }
        let _ = writeln!(out, "\ntensor statistics: {} records; checkpoints: {}", self.tensor_records, self.checkpoints);
        if !self.hyperparameters.is_null() {
            let _ = writeln!(out, "hyperparameters: {}", self.hyperparameters);
        }
        if !self.task.is_null() {
            let _ = writeln!(out, "task: {}", self.task);
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(out, "\nwarnings:");
            for w in &self.warnings {
                let _ = writeln!(out, "  {w}");
            }
        }
        if !self.missing.is_empty() {
            let _ = writeln!(out, "\nwhat the rules that cannot run would need:");
            for (rule, why) in &self.missing {
                let _ = writeln!(out, "  {rule}: {why}");
            }
        }
        out
    }
}
