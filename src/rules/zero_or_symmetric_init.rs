use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;
use postmortem_recorder::TensorKind;

declare_rule! {
    /// ## What it does
    /// Checks the weights at initialization (step 0) for symmetry: a weight
    /// matrix that is all zero, all one constant, or whose rows (output units
    /// or filters) are copies of each other. A bare checkpoint with no step
    /// (a downloaded `model.safetensors`) is checked as it is: trained weights
    /// that are constant or duplicated are just as symmetric.
    ///
    /// ## Why it matters
    /// Units that start identical receive identical gradients and stay
    /// identical forever: a layer of 64 units behaves as one. With all-zero
    /// weights and ReLU nothing learns at all. Random initialization exists to
    /// break this symmetry. Biases are not checked: zero biases are normal.
    ///
    /// ## Example
    /// An MLP whose weights all start at 0.05 fires for every layer.
    ///
    /// ## Options
    /// - `max_duplicate_rows` (default 0.5): the largest fraction of a weight
    ///   matrix's rows that may be copies of another row (needs a checkpoint
    ///   at step 0).
    ///
    /// ## Known problems
    /// From `tensors.jsonl` alone only zero and constant matrices are found
    /// (std = 0); duplicated rows need the weights themselves. Rows are
    /// compared bit for bit in the pass that takes the statistics, so the
    /// check costs no more than reading the checkpoint once; a matrix of more
    /// than 524,288 rows is judged by its first 524,288. Layers that are
    /// deliberately initialized to a constant (a gate set to zero in a
    /// residual branch) fire too.
    pub struct ZeroOrSymmetricInit {
        id: "zero-or-symmetric-init",
        checklist: "Weight init, shallow models",
        section: Model,
        needs: [TensorStats, Checkpoints],
        options: [max_duplicate_rows: 0.5 => "largest fraction of duplicated rows"],
    }
}

impl Rule for ZeroOrSymmetricInit {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let layers = ctx.weight_layers();
        let weights = ctx.stats(TensorKind::Weight);
        let at_init: Vec<_> = layers
            .iter()
            .filter_map(|l| weights.get(&l.weight)?.first().filter(|(s, _)| *s == 0).map(|(_, s)| (l, *s)))
            .collect();
        if at_init.is_empty() {
            return Outcome::Skipped("needs the weights at step 0: a checkpoint at step 0, or weight lines at step 0 in tensors.jsonl".into());
        }
        let mut findings = Vec::new();
        for (layer, stats) in &at_init {
            if stats.count > 1 && stats.std == 0.0 {
                let what = if stats.max == 0.0 { "all zero".to_string() } else { format!("all equal to {}", format_number(stats.mean)) };
                findings.push(
                    Finding::new(Self::META.id, Severity::Error, format!("{} starts {what}: its units can never differ", layer.weight))
                        .evidence(Evidence::new("std at step 0", 0.0).threshold("> 0").at(0).tensor(&layer.weight))
                        .recommend(random_init_advice()),
                );
            }
        }
        let limit = options.get("max_duplicate_rows");
        for (layer, stats) in &at_init {
            if stats.std == 0.0 {
                continue;
            }
            let Some(fraction) = ctx.initial_duplicate_rows(&layer.weight) else {
                continue;
            };
            if fraction > limit {
                findings.push(
                    Finding::new(
                        Self::META.id,
                        Severity::Error,
                        format!("{} starts with {:.0}% of its rows duplicated: those units stay identical", layer.weight, fraction * 100.0),
                    )
                    .evidence(Evidence::new("duplicated rows", fraction).threshold(format!("<= {}", format_number(limit))).at(0).tensor(&layer.weight))
                    .recommend(random_init_advice()),
                );
            }
        }
        if findings.is_empty() {
            Outcome::Passed(format!("{} weight matrices start random", at_init.len()))
        } else {
            Outcome::Fired(findings)
        }
    }
}

fn random_init_advice() -> &'static str {
    "initialize weights randomly to break the symmetry: He (std sqrt(2 / fan_in)) before ReLU, Glorot \
     (std sqrt(2 / (fan_in + fan_out))) before tanh or sigmoid; keep biases at zero or a small constant"
}
