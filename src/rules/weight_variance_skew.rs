use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;
use postmortem_recorder::TensorKind;
use std::collections::{BTreeMap, BTreeSet};

declare_rule! {
    /// ## What it does
    /// Compares the variance of the weights across layers, at each recorded
    /// step, after scaling each by its fan-in (variance x fan_in is about 2
    /// for He and 1 for LeCun initialization, whatever the layer's size). It
    /// fires when the largest scaled variance is more than `max_ratio` times
    /// the smallest at some step.
    ///
    /// ## Why it matters
    /// Layers whose weight scales differ by orders of magnitude learn at very
    /// different speeds and amplify or damp the signal unevenly; one layer is
    /// doing all the work or none of it. The checklist asks to plot weight
    /// variance per layer over time for exactly this.
    ///
    /// ## Example
    /// An output layer initialized 30x larger than the hidden ones has 900x
    /// their scaled variance at step 0 and fires.
    ///
    /// ## Options
    /// - `max_ratio` (default 10): largest ratio between the layers' scaled
    ///   variances.
    ///
    /// ## Known problems
    /// Needs each layer's fan-in (weight shapes from a checkpoint, or weight
    /// and bias counts). Embedding tables and normalization weights are not
    /// comparable and should not be listed as weight layers.
    pub struct WeightVarianceSkew {
        id: "weight-variance-skew",
        checklist: "Plot variance of weights",
        section: Weights,
        needs: [TensorStats, Checkpoints],
        options: [max_ratio: 10.0 => "largest ratio between layers' fan-in-scaled weight variances"],
    }
}

impl Rule for WeightVarianceSkew {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let mut by_step: BTreeMap<u64, Vec<(String, f64)>> = BTreeMap::new();
        let mut inferred = BTreeSet::new();
        for (layer, series) in ctx.weight_series(TensorKind::Weight) {
            let Some(fan_in) = layer.fan_in else { continue };
            if layer.fans_inferred {
                inferred.insert(layer.weight.clone());
            }
            for (step, s) in series {
                if s.std.is_finite() && s.std > 0.0 {
                    by_step.entry(*step).or_default().push((layer.weight.clone(), s.std * s.std * fan_in as f64));
                }
            }
        }
        by_step.retain(|_, layers| layers.len() >= 2);
        if by_step.is_empty() {
            return Outcome::Skipped(
                "needs the weights of at least two layers with their fan-in: weight shapes from a checkpoint, or weight lines in tensors.jsonl with their `shape` (or with bias lines)".into(),
            );
        }
        let limit = options.get("max_ratio");
        let scaled = |weight: &str| {
            let how = if inferred.contains(weight) { " (fan-in inferred from the element counts of the layers)" } else { "" };
            format!("variance x fan_in of {weight}{how}")
        };
        let extremes = |layers: &[(String, f64)]| {
            let hi = layers.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned();
            let lo = layers.iter().min_by(|a, b| a.1.total_cmp(&b.1)).cloned();
            hi.zip(lo)
        };
        let worst = by_step
            .iter()
            .filter_map(|(step, layers)| extremes(layers).map(|(hi, lo)| (*step, hi.1 / lo.1, hi, lo)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((step, ratio, hi, lo)) = worst else { return Outcome::Passed("no comparable layers".into()) };
        if ratio <= limit {
            return Outcome::Passed(format!("the scaled weight variances stay within {}x of each other", format_number(ratio)));
        }
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "weight scales are skewed across layers at step {step}: {} has {}x the fan-in-scaled variance of {}",
                hi.0,
                format_number(ratio),
                lo.0
            ),
        )
        .evidence(Evidence::new("largest / smallest scaled variance", ratio).threshold(format!("<= {}", format_number(limit))).at(step))
        .evidence(Evidence::new(scaled(&hi.0), hi.1).at(step).tensor(&hi.0))
        .evidence(Evidence::new(scaled(&lo.0), lo.1).at(step).tensor(&lo.0))
        .recommend(
            "initialize every layer with the fan-in rule of its nonlinearity; if the skew grows during training, \
             look at per-layer learning rates, weight decay, and the update ratios",
        )])
    }
}
