//! What the rules read: the loaded run, plus data derived from it once and
//! shared (tensor statistics merged from `tensors.jsonl` and checkpoints, the
//! layers in depth order, how far the loss fell).

use crate::error::Warning;
use crate::run::checkpoint::{Checkpoint, TensorEntry};
use crate::run::Run;
use crate::series::{self, natural_cmp};
use postmortem_recorder::format::{ACTIVATION_PREFIX, GRAD_PREFIX, INPUT_TENSOR, LABELS_TENSOR, LOGITS_TENSOR};
use postmortem_recorder::stats::activation_stats;
use postmortem_recorder::{Activation, TaskKind, TensorKind, TensorStats};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Per tensor name, the statistics at each recorded step, in step order.
pub type StatsSeries = BTreeMap<String, Vec<(u64, TensorStats)>>;

/// A layer that has a weight matrix or filter bank, in forward order.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightLayer {
    /// The layer's name (activations are recorded under it).
    pub name: String,
    /// The weight parameter's name.
    pub weight: String,
    /// `linear`, `conv2d`, ... when the run says.
    pub kind: Option<String>,
    pub activation: Option<Activation>,
    pub fan_in: Option<usize>,
    pub fan_out: Option<usize>,
}

/// How the loss moved over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Median of the first few finite losses.
    pub initial: f64,
    /// Median of the last 10% of finite losses.
    pub last: f64,
    pub initial_step: u64,
    pub last_step: u64,
    /// `ln(num_classes)` for a cross-entropy classification task.
    pub chance: Option<f64>,
    /// Which metric this describes: `data_loss` when recorded, else `loss`.
    pub metric: &'static str,
}

impl Progress {
    /// Fraction of the initial loss that was shed.
    pub fn relative_drop(&self) -> f64 {
        (self.initial - self.last) / self.initial.abs().max(f64::MIN_POSITIVE)
    }

    /// Whether the run learned something: the loss fell by a tenth or more and
    /// ended clearly below the loss of guessing.
    pub fn learned(&self) -> bool {
        let below_chance = self.chance.is_none_or(|c| self.last < 0.9 * c);
        self.relative_drop() >= 0.1 && below_chance
    }
}

pub struct Context<'a> {
    pub run: &'a Run,
    stats: OnceLock<BTreeMap<TensorKind, StatsSeries>>,
    layers: OnceLock<Vec<WeightLayer>>,
    warnings: Mutex<Vec<Warning>>,
}

impl<'a> Context<'a> {
    pub fn new(run: &'a Run) -> Self {
        Context { run, stats: OnceLock::new(), layers: OnceLock::new(), warnings: Mutex::new(Vec::new()) }
    }

    /// Computes the derived data that rules share (tensor statistics, weight
    /// layers) now rather than on first use.
    pub fn prepare(&self) {
        self.weight_layers();
        self.stats(TensorKind::Weight);
    }

    /// Problems met while deriving data (a checkpoint that changed under us).
    pub fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// A scalar metric, NaN and infinities included; empty when not recorded.
    pub fn metric(&self, name: &str) -> Vec<(u64, f64)> {
        self.run.metrics.series(name).unwrap_or_default()
    }

    /// A lone safetensors file with no step and no metrics: its weights are
    /// a snapshot of unknown age, not known to be the initialization.
    pub fn is_bare(&self) -> bool {
        self.run.metrics.rows() == 0 && self.run.checkpoints.len() == 1 && self.run.checkpoints[0].step.is_none()
    }

    pub fn num_classes(&self) -> Option<usize> {
        let task = self.run.meta.task.as_ref();
        task.and_then(|t| t.num_classes)
            .map(|c| c as usize)
            .or_else(|| self.run.metrics.counts.get("label_counts").and_then(|s| s.first()).map(|(_, c)| c.len()))
    }

    /// `ln(C)` when the task is a classification trained with cross-entropy
    /// (or when the loss is not named but the classes are known).
    pub fn chance_loss(&self) -> Option<f64> {
        let task = self.run.meta.task.as_ref()?;
        let classes = task.num_classes? as f64;
        if classes < 2.0 || task.kind.is_some_and(|k| k != TaskKind::Classification) {
            return None;
        }
        match task.loss.as_deref() {
            None | Some("cross_entropy" | "crossentropy" | "nll" | "categorical_crossentropy" | "sparse_categorical_crossentropy") => {
                Some(classes.ln())
            }
            Some("bce" | "binary_crossentropy" | "binary_cross_entropy") => Some(2f64.ln()),
            _ => None,
        }
    }

    /// How the loss moved; `None` with fewer than 5 finite points.
    pub fn progress(&self) -> Option<Progress> {
        let (metric, points) = match series::finite(&self.metric("data_loss")) {
            p if p.len() >= 5 => ("data_loss", p),
            _ => ("loss", series::finite(&self.metric("loss"))),
        };
        if points.len() < 5 {
            return None;
        }
        let head = (points.len() / 50).clamp(1, 5);
        let tail = (points.len() / 10).max(1);
        Some(Progress {
            initial: series::median(points[..head].iter().map(|p| p.1)),
            last: series::median(points[points.len() - tail..].iter().map(|p| p.1)),
            initial_step: points[0].0,
            last_step: points[points.len() - 1].0,
            chance: self.chance_loss(),
            metric,
        })
    }

