use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Compares the regularization penalty (`reg_loss`) with the data loss
    /// (`data_loss`, or `loss - reg_loss`) and fires when the penalty is at
    /// least `ratio` times the data loss over a sustained stretch of the run.
    ///
    /// ## Why it matters
    /// When the penalty dominates, the optimizer spends its steps shrinking
    /// weights instead of fitting data: the total loss falls (the penalty
    /// falls) while the data loss stays where it was. The weight of the
    /// penalty (L2 lambda, weight decay) is too large, often by orders of
    /// magnitude because it was set for a loss summed over a batch.
    ///
    /// ## Example
    /// An L2 lambda of 1.0 on a two-layer net gives a penalty of 270 against a
    /// data loss of 3.0 at step 0 and fires.
    ///
    /// ## Options
    /// - `ratio` (default 10): penalty-to-data-loss ratio that counts as
    ///   dominating.
    /// - `min_fraction` (default 0.1): the stretch must cover this fraction of
    ///   the recorded steps (and at least 5 of them).
    ///
    /// ## Known problems
    /// Needs `reg_loss` recorded separately; frameworks that fold weight decay
    /// into the optimizer have no penalty term to compare, and are skipped.
    pub struct RegularizationDominates {
        id: "regularization-dominates",
        checklist: "Regularization loss",
        section: Loss,
        needs: [Metrics],
        options: [
            ratio: 10.0 => "penalty-to-data-loss ratio that dominates",
            min_fraction: 0.1 => "fraction of steps the stretch must cover",
        ],
    }
}

impl Rule for RegularizationDominates {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let reg = ctx.metric("reg_loss");
        if reg.is_empty() {
            return Outcome::Skipped("needs `reg_loss` (the penalty alone) and `data_loss` or `loss` in metrics.jsonl".into());
        }
        let data = ctx.metric("data_loss");
        let loss = ctx.metric("loss");
        let ratios: Vec<(u64, f64, f64, f64)> = reg
            .iter()
            .filter_map(|&(step, r)| {
                let d = match data.binary_search_by_key(&step, |p| p.0) {
                    Ok(i) => data[i].1,
                    Err(_) => loss.binary_search_by_key(&step, |p| p.0).ok().map(|i| loss[i].1 - r)?,
                };
                (d.is_finite() && r.is_finite() && d > 0.0).then_some((step, r / d, r, d))
            })
            .collect();
        if ratios.is_empty() {
            return Outcome::Skipped("no step has both a penalty and a data loss".into());
        }
        let limit = options.get("ratio");
        let mut best: (usize, usize) = (0, 0);
        let mut start = None;
        for (i, r) in ratios.iter().enumerate() {
            match (r.1 >= limit, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if i - s > best.1 - best.0 {
                        best = (s, i);
                    }
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            if ratios.len() - s > best.1 - best.0 {
                best = (s, ratios.len());
            }
        }
        let length = best.1 - best.0;
        let needed = ((ratios.len() as f64 * options.get("min_fraction")).ceil() as usize).max(5);
        if length < needed {
            let peak = ratios.iter().map(|r| r.1).fold(0.0, f64::max);
            return Outcome::Passed(format!("the penalty peaks at {}x the data loss", format_number(peak)));
        }
        let (first, last) = (ratios[best.0], ratios[best.1 - 1]);
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "the regularization penalty is {}x the data loss at step {} and stays above {limit}x until step {}",
                format_number(first.1),
                first.0,
                last.0
            ),
        )
        .evidence(Evidence::new("reg_loss / data_loss", first.1).threshold(format!("< {}", format_number(limit))).at(first.0))
        .evidence(Evidence::new("reg_loss", first.2).at(first.0))
        .evidence(Evidence::new("data_loss", first.3).at(first.0))
        .evidence(Evidence::new("steps dominated", length as f64).threshold(format!("< {}", format_number(needed as f64))))
        .recommend("lower the L2 lambda or weight decay 10x to 100x (typical values are 1e-5 to 1e-3 for a mean loss)")])
    }
}
