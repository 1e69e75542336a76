use super::common::{next_learning_rates, percent};
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Checks that the loss fell: the median of the last tenth of the run
    /// against the first few values. It also fires when a classification loss
    /// ends at the loss of guessing, ln(C), however high it started, and when
    /// the loss is exactly 0 in more than half of its values (a loss of
    /// exactly zero has no gradient: masked labels, empty batches, a loss
    /// cut off from the output).
    ///
    /// ## Why it matters
    /// A loss that does not move means nothing is learned: the learning rate
    /// is far too low, gradients do not reach the weights, the model cannot
    /// express the task, or the loss is computed on the wrong thing (a softmax
    /// applied twice flattens it). TheDeepChecker flags a relative drop under
    /// 5%.
    ///
    /// ## Example
    /// SGD at learning rate 1e-5 moving the loss from 3.01 to 2.92 (3%) over
    /// 300 steps fires.
    ///
    /// ## Options
    /// - `min_drop` (default 0.05): the smallest relative drop of the loss.
    /// - `chance_fraction` (default 0.95): a loss ending at or above this
    ///   fraction of ln(C) is stuck at guessing.
    ///
    /// ## Known problems
    /// Uses `data_loss` when recorded, so that a shrinking penalty does not
    /// hide a data loss that stays put. A run that diverged to NaN is left to
    /// loss-diverging. Very short runs can fire before learning starts.
    pub struct LossNotDecreasing {
        id: "loss-not-decreasing",
        checklist: "Learning rate",
        section: Loss,
        needs: [Metrics],
        options: [
            min_drop: 0.05 => "smallest relative drop of the loss",
            chance_fraction: 0.95 => "ending at this fraction of ln(C) is stuck at guessing",
        ],
    }
}

impl Rule for LossNotDecreasing {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let Some(p) = ctx.progress() else {
            return Outcome::Skipped("needs at least 5 finite loss values in metrics.jsonl".into());
        };
        let loss = ctx.metric("loss");
        if loss.iter().any(|(_, v)| !v.is_finite()) {
            return Outcome::Passed("the loss became non-finite; loss-diverging reports it".into());
        }
        // A loss of exactly zero gives no gradient: nothing is learned from
        // there on, however good the number looks.
        let zeros = loss.iter().filter(|(_, v)| *v == 0.0).count();
        if loss.len() >= 5 && zeros * 2 > loss.len() {
            let first = loss.iter().find(|(_, v)| *v == 0.0).map_or(0, |p| p.0);
            return Outcome::Fired(vec![Finding::new(
                Self::META.id,
                Severity::Warning,
                format!("the loss is exactly 0 in {zeros} of its {} values, from step {first} on: no gradient, so nothing is learned", loss.len()),
            )
            .evidence(Evidence::new("share of loss values exactly 0", zeros as f64 / loss.len() as f64).threshold("<= 0.5").at(first))
            .recommend(
                "a loss of exactly 0 is rarely learned: check that labels are not all masked (-100), that batches are not \
                 empty, and that the loss is computed from the model's output; a tiny data set memorized for hundreds of \
                 epochs gets there too (train on more data, or stop earlier)",
            )]);
        }
        let drop = p.relative_drop();
        let min_drop = options.get("min_drop");
        let at_chance = p.chance.filter(|c| p.last >= options.get("chance_fraction") * c);
        if drop >= min_drop && at_chance.is_none() {
            return Outcome::Passed(format!("the {} fell by {}", p.metric, percent(drop)));
        }
        let message = match at_chance {
            Some(c) => format!(
                "the {} ends at {}, {} the loss of guessing among the classes (ln C = {})",
                p.metric,
                format_number(p.last),
                if p.last > 1.5 * c { "far above" } else { "at" },
                format_number(c)
            ),
            None if drop < 0.0 => format!(
                "the {} rose from {} to {} ({} higher)",
                p.metric,
                format_number(p.initial),
                format_number(p.last),
                percent(-drop)
            ),
            None => format!(
                "the {} barely moved: {} to {} ({} drop)",
                p.metric,
                format_number(p.initial),
                format_number(p.last),
                percent(drop)
            ),
        };
        let mut finding = Finding::new(Self::META.id, Severity::Error, message)
            .evidence(Evidence::new(format!("relative drop of {}", p.metric), drop).threshold(format!(">= {}", format_number(min_drop))).at(p.last_step))
            .evidence(Evidence::new(format!("initial {}", p.metric), p.initial).at(p.initial_step))
            .evidence(Evidence::new(format!("last {}", p.metric), p.last).at(p.last_step));
        if let Some(c) = at_chance {
            finding = finding.evidence(Evidence::new("ln(num_classes)", c).threshold(format!("last < {} x ln C", options.get("chance_fraction"))));
        }
        Outcome::Fired(vec![finding.recommend(format!(
            "{}; if that does not help, look at the other findings (vanishing gradients, dead units) and check that \
             the loss is computed on raw logits with the right labels",
            next_learning_rates(ctx, false)
        ))])
    }
}
