use super::common::{last_unit_fractions, percent};
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::summary::format_number;
use crate::context::Context;
use postmortem_recorder::Activation;

declare_rule! {
    /// ## What it does
    /// Checks ReLU layers for dead units: units that are positive on fewer
    /// than 1% of the batch's examples (`dead_frac` in the format). It fires
    /// when more than `max_fraction` of a layer's units are dead at the last
    /// recorded step.
    ///
    /// A ReLU applied as a function in `forward` (`torch.relu(self.fc1(x))`,
    /// the common PyTorch style) is invisible to a recorder: the layer is
    /// declared with activation `none` and its own output is recorded. When
    /// every output of such a layer (any but the last) is at or below zero
    /// for the whole batch at each of the last `silent_records` recorded
    /// steps, a ReLU after it passes nothing and its gradient is zero: the
    /// finding says that it was judged from the layer's output.
    ///
    /// ## Why it matters
    /// A ReLU that outputs zero for every input also has zero gradient: it
    /// never recovers, and its capacity is lost. Whole layers die after a
    /// large negative bias, a too-large learning rate step that pushed the
    /// weights far negative, or a bad initialization.
    ///
    /// ## Example
    /// An MLP whose biases start at -5 has 91% dead units in fc2 at the end
    /// and fires. A Lightning MLP whose first layer's bias is -10, with the
    /// ReLU written as `torch.relu` in `forward`, fires on fc1 from its
    /// outputs.
    ///
    /// ## Options
    /// - `max_fraction` (default 0.5): the largest fraction of dead units per
    ///   layer.
    /// - `silent_records` (default 3): the last recorded steps at which every
    ///   output of a layer with no declared ReLU must be at or below zero.
    ///
    /// ## Known problems
    /// Without `model.layers` a layer counts as ReLU-like when its outputs are
    /// never negative. A dead unit is judged on one batch; a unit that fires
    /// for a rare class only can look dead. A layer whose output is all at or
    /// below zero and that no ReLU follows (a tanh, or nothing) is named too,
    /// as a layer whose output carries no positive signal.
    pub struct DeadRelus {
        id: "dead-relus",
        checklist: "Dead ReLUs",
        section: Activations,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [
            max_fraction: 0.5 => "largest fraction of dead units per layer",
            silent_records: 3.0 => "last recorded steps at which a layer's every output must be <= 0 to call an undeclared ReLU dead",
        ],
    }
}

impl Rule for DeadRelus {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let limit = options.get("max_fraction");
        let relu = |layer: &str, series: &[(u64, postmortem_recorder::TensorStats)]| match ctx.activation_of(layer) {
            Some(a) => a == Activation::Relu,
            None => series.iter().all(|(_, s)| !(s.min < 0.0)),
        };
        let layers = last_unit_fractions(ctx, relu, |s| s.dead_frac);
        let mut checked = layers.len();
        let mut findings = Vec::new();
        let silent = silent_layers(ctx, options.get("silent_records").max(1.0) as usize);
        checked += silent.checked;
        for (layer, steps, largest) in silent.found {
            let (first, last) = (steps.first().copied().unwrap_or_default(), steps.last().copied().unwrap_or_default());
            findings.push(
                Finding::new(
                    Self::META.id,
                    Severity::Error,
                    format!(
                        "every output of {layer} is at or below zero for the whole batch at the last {} recorded steps ({first} to {last}): \
                         a ReLU applied to it in forward passes nothing, so all its units are dead (judged from the layer's output)",
                        steps.len()
                    ),
                )
                .evidence(Evidence::new(format!("largest output of {layer}"), largest).threshold("> 0").at(last).tensor(&layer))
                .recommend(
                    "check the layer's bias and initialization (He, biases at 0 or a small positive 0.01) and lower the \
                     learning rate; tell the recorder the nonlinearity (activations={\"LAYER\": \"relu\"}) so that dead units \
                     are counted one by one",
                ),
            );
        }
        for (layer, step, fraction) in layers {
            if fraction > limit {
                findings.push(
                    Finding::new(Self::META.id, Severity::Error, format!("{} of the ReLU units of {layer} are dead at step {step}", percent(fraction)))
                        .evidence(Evidence::new(format!("dead units in {layer}"), fraction).threshold(format!("<= {}", format_number(limit))).at(step).tensor(&layer))
                        .recommend(
                            "check the initialization (He, biases at 0 or a small positive 0.01) and lower the learning \
                             rate; use leaky ReLU or maxout if units keep dying",
                        ),
                );
            }
        }
        match (checked, findings.is_empty()) {
            (0, _) => Outcome::Skipped(
                "needs layer outputs in tensors.jsonl (ReLU outputs with `dead_frac`, or each layer's own output), or act/ tensors in a checkpoint".into(),
            ),
            (_, true) => Outcome::Passed(format!("{checked} ReLU layer(s) checked")),
            _ => Outcome::Fired(findings),
        }
    }
}

/// Layers whose activation is not declared ReLU (declared `none`, or not
/// declared and taking negative values), judged from their own output.
struct SilentLayers {
    checked: usize,
    /// `(layer, the recorded steps, largest output at the last)`.
    found: Vec<(String, Vec<u64>, f64)>,
}

/// Layers (but the last, whose output is the model's) whose every output is
/// at or below zero at each of their last `records` recorded steps.
fn silent_layers(ctx: &Context, records: usize) -> SilentLayers {
    let recorded = ctx.stats(postmortem_recorder::TensorKind::Activation);
    let order = crate::rules::vanishing_activations::layers_in_order(ctx);
    let mut result = SilentLayers { checked: 0, found: Vec::new() };
    for layer in order.iter().take(order.len().saturating_sub(1)) {
        let series = &recorded[layer];
        let undeclared_relu = match ctx.activation_of(layer) {
            Some(activation) => activation == Activation::None,
            None => series.iter().any(|(_, s)| s.min < 0.0),
        };
        if !undeclared_relu || series.len() < records {
            continue;
        }
        result.checked += 1;
        let tail = &series[series.len() - records..];
        if tail.iter().all(|(_, s)| s.count > 0 && s.nonfinite == 0 && s.max <= 0.0) {
            result.found.push((layer.clone(), tail.iter().map(|(step, _)| *step).collect(), tail[records - 1].1.max));
        }
    }
    result
}
