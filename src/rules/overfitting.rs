use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::median;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Checks whether the validation loss rises while the training loss keeps
    /// falling: `val_loss` at the end (the median of its last three values)
    /// is at least `rise` above its minimum (taken over medians of three
    /// neighbouring values), the rise is at least `of_descent` of what the
    /// validation loss fell from its first value to that minimum, and the
    /// training loss at the end is below its value at that minimum.
    ///
    /// ## Why it matters
    /// The model is memorizing the training set instead of learning what
    /// generalizes; every step after the validation minimum makes it worse on
    /// new data.
    ///
    /// ## Example
    /// A 256-unit net on 100 digits whose validation loss bottoms out at 0.5
    /// at step 150 and ends at 0.9 while the training loss goes to 0.001
    /// fires.
    ///
    /// ## Options
    /// - `rise` (default 0.1): the relative rise of the validation loss over
    ///   its minimum.
    /// - `of_descent` (default 0.15): the rise as a share of the validation
    ///   loss's fall before its minimum. A loss that fell from 0.11 to 0.008
    ///   and wobbles back to 0.010 has risen 25% over its minimum but given
    ///   back 2% of what it learned: noise of a small validation set, not
    ///   overfitting.
    ///
    /// ## Known problems
    /// Needs at least 5 validation points. A small validation set (a few
    /// hundred examples) is noisy; medians of three damp single evaluations,
    /// but a raise of `rise` may be needed for very small sets.
    pub struct Overfitting {
        id: "overfitting",
        checklist: "Overfitting (beyond the checklist)",
        section: Loss,
        needs: [Metrics],
        options: [
            rise: 0.1 => "relative rise of the validation loss over its minimum",
            of_descent: 0.15 => "rise as a share of the validation loss's fall to its minimum",
        ],
    }
}

impl Rule for Overfitting {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let val = ctx.finite_metric("val_loss");
        if val.len() < 5 {
            return Outcome::Skipped("needs at least 5 `val_loss` values in metrics.jsonl".into());
        }
        let train = ctx.finite_metric("loss");
        // Medians of three neighbours, so that one lucky or unlucky evaluation
        // decides neither the minimum nor the end.
        let smooth: Vec<f64> = (0..val.len())
            .map(|i| median(val[i.saturating_sub(1)..(i + 2).min(val.len())].iter().map(|p| p.1)))
            .collect();
        let (best, low) = smooth.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, f64::NAN));
        let end = median(val[val.len() - 3..].iter().map(|p| p.1));
        let rise = (end - low) / low.abs().max(f64::MIN_POSITIVE);
        let limit = options.get("rise");
        let train_at = |step: u64| train.iter().rev().find(|p| p.0 <= step).map(|p| p.1);
        let (best_step, last_step) = (val[best].0, val[val.len() - 1].0);
        let train_fell = matches!((train_at(best_step), train_at(last_step)), (Some(a), Some(b)) if b < a);
        // What the validation loss gave back, against what it had gained.
        let first = smooth[0];
        // Infinite when it never fell: every rise gives back more than all.
        let given_back = if first > low { (end - low) / (first - low) } else { f64::INFINITY };
        if rise < limit || !train_fell || given_back < options.get("of_descent") {
            return Outcome::Passed(format!("the validation loss ends {} above its minimum", percent(rise.max(0.0))));
        }
        let mut finding = Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "overfitting: the validation loss is lowest at step {best_step} ({}) and rises to {} while the training loss keeps falling",
                format_number(low),
                format_number(end)
            ),
        )
        .evidence(Evidence::new("validation loss rise over its minimum", rise).threshold(format!("< {}", format_number(limit))).at(last_step))
        .evidence(Evidence::new("lowest validation loss", low).at(best_step));
        if given_back.is_finite() {
            finding = finding
                .evidence(Evidence::new("rise / fall before the minimum", given_back).threshold(format!("< {}", format_number(options.get("of_descent")))));
        }
        Outcome::Fired(vec![finding.recommend(format!(
            "stop at step {best_step} (early stopping), add regularization (dropout, weight decay, augmentation), or get more data"
        ))])
    }
}
