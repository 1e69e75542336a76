//! What the rules read: the loaded run, plus data derived from it once and
//! shared (tensor statistics merged from `tensors.jsonl` and checkpoints, the
//! layers in depth order, how far the loss fell).

use crate::error::{DataSource, Warning};
use crate::run::checkpoint::{Checkpoint, Scan, TensorEntry};
use crate::run::{Run, MAX_CLASSES};
use crate::series::{self, natural_cmp};
use postmortem_recorder::format::{ACTIVATION_PREFIX, GRAD_PREFIX, INPUT_TENSOR, LABELS_TENSOR, LOGITS_TENSOR};
use postmortem_recorder::stats::activation_stats;
use postmortem_recorder::{Activation, TaskKind, TensorKind, TensorStats};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// The fans were not recorded (no shape, no bias) but inferred from how
    /// the element counts of consecutive linear layers chain.
    pub fans_inferred: bool,
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

/// What the context derives from the run once, in one parallel pass.
struct Derived {
    stats: BTreeMap<TensorKind, StatsSeries>,
    duplicate_rows: BTreeMap<String, f64>,
}

/// A metric's points as the rules share them.
pub type SharedPoints = Arc<Vec<(u64, f64)>>;

/// A series built once, by whichever rule asks first.
type BuiltOnce = Arc<OnceLock<SharedPoints>>;

pub struct Context<'a> {
    pub run: &'a Run,
    derived: OnceLock<Derived>,
    layers: OnceLock<Vec<WeightLayer>>,
    warnings: Mutex<Vec<Warning>>,
    /// Metric series built so far, by name and whether only finite points
    /// were kept: many rules read the loss, and building the series of a
    /// million steps costs 16 MB and a pass over the column each time.
    series: Mutex<HashMap<(String, bool), BuiltOnce>>,
}

