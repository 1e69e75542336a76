use super::common::{last_unit_fractions, percent};
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::summary::format_number;
use crate::context::Context;
use postmortem_recorder::Activation;

declare_rule! {
    /// ## What it does
    /// Checks tanh and sigmoid layers for saturated units: units whose output
    /// sits within 0.03 of a bound of the nonlinearity (|tanh| > 0.97, sigmoid
    /// < 0.03 or > 0.97) on more than 99% of the batch (`saturated_frac` in
    /// the format). It fires when more than `max_fraction` of a layer's units
    /// are saturated at the last recorded step.
    ///
    /// ## Why it matters
    /// The derivative of tanh or sigmoid is nearly zero at its bounds: a
    /// saturated unit passes almost no gradient back, so it and everything
    /// below it stop learning. Saturation comes from inputs or weights that
    /// are too large (pre-activations in the tens).
    ///
    /// ## Example
    /// A tanh layer fed raw pixel values with std 3.0 weights has 75% of its
    /// units pinned at +1 or -1 and fires.
    ///
    /// ## Options
    /// - `max_fraction` (default 0.5): the largest fraction of saturated units
    ///   per layer (SageMaker Debugger's default threshold).
    ///
    /// ## Known problems
    /// Needs `saturated_frac` (recorded with the activation's statistics) or
    /// the layer's output in a checkpoint together with `model.layers` naming
    /// its nonlinearity. Gates of LSTMs saturate by design.
    pub struct SaturatedActivations {
        id: "saturated-activations",
        checklist: "Saturated tanh and sigmoid",
        section: Activations,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [max_fraction: 0.5 => "largest fraction of saturated units per layer"],
    }
}

impl Rule for SaturatedActivations {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let limit = options.get("max_fraction");
        let saturating = |layer: &str, series: &[(u64, postmortem_recorder::TensorStats)]| {
            ctx.activation_of(layer).and_then(|a| a.saturation_bounds()).is_some() || series.iter().any(|(_, s)| s.saturated_frac.is_some())
        };
        let layers = last_unit_fractions(ctx, saturating, |s| s.saturated_frac);
        let checked = layers.len();
        let mut findings = Vec::new();
        for (layer, step, fraction) in layers {
            if fraction > limit {
                let name = match ctx.activation_of(&layer) {
                    Some(Activation::Sigmoid) => "sigmoid",
                    Some(Activation::Tanh) => "tanh",
                    _ => "saturating",
                };
                findings.push(
                    Finding::new(Self::META.id, Severity::Warning, format!("{} of the {name} units of {layer} are saturated at step {step}", percent(fraction)))
                        .evidence(Evidence::new(format!("saturated units in {layer}"), fraction).threshold(format!("<= {}", format_number(limit))).at(step).tensor(&layer))
                        .recommend(
                            "standardize the inputs and initialize with Glorot (std sqrt(2 / (fan_in + fan_out))); add batch \
                             normalization before the nonlinearity, or use ReLU in hidden layers",
                        ),
                );
            }
        }
        match (checked, findings.is_empty()) {
            (0, _) => Outcome::Skipped(
                "needs tanh or sigmoid layer outputs with `saturated_frac` in tensors.jsonl, or act/ tensors with model.layers naming the nonlinearity".into(),
            ),
            (_, true) => Outcome::Passed(format!("{checked} saturating layer(s) checked")),
            _ => Outcome::Fired(findings),
        }
    }
}
