use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::summary::format_number;
use crate::context::Context;

declare_rule! {
    /// ## What it does
    /// Counts the labels the model was trained on (`label_counts` in
    /// metrics.jsonl, or the `labels` tensors of checkpoints) and checks the
    /// ratio of the most to the least frequent class.
    ///
    /// ## Why it matters
    /// With one class far more frequent than the others, a model can reach a
    /// low loss and a high accuracy by predicting that class alone, and the
    /// rare classes barely shape the gradients.
    ///
    /// ## Example
    /// A digits set where class 0 is 92% of the labels (ratio 100 to 1)
    /// fires: the default limit is 10 to 1.
    ///
    /// ## Options
    /// - `max_ratio` (default 10): the largest allowed count ratio between the
    ///   most and the least frequent class. A class never seen counts as an
    ///   infinite ratio.
    ///
    /// ## Known problems
    /// From checkpoint labels alone the counts cover only the recorded
    /// batches; with fewer than 20 labels per class they are not used.
    pub struct ClassImbalance {
        id: "class-imbalance",
        checklist: "Balanced dataset; beyond undersampling",
        section: Data,
        needs: [Metadata, Metrics, Checkpoints],
        options: [max_ratio: 10.0 => "largest most-to-least frequent class ratio"],
    }
}

/// Adds per-class counts into a running total; counts come from files, so
/// the sums saturate rather than overflow.
pub fn add_counts(total: &mut [u64], counts: &[u64]) {
    for (t, c) in total.iter_mut().zip(counts) {
        *t = t.saturating_add(*c);
    }
}

/// The sum of per-class counts, saturating.
pub fn count_total(counts: &[u64]) -> u64 {
    counts.iter().fold(0u64, |sum, c| sum.saturating_add(*c))
}

/// Summed label counts, from metrics or from checkpoint labels.
pub fn label_counts(ctx: &Context) -> Option<Vec<u64>> {
    if let Some(series) = ctx.run.metrics.counts.get("label_counts") {
        // Each list is as long as its line allows; num_classes is bounded.
        let width = series.iter().map(|(_, c)| c.len()).max()?;
        let mut total = vec![0u64; width.max(ctx.num_classes().unwrap_or(0))];
        for (_, counts) in series {
            add_counts(&mut total, counts);
        }
        return Some(total);
    }
    let classes = ctx.num_classes()?;
    let mut total = vec![0u64; classes];
    for checkpoint in &ctx.run.checkpoints {
        let Some(entry) = checkpoint.tensor(postmortem_recorder::format::LABELS_TENSOR) else { continue };
        let Ok(labels) = checkpoint.values(entry) else { continue };
        for label in labels {
            if let Some(slot) = total.get_mut(label.max(0.0) as usize) {
                *slot += 1;
            }
        }
    }
    (count_total(&total) >= 20 * classes as u64).then_some(total)
}

impl Rule for ClassImbalance {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let Some(counts) = label_counts(ctx) else {
            return Outcome::Skipped(
                "needs label counts: `label_counts` in metrics.jsonl, or `labels` tensors in checkpoints (with task.num_classes)".into(),
            );
        };
        let total = count_total(&counts);
        if total == 0 || counts.len() < 2 {
            return Outcome::Skipped("the label counts are empty".into());
        }
        let (major, &most) = counts.iter().enumerate().max_by_key(|(_, c)| **c).unwrap_or((0, &0));
        let (minor, &least) = counts.iter().enumerate().min_by_key(|(_, c)| **c).unwrap_or((0, &0));
        let ratio = if least == 0 { f64::INFINITY } else { most as f64 / least as f64 };
        let limit = options.get("max_ratio");
        if ratio <= limit {
            return Outcome::Passed(format!("the most frequent class is {ratio:.1} times the least frequent"));
        }
        let message = if least == 0 {
            format!("class {minor} never appears among {total} labels; class {major} is {} of them", percent(most as f64 / total as f64))
        } else {
            format!("class {major} is {} of the labels, {ratio:.0} times class {minor}", percent(most as f64 / total as f64))
        };
        Outcome::Fired(vec![Finding::new(Self::META.id, Severity::Warning, message)
            .evidence(Evidence::new(format!("count of class {major} / class {minor}"), ratio).threshold(format!("<= {}", format_number(limit))))
            .evidence(Evidence::new(format!("share of class {major}"), most as f64 / total as f64))
            .recommend(
                "undersample the frequent class, or go beyond it: weight the loss by inverse class frequency, \
                 oversample the rare classes (or augment them), or use a focal loss; judge the model by per-class \
                 recall or balanced accuracy, not plain accuracy",
            )])
    }
}
