use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::{Context, SharedPoints};
use crate::series::{median, rolling_median};
use crate::summary::format_number;
use postmortem_recorder::TensorKind;

declare_rule! {
    /// ## What it does
    /// Looks for gradients that blow up, in the global gradient norm
    /// (`grad_norm` in metrics.jsonl, or the norm over the recorded per-layer
    /// gradients): a value `spike` times the median of the preceding ones and
    /// above every value of the first steps; a run of increases that
    /// multiplies the norm by `growth`; a norm that becomes NaN or infinite.
    /// A spike or a growth counts only where the loss feels it: within the
    /// next five loss values, the loss becomes non-finite or rises above 1.5
    /// times its median before (or no loss is recorded around it).
    /// Per layer, it checks the ratio of the first to the last layer's
    /// gradient norm (AUTOTRAINER flags more than 70).
    ///
    /// ## Why it matters
    /// Exploding gradients make each update larger than the weights
    /// themselves: the loss jumps, weights overflow, and the run ends in NaN.
    /// The cause is a learning rate too high, an initialization that makes
    /// the backward signal grow through the layers, or the lack of gradient
    /// clipping in deep or recurrent nets.
    ///
    /// ## Example
    /// A 10-layer ReLU net with 1.6x the He init and SGD at 0.02: the norm goes
    /// 900, 11,300, 1.5e7, then infinity. It fires.
    ///
    /// ## Options
    /// - `spike` (default 10): a norm this many times the median of the 20
    ///   before it is a spike.
    /// - `growth` (default 100): growth over consecutive increases (at most 10
    ///   points) that counts as explosion.
    /// - `layer_ratio` (default 70): largest first-to-last layer gradient norm
    ///   ratio.
    ///
    /// ## Known problems
    /// The first steps of a run often have the largest gradients; a spike or a
    /// growth must also end above all of the first three values to count, so
    /// a converged run whose tiny gradient returns to normal does not fire.
    /// Trainers that log the norm every N steps (Hugging Face's
    /// `logging_steps`) sample single steps, whose norms before clipping
    /// vary widely; that is why the loss must respond. Gradient norms
    /// logged after clipping hide the explosion: log them before clipping.
    /// Layers whose weights never change although they get a gradient
    /// (frozen, or left out of the optimizer) are not compared: their
    /// gradient keeps its early size while the trained layers' shrink.
    pub struct ExplodingGradients {
        id: "exploding-gradients",
        checklist: "Gradient clipping",
        section: Gradients,
        needs: [Metrics, TensorStats, Checkpoints],
        options: [
            spike: 10.0 => "spike over the median of the 20 norms before",
            growth: 100.0 => "growth over consecutive increases",
            layer_ratio: 70.0 => "largest first-to-last layer gradient norm ratio",
        ],
    }
}

/// The global gradient norm per step: the metric, or the norm over layers.
pub fn global_grad_norm(ctx: &Context) -> SharedPoints {
    let metric = ctx.metric("grad_norm");
    if !metric.is_empty() {
        return metric;
    }
    let mut per_step: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
    for series in ctx.stats(TensorKind::Grad).values() {
        for (step, s) in series {
            *per_step.entry(*step).or_insert(0.0) += s.l2 * s.l2;
        }
    }
    std::sync::Arc::new(per_step.into_iter().map(|(s, v)| (s, v.sqrt())).collect())
}

/// Whether the loss suffers from a gradient spike at `step`: within the next
/// five loss values it becomes non-finite or rises above 1.5 times its median
/// of the ten before. A spike the loss does not feel (one sampled step of a
/// clipped run, say) is not an explosion. Without a loss around the step,
/// the spike counts.
fn loss_responds(loss: &[(u64, f64)], step: u64) -> bool {
    let split = loss.partition_point(|p| p.0 < step);
    let before: Vec<f64> = loss[..split].iter().rev().map(|p| p.1).filter(|v| v.is_finite()).take(10).collect();
    let after = &loss[split..(split + 5).min(loss.len())];
    if before.is_empty() || after.is_empty() {
        return true;
    }
    let level = median(before.iter().copied());
    after.iter().any(|p| !p.1.is_finite() || p.1 > 1.5 * level)
}