    /// Statistics of every tensor of a kind, from `tensors.jsonl` and, where it
    /// has none for a step, from the checkpoints.
    pub fn stats(&self, kind: TensorKind) -> &StatsSeries {
        static EMPTY: OnceLock<StatsSeries> = OnceLock::new();
        self.stats
            .get_or_init(|| self.collect_stats())
            .get(&kind)
            .unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
    }

    fn collect_stats(&self) -> BTreeMap<TensorKind, StatsSeries> {
        let mut all: BTreeMap<TensorKind, StatsSeries> = BTreeMap::new();
        for record in &self.run.tensors {
            all.entry(record.kind).or_default().entry(record.name.clone()).or_default().push((record.step, record.stats));
        }
        let activations = self.layer_activations();
        // Tensors that tensors.jsonl lacks, read from the checkpoints in
        // parallel: each is streamed from disk independently.
        let mut wanted = Vec::new();
        for checkpoint in &self.run.checkpoints {
            // A checkpoint that names no step (a bare model.safetensors) is
            // read as one snapshot at step 0; `is_bare` tells rules it may not
            // be the initialization.
            let step = checkpoint.step.unwrap_or(0);
            for entry in checkpoint.tensors.iter().filter(|e| e.is_float()) {
                let (Some(kind), name) = classify(&entry.name) else { continue };
                let recorded = all.get(&kind).and_then(|m| m.get(name)).is_some_and(|s| s.iter().any(|(at, _)| *at == step));
                if !recorded {
                    wanted.push((checkpoint, entry, kind, name, step));
                }
            }
        }
        let computed: Vec<_> = wanted
            .par_iter()
            .map(|&(checkpoint, entry, kind, name, step)| {
                let stats = match kind {
                    TensorKind::Activation => self.checkpoint_activation(checkpoint, entry, activations.get(name)),
                    _ => self.read(checkpoint, entry, |c, e| c.stats(e)),
                };
                (kind, name, step, stats)
            })
            .collect();
        for (kind, name, step, stats) in computed {
            if let Some(stats) = stats {
                all.entry(kind).or_default().entry(name.to_string()).or_default().push((step, stats));
            }
        }
        for series in all.values_mut().flat_map(|m| m.values_mut()) {
            series.sort_by_key(|(s, _)| *s);
        }
        all
    }

    fn checkpoint_activation(
        &self,
        checkpoint: &Checkpoint,
        entry: &TensorEntry,
        activation: Option<&Activation>,
    ) -> Option<TensorStats> {
        let values = self.read(checkpoint, entry, |c, e| c.values(e))?;
        let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
        Some(activation_stats(&values, &entry.shape, activation.unwrap_or(&Activation::None)))
    }

    /// Runs a checkpoint read; a failure becomes a warning, not an error.
    fn read<T>(
        &self,
        checkpoint: &Checkpoint,
        entry: &TensorEntry,
        f: impl FnOnce(&Checkpoint, &TensorEntry) -> Result<T, crate::LoadError>,
    ) -> Option<T> {
        match f(checkpoint, entry) {
            Ok(v) => Some(v),
            Err(e) => {
                if let Ok(mut w) = self.warnings.lock() {
                    w.push(Warning { file: checkpoint.path.clone(), line: None, message: e.to_string() });
                }
                None
            }
        }
    }

    /// Each layer's nonlinearity, as run.json names it.
    fn layer_activations(&self) -> BTreeMap<String, Activation> {
        let layers = self.run.meta.model.as_ref().map(|m| m.layers.as_slice()).unwrap_or_default();
        layers.iter().filter_map(|l| Some((l.name.clone(), l.activation.clone()?))).collect()
    }

    /// The activation of a recorded layer output, when known.
    pub fn activation_of(&self, layer: &str) -> Option<Activation> {
        self.layer_activations().get(layer).cloned()
    }

    /// Layers with a weight matrix or filter bank, in forward order.
    pub fn weight_layers(&self) -> &[WeightLayer] {
        self.layers.get_or_init(|| self.collect_layers())
    }

