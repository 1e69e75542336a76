//! Small hand-made runs for the rules' unit tests.

use super::{Options, Outcome, Rule};
use crate::context::Context;
use crate::run::metrics::MetricsTable;
use crate::run::Run;
use postmortem_recorder::{Activation, Layer, RunMeta, RunStatus, Task, TaskKind, TensorKind, TensorRecord, TensorStats};
use std::collections::BTreeMap;

pub struct RunBuilder {
    meta: RunMeta,
    series: Vec<(String, Vec<(u64, f64)>)>,
    counts: BTreeMap<String, Vec<(u64, Vec<u64>)>>,
    tensors: Vec<TensorRecord>,
}

/// A finished 10-class cross-entropy run with nothing recorded yet.
pub fn run() -> RunBuilder {
    let mut meta = RunMeta::new("unit");
    meta.status = Some(RunStatus::Finished);
    meta.task = Some(Task { kind: Some(TaskKind::Classification), num_classes: Some(10), loss: Some("cross_entropy".into()), ..Default::default() });
    RunBuilder { meta, series: Vec::new(), counts: BTreeMap::new(), tensors: Vec::new() }
}

impl RunBuilder {
    /// A metric at steps 0, 1, 2, ...
    pub fn metric(self, name: &str, values: impl IntoIterator<Item = f64>) -> Self {
        let points = values.into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect();
        self.metric_at(name, points)
    }

    pub fn metric_at(mut self, name: &str, points: Vec<(u64, f64)>) -> Self {
        self.series.push((name.to_string(), points));
        self
    }

    pub fn counts(mut self, name: &str, step: u64, counts: &[u64]) -> Self {
        self.counts.entry(name.to_string()).or_default().push((step, counts.to_vec()));
        self
    }

    pub fn tensor(mut self, step: u64, name: &str, kind: TensorKind, stats: TensorStats) -> Self {
        self.tensors.push(TensorRecord { step, name: name.to_string(), kind, shape: None, span: None, stats });
        self
    }

    /// A tensor line that gives its shape.
    pub fn tensor_shaped(mut self, step: u64, name: &str, kind: TensorKind, shape: &[u64], stats: TensorStats) -> Self {
        self.tensors.push(TensorRecord { step, name: name.to_string(), kind, shape: Some(shape.to_vec()), span: None, stats });
        self
    }

    pub fn meta(mut self, change: impl FnOnce(&mut RunMeta)) -> Self {
        change(&mut self.meta);
        self
    }

    /// Declares linear layers `(name, activation)` with `name.weight` and `name.bias`.
    pub fn layers(self, layers: &[(&str, Activation)]) -> Self {
        let layers: Vec<Layer> = layers
            .iter()
            .map(|(name, act)| Layer {
                name: name.to_string(),
                kind: Some("linear".into()),
                activation: Some(act.clone()),
                params: vec![format!("{name}.weight"), format!("{name}.bias")],
            })
            .collect();
        self.meta(|m| m.model.get_or_insert_with(Default::default).layers = layers)
    }

    pub fn build(self) -> Run {
        let series: Vec<(&str, Vec<(u64, f64)>)> = self.series.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
        Run {
            source: "unit".into(),
            meta: self.meta,
            metrics: MetricsTable::from_series(&series, self.counts),
            tensors: self.tensors,
            checkpoints: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Statistics with a mean and a std, over `count` elements.
pub fn stats(count: u64, mean: f64, std: f64) -> TensorStats {
    TensorStats {
        count,
        mean,
        std,
        min: mean - 2.0 * std,
        max: mean + 2.0 * std,
        abs_mean: mean.abs().max(std * 0.8),
        l2: (count as f64 * (mean * mean + std * std)).sqrt(),
        zero_frac: 0.0,
        nonfinite: 0,
        dead_frac: None,
        saturated_frac: None,
        batch_std: None,
    }
}

/// Runs a rule with its defaults, or with options overridden.
pub fn check(rule: &dyn Rule, run: &Run, overrides: &[(&str, f64)]) -> Outcome {
    let overrides: BTreeMap<String, f64> = overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let options = Options::new(rule.meta().options, Some(&overrides));
    rule.check(&Context::new(run), &options)
}

pub fn fired(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Fired(_))
}

pub fn passed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Passed(_))
}

pub fn skipped(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Skipped(_))
}

/// A loss curve `from` to `to` over `n` steps, geometric.
pub fn decay(from: f64, to: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| from * (to / from).powf(i as f64 / (n - 1) as f64)).collect()
}