impl Rule for ExplodingGradients {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let norms = global_grad_norm(ctx);
        let layers = ctx.trained_gradient_series();
        if norms.len() < 3 && layers.len() < 2 {
            return Outcome::Skipped("needs `grad_norm` in metrics.jsonl, or gradient statistics per layer (kind \"grad\" or grad/ tensors)".into());
        }
        let mut findings = Vec::new();
        let advice = "clip the gradient norm (1.0 is a common start), lower the learning rate, and check the \
                      initialization scale (He or Glorot)";
        if let Some(i) = norms.iter().position(|(_, v)| !v.is_finite()) {
            if norms[..i].iter().any(|(_, v)| v.is_finite()) {
                let (step, value) = norms[i];
                findings.push(
                    Finding::new(Self::META.id, Severity::Error, format!("the gradient norm becomes {} at step {step}", format_number(value)))
                        .evidence(Evidence::new("gradient norm", value).threshold("finite").at(step))
                        .evidence(Evidence::new("last finite gradient norm", norms[i - 1].1).at(norms[i - 1].0))
                        .recommend(advice),
                );
            }
        }
        let finite = &norms[..norms.iter().position(|(_, v)| !v.is_finite()).unwrap_or(norms.len())];
        let loss = ctx.metric("loss");
        let head_max = finite.iter().take(3).map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let spike_limit = options.get("spike");
        // trailing[i - 1] is the median of the (up to) 20 norms before i.
        let trailing = rolling_median(&finite.iter().map(|p| p.1).collect::<Vec<_>>(), 20);
        for i in 3..finite.len() {
            let before = trailing[i - 1];
            let (step, v) = finite[i];
            if v > spike_limit * before && v > head_max && loss_responds(&loss, step) {
                findings.push(
                    Finding::new(Self::META.id, Severity::Error, format!("the gradient norm spikes to {} at step {step}", format_number(v)))
                        .evidence(Evidence::new("gradient norm / median of the 20 before", v / before).threshold(format!("< {}", format_number(spike_limit))).at(step))
                        .recommend(advice),
                );
                break;
            }
        }
        let growth_limit = options.get("growth");
        let mut start = 0;
        for i in 1..finite.len() {
            if finite[i].1 <= finite[i - 1].1 || i - start > 10 {
                start = i;
                continue;
            }
            let factor = finite[i].1 / finite[start].1.max(f64::MIN_POSITIVE);
            if factor >= growth_limit && finite[i].1 > head_max && loss_responds(&loss, finite[i].0) {
                findings.push(
                    Finding::new(
                        Self::META.id,
                        Severity::Error,
                        format!(
                            "the gradient norm grows {}x from step {} to step {}",
                            format_number(factor),
                            finite[start].0,
                            finite[i].0
                        ),
                    )
                    .evidence(Evidence::new("growth of the gradient norm", factor).threshold(format!("< {}", format_number(growth_limit))).at(finite[i].0))
                    .recommend(advice),
                );
                break;
            }
        }
        if layers.len() >= 2 {
            let (first, last) = (layers[0], layers[layers.len() - 1]);
            let ratios = first.1.iter().filter_map(|(step, a)| {
                let b = last.1.iter().find(|(s, _)| s == step)?.1;
                (b.l2 > 0.0 && a.l2.is_finite()).then_some(a.l2 / b.l2)
            });
            let ratio = median(ratios);
            let limit = options.get("layer_ratio");
            if ratio > limit {
                findings.push(
                    Finding::new(
                        Self::META.id,
                        Severity::Warning,
                        format!("gradients grow towards the input: {} gets {}x the gradient of {}", first.0.weight, format_number(ratio), last.0.weight),
                    )
                    .evidence(Evidence::new("first / last layer gradient norm (median over steps)", ratio).threshold(format!("<= {}", format_number(limit))).tensor(&first.0.weight))
                    .recommend(advice),
                );
            }
        }
        if findings.is_empty() {
            Outcome::Passed("the gradient norm neither spikes nor runs away".into())
        } else {
            Outcome::Fired(findings)
        }
    }
}
