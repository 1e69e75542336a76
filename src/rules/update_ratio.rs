use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use super::common::next_learning_rates;
use crate::context::Context;
use crate::series::median;
use crate::summary::format_number;
use postmortem_recorder::TensorKind;

declare_rule! {
    /// ## What it does
    /// Computes, per weight layer, the size of one step's update against the
    /// size of the weights, ||dW|| / ||W||, from the `update` statistics
    /// (W at a recorded step minus W at the previous one, divided by the steps
    /// in between, or by the steps the line says it spans). It fires when the median while the run is learning (until
    /// the loss has made 90% of its drop) is below `low` or above `high` for
    /// most layers.
    ///
    /// ## Why it matters
    /// The ratio says how fast a layer learns, independent of the loss: far
    /// below 1e-4 the weights barely move (learning rate too low, or gradients
    /// vanish); far above 1e-2 each step rewrites a large part of the weights
    /// (learning rate too high, training unstable). cs231n's rule of thumb is
    /// about 1e-3.
    ///
    /// ## Example
    /// SGD at learning rate 1e-5: updates of 4e-6 of the weights per step. It
    /// fires as too slow.
    ///
    /// ## Options
    /// - `low` (default 1e-4): smallest per-step update ratio.
    /// - `high` (default 0.05): largest per-step update ratio. Adam moves each
    ///   weight by about the learning rate, so healthy Adam runs sit near
    ///   lr / std(W) (1e-2 and more early on); 1e-2 suits plain SGD.
    /// - `layer_fraction` (default 0.5): fraction of layers that must be out
    ///   of range.
    ///
    /// ## Known problems
    /// Needs `update` statistics (the recorder's candle integration writes
    /// them); checkpoints alone are not differenced. Layers whose weights are
    /// near zero get huge ratios and are left out.
    pub struct UpdateRatio {
        id: "update-ratio",
        checklist: "Weight-update ratio",
        section: Weights,
        needs: [Metrics, TensorStats, Checkpoints],
        options: [
            low: 1e-4 => "smallest per-step update-to-weight ratio",
            high: 0.05 => "largest per-step update-to-weight ratio",
            layer_fraction: 0.5 => "fraction of layers out of range",
        ],
    }
}

/// Per weight layer, the per-step ratio ||dW|| / ||W|| at each recorded step.
pub fn update_ratios(ctx: &Context) -> Vec<(String, Vec<(u64, f64)>)> {
    let weights = ctx.stats(TensorKind::Weight);
    // Updates that say how many steps they span (a recorder's optimizer
    // hooks: 1); the others span the steps since the previous record.
    let spans: std::collections::HashMap<(&str, u64), u64> = ctx
        .run
        .tensors
        .iter()
        .filter(|r| r.kind == TensorKind::Update)
        .filter_map(|r| Some(((r.name.as_str(), r.step), r.span.filter(|&n| n > 0)?)))
        .collect();
    ctx.weight_series(TensorKind::Update)
        .into_iter()
        .filter_map(|(layer, updates)| {
            let w = weights.get(&layer.weight)?;
            let mut out = Vec::new();
            for (step, u) in updates {
                let i = w.iter().position(|(s, _)| s == step)?;
                let since = match spans.get(&(layer.weight.as_str(), *step)) {
                    Some(&span) => span,
                    None if i > 0 => step - w[i - 1].0,
                    None => continue,
                };
                let norm = w[i].1.l2;
                if norm > 1e-12 && since > 0 && u.l2.is_finite() {
                    out.push((*step, u.l2 / norm / since as f64));
                }
            }
            (!out.is_empty()).then(|| (layer.weight.clone(), out))
        })
        .collect()
}

/// The first step at which the loss has made 90% of its overall drop (the
/// last step when it never does, or when there is no loss).
fn learning_phase_end(ctx: &Context) -> u64 {
    let loss = ctx.finite_metric("loss");
    let Some(p) = ctx.progress() else { return u64::MAX };
    if p.initial <= p.last {
        return u64::MAX;
    }
    let target = p.initial - 0.9 * (p.initial - p.last);
    let values: Vec<f64> = loss.iter().map(|x| x.1).collect();
    let smooth = crate::series::rolling_median(&values, crate::series::smoothing_window(values.len()));
    smooth.iter().position(|v| *v <= target).map_or(u64::MAX, |i| loss[i].0)
}

impl Rule for UpdateRatio {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let ratios = update_ratios(ctx);
        if ratios.is_empty() {
            return Outcome::Skipped(
                "needs update statistics with the weights: kind \"update\" and \"weight\" lines in tensors.jsonl".into(),
            );
        }
        let (low, high) = (options.get("low"), options.get("high"));
        // Once a run has converged its updates shrink legitimately: judge the
        // records up to the step where the loss had made 90% of its drop.
        let learning_until = learning_phase_end(ctx);
        let medians: Vec<(String, f64)> = ratios
            .iter()
            .map(|(n, r)| {
                let cut = r.partition_point(|p| p.0 <= learning_until).max(1);
                (n.clone(), median(r[..cut].iter().map(|p| p.1)))
            })
            .collect();
        let slow: Vec<&(String, f64)> = medians.iter().filter(|(_, m)| *m < low).collect();
        let fast: Vec<&(String, f64)> = medians.iter().filter(|(_, m)| *m > high).collect();
        let needed = (medians.len() as f64 * options.get("layer_fraction")).ceil().max(1.0) as usize;
        let overall = median(medians.iter().map(|m| m.1));
        let (group, too, lower, threshold) = if slow.len() >= needed {
            (slow, "small: the weights barely move", false, format!(">= {}", format_number(low)))
        } else if fast.len() >= needed {
            (fast, "large: each step rewrites much of the weights", true, format!("<= {}", format_number(high)))
        } else {
            return Outcome::Passed(format!("the median per-step update ratio is {}", format_number(overall)));
        };
        let mut finding = Finding::new(
            Self::META.id,
            Severity::Warning,
            format!("updates are too {too} (median ||dW|| / ||W|| per step {} over {} layers)", format_number(overall), group.len()),
        );
        for (name, m) in group.iter().take(8) {
            finding = finding.evidence(Evidence::new(format!("update ratio of {name}"), *m).threshold(threshold.clone()).tensor(name));
        }
        Outcome::Fired(vec![finding.recommend(format!("{}; aim for about 1e-3 per step", next_learning_rates(ctx, lower)))])
    }
}
