use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;
use postmortem_recorder::TensorKind;

declare_rule! {
    /// ## What it does
    /// Checks that the inputs the model sees are centered: the mean of the
    /// input batch is small against its standard deviation, and the values do
    /// not look like raw pixel or count ranges (all non-negative, up to 16 or
    /// 255).
    ///
    /// ## Why it matters
    /// Inputs far from zero make every first-layer unit start with a large
    /// shared offset: gradients of the first layer all point the same way,
    /// learning zig-zags, and initialization rules (which assume zero-mean,
    /// unit-variance inputs) no longer hold. Subtracting the mean and dividing
    /// by the standard deviation (per channel, from the training set) fixes it.
    ///
    /// ## Example
    /// Digit images fed as pixel values 0 to 16 (mean 4.9, std 6.0) fire:
    /// |mean| / std = 0.8 is above 0.2.
    ///
    /// ## Options
    /// - `max_mean_over_std` (default 0.2): the largest |mean| / std allowed.
    ///   SageMaker Debugger flags |mean| > 0.2 on normalized data.
    /// - `raw_max` (default 2.0): non-negative inputs whose maximum is at least
    ///   this look like raw, unscaled values.
    ///
    /// ## Known problems
    /// It looks at the whole input tensor; a single badly scaled channel among
    /// centered ones can pass. Inputs that are ids (token indices) are not
    /// meant to be centered: ignore the rule for such models.
    pub struct InputsNotCentered {
        id: "inputs-not-centered",
        checklist: "Mean centering",
        section: Data,
        needs: [TensorStats, Checkpoints],
        options: [
            max_mean_over_std: 0.2 => "largest |mean| / std of the inputs",
            raw_max: 2.0 => "non-negative inputs reaching this maximum look raw",
        ],
    }
}

impl Rule for InputsNotCentered {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let inputs = ctx.stats(TensorKind::Input);
        if inputs.is_empty() {
            return Outcome::Skipped(
                "needs input statistics: kind \"input\" lines in tensors.jsonl, or an `input` tensor in a checkpoint".into(),
            );
        }
        let limit = options.get("max_mean_over_std");
        let raw_max = options.get("raw_max");
        let mut findings = Vec::new();
        for (name, series) in inputs {
            let Some((step, s)) = series.iter().find(|(_, s)| s.count > 0 && s.std.is_finite()) else { continue };
            let ratio = s.mean.abs() / s.std.max(f64::MIN_POSITIVE);
            let raw = s.min >= 0.0 && s.max >= raw_max;
            if ratio > limit || raw {
                let what = if raw {
                    format!("looks like raw values: {} to {}", format_number(s.min), format_number(s.max))
                } else {
                    "is not centered".to_string()
                };
                findings.push(
                    Finding::new(
                        Self::META.id,
                        Severity::Warning,
                        format!("input {name:?} {what} (mean {}, std {})", format_number(s.mean), format_number(s.std)),
                    )
                    .evidence(Evidence::new("|mean| / std", ratio).threshold(format!("<= {}", format_number(limit))).at(*step).tensor(name))
                    .evidence(Evidence::new("min", s.min).at(*step))
                    .evidence(Evidence::new("max", s.max).at(*step))
                    .recommend(
                        "standardize the inputs: subtract the training set's per-channel mean and divide by its \
                         standard deviation (for images, scale to [0, 1] first)",
                    ),
                );
            }
        }
        if findings.is_empty() {
            Outcome::Passed("the inputs are centered and scaled".into())
        } else {
            Outcome::Fired(findings)
        }
    }
}
