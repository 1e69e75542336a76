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
    /// ## Why it matters
    /// A ReLU that outputs zero for every input also has zero gradient: it
    /// never recovers, and its capacity is lost. Whole layers die after a
    /// large negative bias, a too-large learning rate step that pushed the
    /// weights far negative, or a bad initialization.
    ///
    /// ## Example
    /// An MLP whose biases start at -5 has 91% dead units in fc2 at the end
    /// and fires.
    ///
    /// ## Options
    /// - `max_fraction` (default 0.5): the largest fraction of dead units per
    ///   layer.
    ///
    /// ## Known problems
    /// Without `model.layers` a layer counts as ReLU-like when its outputs are
    /// never negative. A dead unit is judged on one batch; a unit that fires
    /// for a rare class only can look dead.
    pub struct DeadRelus {
        id: "dead-relus",
        checklist: "Dead ReLUs",
        section: Activations,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [max_fraction: 0.5 => "largest fraction of dead units per layer"],
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
        let checked = layers.len();
        let mut findings = Vec::new();
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
                "needs ReLU layer outputs with `dead_frac` in tensors.jsonl, or act/ tensors in a checkpoint".into(),
            ),
            (_, true) => Outcome::Passed(format!("{checked} ReLU layer(s) checked")),
            _ => Outcome::Fired(findings),
        }
    }
}