impl<'a> Context<'a> {
    pub fn new(run: &'a Run) -> Self {
        Context { run, derived: OnceLock::new(), layers: OnceLock::new(), warnings: Mutex::new(Vec::new()), series: Mutex::default() }
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
    pub fn metric(&self, name: &str) -> SharedPoints {
        self.shared_series(name, false, || Arc::new(self.run.metrics.series(name).unwrap_or_default()))
    }

    /// The finite points of a scalar metric (the same series as
    /// [`Context::metric`] when every point is finite).
    pub fn finite_metric(&self, name: &str) -> SharedPoints {
        self.shared_series(name, true, || {
            let all = self.metric(name);
            match all.iter().all(|p| p.1.is_finite()) {
                true => all,
                false => Arc::new(series::finite(&all)),
            }
        })
    }

    /// The series of `name` built once: a rule asking while another builds
    /// it waits for that one instead of building it again.
    fn shared_series(&self, name: &str, finite: bool, build: impl FnOnce() -> SharedPoints) -> SharedPoints {
        let cell = {
            let mut built = self.series.lock().unwrap_or_else(|e| e.into_inner());
            built.entry((name.to_string(), finite)).or_default().clone()
        };
        cell.get_or_init(build).clone()
    }

    /// A lone safetensors file with no step and no metrics: its weights are
    /// a snapshot of unknown age, not known to be the initialization.
    pub fn is_bare(&self) -> bool {
        self.run.metrics.rows() == 0 && self.run.checkpoints.len() == 1 && self.run.checkpoints[0].step.is_none()
    }

    /// The number of classes: `task.num_classes` (up to [`MAX_CLASSES`]), else
    /// the width of the first `label_counts`.
    pub fn num_classes(&self) -> Option<usize> {
        let task = self.run.meta.task.as_ref();
        task.and_then(|t| t.num_classes)
            .filter(|&c| c <= MAX_CLASSES as u64)
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
        let (metric, points) = match self.finite_metric("data_loss") {
            p if p.len() >= 5 => ("data_loss", p),
            _ => ("loss", self.finite_metric("loss")),
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
        self.derived().stats.get(&kind).unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
    }

    /// The checkpoint that holds the initial weights: the first one at step
    /// 0, or a bare one that names no step.
    pub fn initial_checkpoint(&self) -> Option<&Checkpoint> {
        self.run.checkpoints.iter().find(|c| c.step.unwrap_or(0) == 0)
    }

    /// For each weight matrix of [`Self::initial_checkpoint`], the fraction of
    /// its rows that repeat an earlier row exactly (found in the same pass as
    /// the statistics); absent for constant matrices and non-matrices.
    pub fn initial_duplicate_rows(&self, weight: &str) -> Option<f64> {
        self.derived().duplicate_rows.get(weight).copied()
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| self.derive())
    }

    fn derive(&self) -> Derived {
        let mut all: BTreeMap<TensorKind, StatsSeries> = BTreeMap::new();
        for record in &self.run.tensors {
            all.entry(record.kind).or_default().entry(record.name.clone()).or_default().push((record.step, record.stats));
        }
        let activations = self.layer_activations();
        let initial = self.initial_checkpoint().map(|c| c.path.as_path());
        // Tensors that tensors.jsonl lacks, and the initial weight matrices
        // (whose rows are fingerprinted as their statistics are taken), read
        // from the checkpoints in parallel: each streams from disk on its own.
        let mut wanted = Vec::new();
        for checkpoint in &self.run.checkpoints {
            // A checkpoint that names no step (a bare model.safetensors) is
            // read as one snapshot at step 0; `is_bare` tells rules it may not
            // be the initialization.
            let step = checkpoint.step.unwrap_or(0);
            let is_initial = Some(checkpoint.path.as_path()) == initial;
            for entry in checkpoint.tensors.iter().filter(|e| e.is_float()) {
                let (Some(kind), name) = classify(&entry.name) else { continue };
                let recorded = all.get(&kind).and_then(|m| m.get(name)).is_some_and(|s| s.iter().any(|(at, _)| *at == step));
                let rows = is_initial && kind == TensorKind::Weight && entry.shape.len() >= 2;
                if !recorded || rows {
                    wanted.push((checkpoint, entry, kind, name, step, recorded, rows));
                }
            }
        }
        let computed: Vec<_> = wanted
            .par_iter()
            .map(|&(checkpoint, entry, kind, name, step, recorded, rows)| {
                let scan = match kind {
                    TensorKind::Activation => {
                        self.checkpoint_activation(checkpoint, entry, activations.get(name)).map(|stats| Scan { stats, duplicate_rows: None })
                    }
                    _ => self.read(checkpoint, entry, |c, e| c.scan(e, rows)),
                };
                (kind, name, step, recorded, scan)
            })
            .collect();
        let mut duplicate_rows = BTreeMap::new();
        for (kind, name, step, recorded, scan) in computed {
            let Some(scan) = scan else { continue };
            if let Some(fraction) = scan.duplicate_rows {
                duplicate_rows.insert(name.to_string(), fraction);
            }
            if !recorded {
                all.entry(kind).or_default().entry(name.to_string()).or_default().push((step, scan.stats));
            }
        }
        for series in all.values_mut().flat_map(|m| m.values_mut()) {
            series.sort_by_key(|(s, _)| *s);
        }
        Derived { stats: all, duplicate_rows }
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
                self.warn(Warning { lost: Some(DataSource::Checkpoints), ..Warning::new(&checkpoint.path, None, e.to_string()) });
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
                layers.push(WeightLayer {
                    name: layer.name,
                    weight,
                    kind: layer.kind,
                    activation: layer.activation,
                    fan_in,
                    fan_out,
                    fans_inferred: false,
                });
            }
            infer_fans(&mut layers, &counts, self.num_classes(), self.input_width());
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
            layers.push(WeightLayer { name: prefix, weight, kind: None, activation: None, fan_in, fan_out, fans_inferred: false });
        }
        layers
    }

    /// Parameters whose value never changes over at least `min_records`
    /// records: the same statistics at every recorded step, or nothing but
    /// zero updates. Frozen on purpose, left out of the optimizer, or never
    /// reached by a gradient. Returns how many parameters had enough records
    /// to judge, and the unchanged ones as `(name, first step, last step,
    /// records)`.
    pub fn unchanged_parameters(&self, min_records: usize) -> (usize, Vec<(String, u64, u64, usize)>) {
        let updates = self.stats(TensorKind::Update);
        let mut judged = 0;
        let mut unchanged = Vec::new();
        for (name, series) in self.stats(TensorKind::Weight) {
            if series.len() < min_records.max(2) {
                continue;
            }
            judged += 1;
            let first = &series[0].1;
            let same = series.iter().all(|(_, s)| {
                s.mean.to_bits() == first.mean.to_bits() && s.std.to_bits() == first.std.to_bits() && s.l2.to_bits() == first.l2.to_bits()
            });
            let zero_updates = updates.get(name).is_some_and(|u| u.len() + 1 >= min_records && u.iter().all(|(_, s)| s.l2 == 0.0));
            if same || zero_updates {
                unchanged.push((name.clone(), series[0].0, series[series.len() - 1].0, series.len()));
            }
        }
        (judged, unchanged)
    }

    /// [`Self::weight_series`] of gradients without the frozen layers: a
    /// layer whose weight never changes although its gradient is large
    /// enough to move it (frozen on purpose, or left out of the optimizer)
    /// keeps its early gradient while the trained layers' shrink, which says
    /// nothing about how gradients flow through the net. A layer that does
    /// not change because its gradient is too small to move a float32 weight
    /// stays: that is the vanishing gradient itself.
    pub fn trained_gradient_series(&self) -> Vec<(&WeightLayer, &[(u64, TensorStats)])> {
        // Gradient norm over weight norm above which any usual learning rate
        // (1e-3 and up) moves a float32 weight (epsilon 1.2e-7).
        const MOVES_WEIGHTS: f64 = 1e-4;
        // Three records, as stalled-weights asks by default.
        let (_, unchanged) = self.unchanged_parameters(3);
        let weights = self.stats(TensorKind::Weight);
        let frozen = |layer: &WeightLayer, grads: &[(u64, TensorStats)]| {
            let Some(values) = weights.get(&layer.weight).filter(|_| unchanged.iter().any(|u| u.0 == layer.weight)) else { return false };
            let size = values[0].1.l2;
            let relative: Vec<f64> = grads.iter().filter(|_| size > 0.0).map(|(_, g)| g.l2 / size).filter(|r| r.is_finite()).collect();
            !relative.is_empty() && series::median(relative) > MOVES_WEIGHTS
        };
        self.weight_series(TensorKind::Grad).into_iter().filter(|(layer, grads)| !frozen(layer, grads)).collect()
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

    /// Shapes of parameters: from the first checkpoint that has them, else
    /// from `tensors.jsonl` where a line gives a shape that agrees with its
    /// element count.
    fn weight_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let mut shapes = BTreeMap::new();
        for checkpoint in &self.run.checkpoints {
            for entry in &checkpoint.tensors {
                if classify(&entry.name).0 == Some(TensorKind::Weight) {
                    shapes.entry(entry.name.clone()).or_insert_with(|| entry.shape.clone());
                }
            }
        }
        for record in self.run.tensors.iter().filter(|r| r.kind == TensorKind::Weight) {
            if shapes.contains_key(&record.name) {
                continue;
            }
            if let Some(shape) = record.shape.as_deref().and_then(|s| checked_shape(s, record.stats.count)) {
                shapes.insert(record.name.clone(), shape);
            }
        }
        shapes
    }

    /// The width of one input example: from an `input` line's shape in
    /// `tensors.jsonl`, else from the `input` tensor of a checkpoint.
    fn input_width(&self) -> Option<usize> {
        let recorded = self.run.tensors.iter().filter(|r| r.kind == TensorKind::Input).find_map(|r| {
            let shape = checked_shape(r.shape.as_deref()?, r.stats.count)?;
            Some(shape.get(1..)?.iter().product::<usize>())
        });
        recorded.or_else(|| {
            let entry = self.run.checkpoints.iter().find_map(|c| c.tensor(INPUT_TENSOR))?;
            let rest = entry.shape.get(1..).filter(|r| !r.is_empty())?;
            Some(rest.iter().product())
        })
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

    /// Labels and predictions of the last checkpoint that holds both, with
    /// the number of classes the logits have. Labels must be class numbers
    /// the logits can predict; a checkpoint whose labels are not is passed
    /// over with a warning.
    pub fn checkpoint_predictions(&self) -> Option<(u64, Vec<usize>, Vec<usize>, usize)> {
        self.run.checkpoints.iter().rev().find_map(|c| {
            let labels = self.read(c, c.tensor(LABELS_TENSOR)?, |c, e| c.values(e))?;
            let logits_entry = c.tensor(LOGITS_TENSOR)?;
            let classes = *logits_entry.shape.last()?;
            let logits = self.read(c, logits_entry, |c, e| c.values(e))?;
            if classes == 0 || Some(logits.len()) != labels.len().checked_mul(classes) {
                return None;
            }
            let as_class = |l: f64| (l >= 0.0 && l.fract() == 0.0 && l < classes as f64).then_some(l as usize);
            let Some(labels) = labels.iter().map(|&l| as_class(l)).collect::<Option<Vec<usize>>>() else {
                self.warn(Warning::new(&c.path, None, format!("labels: not all are class numbers below {classes}, the width of the logits; passed over")));
                return None;
            };
            let preds =
                logits.chunks_exact(classes).map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)).collect();
            Some((c.step?, labels, preds, classes))
        })
    }

    /// Records a problem met while deriving data.
    fn warn(&self, warning: Warning) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(warning);
        }
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