    fn collect_layers(&self) -> Vec<WeightLayer> {
        let shapes = self.weight_shapes();
        let counts = self.param_counts();
        let declared = self.run.meta.model.as_ref().map(|m| m.layers.clone()).unwrap_or_default();
        let mut layers: Vec<WeightLayer> = Vec::new();
        if !declared.is_empty() {
            for layer in declared {
                if layer.kind.as_deref().is_some_and(is_norm) {
                    continue;
                }
                let Some(weight) = layer.params.iter().find(|p| p.ends_with("weight")).cloned() else { continue };
                let bias = layer.params.iter().find(|p| p.ends_with("bias"));
                let (fan_in, fan_out) = fans(shapes.get(&weight), counts.get(&weight), bias.and_then(|b| counts.get(b)));
                layers.push(WeightLayer { name: layer.name, weight, kind: layer.kind, activation: layer.activation, fan_in, fan_out });
            }
            return layers;
        }
        // No layer list: every `*.weight` of rank 2 or more (or of unknown rank,
        // when only statistics were recorded) that is not a normalization.
        let mut names: Vec<String> = counts
            .keys()
            .chain(shapes.keys())
            .filter(|n| n.ends_with("weight") && !looks_like_norm(n))
            .filter(|n| shapes.get(*n).is_none_or(|s| s.len() >= 2))
            .cloned()
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        names.dedup();
        for weight in names {
            let prefix = weight.strip_suffix("weight").unwrap_or(&weight).trim_end_matches(['.', '/', '_']).to_string();
            let bias = [format!("{prefix}.bias"), format!("{prefix}/bias"), format!("{prefix}_bias")]
                .into_iter()
                .find(|b| counts.contains_key(b));
            let (fan_in, fan_out) = fans(shapes.get(&weight), counts.get(&weight), bias.as_ref().and_then(|b| counts.get(b)));
            layers.push(WeightLayer { name: prefix, weight, kind: None, activation: None, fan_in, fan_out });
        }
        layers
    }

    /// The statistics of each weight layer's weight for one kind (weight,
    /// grad, update), in forward order, for layers that have any.
    pub fn weight_series(&self, kind: TensorKind) -> Vec<(&WeightLayer, &[(u64, TensorStats)])> {
        let stats = self.stats(kind);
        self.weight_layers()
            .iter()
            .filter_map(|layer| Some((layer, stats.get(&layer.weight)?.as_slice())))
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    /// Shapes of parameters from the first checkpoint that has them.
    fn weight_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let mut shapes = BTreeMap::new();
        for checkpoint in &self.run.checkpoints {
            for entry in &checkpoint.tensors {
                if classify(&entry.name).0 == Some(TensorKind::Weight) {
                    shapes.entry(entry.name.clone()).or_insert_with(|| entry.shape.clone());
                }
            }
        }
        shapes
    }

    /// Element counts of parameters, from checkpoints or `tensors.jsonl`.
    fn param_counts(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = self
            .run
            .tensors
            .iter()
            .filter(|r| r.kind == TensorKind::Weight)
            .map(|r| (r.name.clone(), r.stats.count))
            .collect();
        for (name, shape) in self.weight_shapes() {
            counts.entry(name).or_insert(shape.iter().product::<usize>() as u64);
        }
        counts
    }

    /// Labels and predictions of the last checkpoint that holds both.
    pub fn checkpoint_predictions(&self) -> Option<(u64, Vec<usize>, Vec<usize>)> {
        self.run.checkpoints.iter().rev().find_map(|c| {
            let labels = self.read(c, c.tensor(LABELS_TENSOR)?, |c, e| c.values(e))?;
            let logits_entry = c.tensor(LOGITS_TENSOR)?;
            let classes = *logits_entry.shape.last()?;
            let logits = self.read(c, logits_entry, |c, e| c.values(e))?;
            if classes == 0 || logits.len() != labels.len() * classes {
                return None;
            }
            let preds = logits
                .chunks_exact(classes)
                .map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i))
                .collect();
            Some((c.step?, labels.iter().map(|&l| l.max(0.0) as usize).collect(), preds))
        })
    }
}

/// What a checkpoint tensor name holds, and the name it is recorded under.
pub fn classify(name: &str) -> (Option<TensorKind>, &str) {
    if let Some(param) = name.strip_prefix(GRAD_PREFIX) {
        (Some(TensorKind::Grad), param)
    } else if let Some(layer) = name.strip_prefix(ACTIVATION_PREFIX) {
        (Some(TensorKind::Activation), layer)
    } else if name == INPUT_TENSOR {
        (Some(TensorKind::Input), name)
    } else if name == LABELS_TENSOR || name == LOGITS_TENSOR || name.contains('/') {
        (None, name)
    } else {
        (Some(TensorKind::Weight), name)
    }
}

fn is_norm(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    k.contains("norm") || k == "bn" || k == "ln"
}

fn looks_like_norm(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("norm") || n.split(['.', '/', '_']).any(|p| p.starts_with("bn") || p.starts_with("ln"))
}

/// Fan-in and fan-out from a weight's shape (`[out, in, k...]`, as PyTorch and
/// candle store it), or from its element count over its bias's.
fn fans(shape: Option<&Vec<usize>>, weight_count: Option<&u64>, bias_count: Option<&u64>) -> (Option<usize>, Option<usize>) {
    if let Some(shape) = shape.filter(|s| s.len() >= 2) {
        let receptive: usize = shape[2..].iter().product();
        return (Some(shape[1] * receptive), Some(shape[0] * receptive));
    }
    match (weight_count, bias_count) {
        (Some(&w), Some(&b)) if b > 0 && w % b == 0 => (Some((w / b) as usize), Some(b as usize)),
        _ => (None, None),
    }
}
