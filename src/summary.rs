//! What a run holds, at a glance: the output of `postmortem analyze` before
//! any rule runs, as text for a person and as JSON for a script.

use crate::error::Warning;
use crate::run::Run;
use postmortem_recorder::TensorKind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run: RunInfo,
    pub steps: StepRange,
    pub metrics: Vec<MetricInfo>,
    pub tensors: TensorInfo,
    pub checkpoints: Vec<CheckpointInfo>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub name: String,
    pub source: String,
    pub status: Option<&'static str>,
    pub complete: bool,
    /// The format an imported log was read from (`hf-trainer`, ...); absent
    /// for a native run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRange {
    pub rows: usize,
    pub first: Option<u64>,
    pub last: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricInfo {
    pub name: String,
    /// Steps that recorded a value.
    pub count: usize,
    /// How many of those values are NaN or infinite.
    pub nonfinite: usize,
    /// The last finite value.
    pub last: Option<f64>,
    /// What the series was read as (`training loss`, `loss component`),
    /// for the series the rules read by role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// The name the source gave the series, where it was stored under a key
    /// of docs/FORMAT.md (`Loss/Train_Epoch` for `loss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorInfo {
    pub records: usize,
    pub names: usize,
    pub steps: usize,
    /// Records per kind.
    pub kinds: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    pub step: Option<u64>,
    pub file: String,
    pub tensors: usize,
    pub bytes: u64,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        let steps = run.metrics.steps();
        let mut metrics: Vec<MetricInfo> = run
            .metrics
            .names()
            .into_iter()
            .map(|name| {
                let facts = run.metrics.facts(&name).unwrap_or_default();
                let (role, source_name) = (crate::import::names::role_of(&name), run.metrics.origins.get(&name).cloned());
                MetricInfo { count: facts.count, nonfinite: facts.nonfinite, last: facts.last_finite, role, source_name, name }
            })
            .collect();
        for (name, series) in &run.metrics.counts {
            metrics.push(MetricInfo { name: name.clone(), count: series.len(), nonfinite: 0, last: None, role: None, source_name: None });
        }
        let mut kinds = BTreeMap::new();
        for record in &run.tensors {
            *kinds.entry(kind_name(record.kind)).or_insert(0) += 1;
        }
        Summary {
            run: RunInfo {
                name: run.name(),
                source: run.source.display().to_string(),
                status: run.meta.status.map(|s| s.as_str()),
                complete: run.is_complete(),
                imported_from: crate::import::imported_from(&run.meta).map(str::to_string),
            },
            steps: StepRange { rows: steps.len(), first: steps.first().copied(), last: steps.last().copied() },
            metrics,
            tensors: TensorInfo {
                records: run.tensors.len(),
                names: run.tensors.iter().map(|r| r.name.as_str()).collect::<BTreeSet<_>>().len(),
                steps: run.tensors.iter().map(|r| r.step).collect::<BTreeSet<_>>().len(),
                kinds,
            },
            checkpoints: run
                .checkpoints
                .iter()
                .map(|c| CheckpointInfo {
                    step: c.step,
                    file: c.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    tensors: c.tensors.len(),
                    bytes: c.file_bytes,
                })
                .collect(),
            warnings: run.warnings.clone(),
        }
    }

    /// The summary as lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let status = self.run.status.unwrap_or("unknown");
        let _ = writeln!(out, "run          {} ({status})", self.run.name);
        let _ = writeln!(out, "source       {}", self.run.source);
        match (self.steps.first, self.steps.last) {
            (Some(first), Some(last)) => {
                let _ = writeln!(out, "steps        {first} to {last} ({} rows)", self.steps.rows);
            }
            _ => {
                let _ = writeln!(out, "steps        none recorded");
            }
        }
        if self.metrics.is_empty() {
            let _ = writeln!(out, "metrics      none");
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let label = if i == 0 { "metrics" } else { "" };
            let last = m.last.map(|v| format!(", last {}", format_number(v))).unwrap_or_default();
            let bad = if m.nonfinite > 0 { format!(", {} non-finite", m.nonfinite) } else { String::new() };
            let _ = writeln!(out, "{label:<12} {} ({} values{last}{bad})", m.name, m.count);
        }
        if self.tensors.records == 0 {
            let _ = writeln!(out, "tensors      none (no tensors.jsonl)");
        } else {
            let kinds: Vec<String> = self.tensors.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                out,
                "tensors      {} records: {} names at {} steps ({})",
                self.tensors.records,
                self.tensors.names,
                self.tensors.steps,
                kinds.join(", ")
            );
        }
        if self.checkpoints.is_empty() {
            let _ = writeln!(out, "checkpoints  none");
        }
        for (i, c) in self.checkpoints.iter().enumerate() {
            let label = if i == 0 { "checkpoints" } else { "" };
            let step = c.step.map_or_else(|| "?".to_string(), |s| s.to_string());
            let _ = writeln!(out, "{label:<12} step {step}: {} tensors, {} ({})", c.tensors, format_bytes(c.bytes), c.file);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

fn kind_name(kind: TensorKind) -> &'static str {
    kind.as_str()
}

/// A number short enough for a table and exact enough to compare.
pub fn format_number(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3e}")
    }
}

pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
