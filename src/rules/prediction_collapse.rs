use super::class_imbalance::count_total;
use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::summary::format_number;
use crate::context::Context;

declare_rule! {
    /// ## What it does
    /// Checks whether the model's predictions concentrate on one class while
    /// the labels do not, at the end of the run (`pred_counts` against
    /// `label_counts` in metrics.jsonl, or `logits` against `labels` in the
    /// last checkpoint).
    ///
    /// ## Why it matters
    /// A model that predicts one class for everything has collapsed: it found
    /// the constant answer that minimizes the loss, usually because the
    /// classes are imbalanced, the signal vanished before the output, or
    /// learning stalled. Its accuracy equals that class's share.
    ///
    /// ## Example
    /// Predictions that are 100% class 1 while class 1 is 10% of the labels
    /// fire.
    ///
    /// ## Options
    /// - `max_share` (default 0.9): the largest share of predictions one
    ///   class may take.
    /// - `margin` (default 0.05): it fires only when that share exceeds the
    ///   class's share of the labels by at least this much.
    ///
    /// ## Known problems
    /// It reads the last recorded counts, and only when they come from the
    /// second half of the run; a model that collapses and recovers passes.
    pub struct PredictionCollapse {
        id: "prediction-collapse",
        checklist: "Balanced dataset; beyond undersampling",
        section: Data,
        needs: [Metrics, Checkpoints],
        options: [
            max_share: 0.9 => "largest share of predictions on one class",
            margin: 0.05 => "how far that share must exceed the class's share of labels",
        ],
    }
}

impl Rule for PredictionCollapse {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let counts = &ctx.run.metrics.counts;
        let from_metrics = counts.get("pred_counts").and_then(|preds| {
            let (step, pred) = preds.last()?;
            let labels = counts.get("label_counts")?.iter().rev().find(|(s, _)| s == step).map(|(_, c)| c.clone())?;
            Some((*step, pred.clone(), labels))
        });
        let (step, preds, labels) = match from_metrics {
            Some(found) => found,
            None => match ctx.checkpoint_predictions() {
                Some((step, labels, preds, classes)) => {
                    // Labels and predictions are below `classes`, the width of the logits.
                    let mut p = vec![0u64; classes];
                    let mut l = vec![0u64; classes];
                    preds.iter().for_each(|&i| p[i] += 1);
                    labels.iter().for_each(|&i| l[i] += 1);
                    (step, p, l)
                }
                None => {
                    return Outcome::Skipped(
                        "needs `pred_counts` with `label_counts` in metrics.jsonl, or `logits` and `labels` in a checkpoint".into(),
                    )
                }
            },
        };
        // Predictions of an untrained model say nothing: judge the end of the run.
        let last_step = ctx.run.metrics.steps().last().copied().unwrap_or(step);
        if step.saturating_mul(2) < last_step {
            return Outcome::Skipped(format!(
                "the last predictions recorded are from step {step} of {last_step}; record `pred_counts` (or logits) late in the run"
            ));
        }
        let (total_p, total_l) = (count_total(&preds), count_total(&labels));
        if total_p == 0 || total_l == 0 {
            return Outcome::Skipped("the prediction counts are empty".into());
        }
        let (top, &count) = preds.iter().enumerate().max_by_key(|(_, c)| **c).unwrap_or((0, &0));
        let share = count as f64 / total_p as f64;
        let label_share = labels.get(top).copied().unwrap_or(0) as f64 / total_l as f64;
        let limit = options.get("max_share");
        if share < limit || share < label_share + options.get("margin") {
            return Outcome::Passed(format!(
                "the most predicted class takes {} of predictions and {} of labels",
                percent(share),
                percent(label_share)
            ));
        }
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Error,
            format!("the model predicts class {top} for {} of examples, but only {} of labels are class {top}", percent(share), percent(label_share)),
        )
        .evidence(Evidence::new(format!("share of predictions for class {top}"), share).threshold(format!("< {}", format_number(limit))).at(step))
        .evidence(Evidence::new(format!("share of labels for class {top}"), label_share).at(step))
        .recommend(
            "the model collapsed to a constant answer: check the other findings for the cause (class imbalance, \
             vanishing signal, a learning rate that stalled training); for imbalance, weight the loss by inverse \
             class frequency or oversample the rare classes",
        )])
    }
}
