use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Compares the loss at step 0 (`data_loss` when recorded, since a penalty
    /// is not part of the prediction) with the loss of a classifier that knows
    /// nothing: ln(C) for cross-entropy over C classes (ln 2 for binary
    /// cross-entropy). It fires when they differ by `tolerance` times ln(C)
    /// or more (TheDeepChecker's test). A model that starts from pretrained
    /// weights (`model.pretrained`; a Hugging Face config's `_name_or_path`)
    /// is expected to start below ln(C), and fires only above it.
    ///
    /// ## Why it matters
    /// Small random weights give near-uniform softmax probabilities, so the
    /// first loss should be close to ln(C) (2.30 for 10 classes). Far above it,
    /// the network starts confidently wrong: the output layer or the inputs
    /// are scaled far too large, or the loss is summed over the batch instead
    /// of averaged (then it is about batch size x ln C).
    ///
    /// ## Example
    /// An output layer initialized 30x too large starts at 57 against
    /// ln(10) = 2.30 and fires.
    ///
    /// ## Options
    /// - `tolerance` (default 1.0): the largest |L0 - ln C| in units of ln C.
    ///
    /// ## Known problems
    /// It holds for a cross-entropy computed from raw logits. A loss computed
    /// on outputs that were already normalized (a softmax applied twice)
    /// starts at ln(C) exactly and passes, although the run cannot learn;
    /// loss-not-decreasing catches that. Label smoothing and class weights
    /// shift the expected value a little.
    pub struct InitialLossMismatch {
        id: "initial-loss-mismatch",
        checklist: "Cross-entropy initial loss",
        section: Loss,
        needs: [Metadata, Metrics],
        options: [tolerance: 1.0 => "largest |L0 - ln C| in units of ln C"],
    }
}

impl Rule for InitialLossMismatch {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let Some(expected) = ctx.chance_loss() else {
            return Outcome::Skipped(
                "needs a classification task: task.num_classes and task.loss (cross_entropy or bce) in run.json".into(),
            );
        };
        // The penalty is not part of what ln C predicts.
        let (metric, loss) = match ctx.metric("data_loss") {
            data if !data.is_empty() => ("data_loss", data),
            _ => ("loss", ctx.metric("loss")),
        };
        let Some(&(step, first)) = loss.first() else {
            return Outcome::Skipped("needs the loss at step 0 in metrics.jsonl".into());
        };
        if step > 1 {
            return Outcome::Skipped(format!("the first recorded loss is at step {step}; record the loss at step 0"));
        }
        let tolerance = options.get("tolerance");
        let gap = (first - expected).abs() / expected;
        if gap < tolerance {
            return Outcome::Passed(format!("the first loss {} is close to ln C = {}", format_number(first), format_number(expected)));
        }
        // A fine-tune starts from weights that already predict: below ln C is
        // where it should start. Far above still means something is wrong.
        if let Some(origin) = ctx.run.meta.model.as_ref().and_then(|m| m.pretrained.as_deref()).filter(|_| first < expected) {
            return Outcome::Passed(format!(
                "the first loss {} is below ln C = {}, as a model starting from pretrained weights ({origin}) should be",
                format_number(first),
                format_number(expected)
            ));
        }
        let batch = ctx.run.meta.hyperparameters.as_ref().and_then(|h| h.batch_size).filter(|b| *b > 1);
        let summed = batch.filter(|b| {
            let ratio = first / (*b as f64 * expected);
            (0.5..2.0).contains(&ratio)
        });
        let cause = match summed {
            Some(b) => format!("it is close to batch size x ln C = {}: the loss looks summed over the batch, not averaged", format_number(b as f64 * expected)),
            None if first > expected => "the network starts confidently wrong: the output layer or the inputs are scaled too large".to_string(),
            None => "the first loss is far below guessing: check that the loss is computed on raw logits and that labels do not leak into inputs".to_string(),
        };
        let severity = if gap >= 3.0 * tolerance { Severity::Error } else { Severity::Warning };
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            severity,
            format!("the {metric} starts at {}, expected about ln C = {}; {cause}", format_number(first), format_number(expected)),
        )
        .evidence(Evidence::new("|L0 - ln C| / ln C", gap).threshold(format!("< {}", format_number(tolerance))).at(step))
        .evidence(Evidence::new(format!("{metric} at the first step"), first).at(step))
        .recommend(match summed {
            Some(_) => "average the loss over the batch (reduction = mean), or divide the learning rate by the batch size".to_string(),
            None => "initialize the output layer small (LeCun std sqrt(1 / fan_in), or scaled down 10x), standardize the inputs, \
                     and compute the cross-entropy from raw logits"
                .to_string(),
        })])
    }
}