/// A shape from a file, as `usize`, when its element count fits and equals
/// the count the line reports (a shape that disagrees is not believed).
fn checked_shape(shape: &[u64], count: u64) -> Option<Vec<usize>> {
    let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).ok()).collect::<Option<_>>()?;
    let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64))?;
    (elements == count && !dims.is_empty()).then_some(dims)
}

/// Fills in the fans of linear layers that have none, from their element
/// counts: a linear layer holds fan_out x fan_in weights, and each layer's
/// fan_in is the previous one's fan_out. The chain is anchored at its end by
/// the number of classes and at its start by the input's width, and stops
/// where a count does not divide or a layer is not linear.
fn infer_fans(layers: &mut [WeightLayer], counts: &BTreeMap<String, u64>, classes: Option<usize>, input_width: Option<usize>) {
    let linear = |l: &WeightLayer| l.kind.as_deref().is_none_or(|k| matches!(k.to_ascii_lowercase().as_str(), "linear" | "dense" | "fc"));
    let count = |l: &WeightLayer| counts.get(&l.weight).and_then(|&c| usize::try_from(c).ok()).filter(|&c| c > 0);
    let set = |layer: &mut WeightLayer, fan_in: usize, fan_out: usize| {
        if layer.fan_in.is_none() {
            (layer.fan_in, layer.fan_out, layer.fans_inferred) = (Some(fan_in), Some(fan_out), true);
        }
    };
    // From the output back: the last layer's fan_out is the number of classes.
    let mut fan_out = classes;
    for layer in layers.iter_mut().rev() {
        let (Some(out), Some(n), true) = (layer.fan_out.or(fan_out), count(layer), linear(layer)) else {
            break;
        };
        if out == 0 || !n.is_multiple_of(out) {
            break;
        }
        set(layer, n / out, out);
        fan_out = layer.fan_in;
    }
    // From the input forward: the first layer's fan_in is the input's width.
    let mut fan_in = input_width;
    for layer in layers.iter_mut() {
        let (Some(input), Some(n), true) = (layer.fan_in.or(fan_in), count(layer), linear(layer)) else {
            break;
        };
        if input == 0 || !n.is_multiple_of(input) {
            break;
        }
        set(layer, input, n / input);
        fan_in = layer.fan_out;
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
