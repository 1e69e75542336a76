use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::median;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Checks the gradients reaching each weight layer (median over the
    /// recorded steps): a mean absolute gradient below `min_abs_mean`, a
    /// gradient that is almost all zeros, or a first layer whose gradient norm
    /// is less than `min_layer_ratio` of the last layer's.
    ///
    /// ## Why it matters
    /// Layers that receive no gradient do not learn. In deep nets with
    /// saturating nonlinearities each layer multiplies the backward signal by
    /// at most 0.25 (sigmoid), so the first layers get nothing; with zero or
    /// tiny weights, nothing flows at all. Plotting per-layer gradient norms
    /// shows it at a glance.
    ///
    /// ## Example
    /// A 16-layer sigmoid MLP: fc1's gradient norm is 2e-10, fc16's 0.19, a
    /// ratio of 1e-9. It fires.
    ///
    /// ## Options
    /// - `min_abs_mean` (default 1e-7): smallest mean absolute gradient of a
    ///   layer.
    /// - `max_zero_frac` (default 0.99): largest fraction of exact zeros.
    /// - `min_layer_ratio` (default 1e-3): smallest first-to-last layer
    ///   gradient norm ratio.
    ///
    /// ## Known problems
    /// Gradients are judged on the weights only (not biases). A layer frozen
    /// on purpose has no gradient recorded, or a gradient but weights that
    /// never change, and is not judged.
    pub struct VanishingGradients {
        id: "vanishing-gradients",
        checklist: "Plot your gradients",
        section: Gradients,
        needs: [TensorStats, Checkpoints],
        options: [
            min_abs_mean: 1e-7 => "smallest mean absolute gradient of a layer",
            max_zero_frac: 0.99 => "largest fraction of exact zeros in a layer's gradient",
            min_layer_ratio: 1e-3 => "smallest first-to-last layer gradient norm ratio",
        ],
    }
}

impl Rule for VanishingGradients {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let layers = ctx.trained_gradient_series();
        if layers.is_empty() {
            return Outcome::Skipped("needs gradient statistics per layer: kind \"grad\" lines in tensors.jsonl, or grad/ tensors in checkpoints".into());
        }
        let advice = "use ReLU-family nonlinearities with He initialization in deep nets, add batch normalization or \
                      residual connections, and check for zero or tiny initial weights";
        let (min_abs, max_zero) = (options.get("min_abs_mean"), options.get("max_zero_frac"));
        let mut findings = Vec::new();
        // One finding for all starved layers, with each layer's number.
        let mut starved: Vec<(String, Evidence)> = Vec::new();
        for (layer, series) in &layers {
            let abs_mean = median(series.iter().map(|(_, s)| s.abs_mean));
            let zero_frac = median(series.iter().map(|(_, s)| s.zero_frac));
            let step = series.last().map(|p| p.0).unwrap_or(0);
            if zero_frac > max_zero {
                starved.push((
                    format!("{} ({} zeros)", layer.weight, percent(zero_frac)),
                    Evidence::new(format!("zero fraction of the gradient of {}", layer.weight), zero_frac)
                        .threshold(format!("<= {}", format_number(max_zero)))
                        .at(step)
                        .tensor(&layer.weight),
                ));
            } else if abs_mean < min_abs {
                starved.push((
                    format!("{} (mean |g| {})", layer.weight, format_number(abs_mean)),
                    Evidence::new(format!("mean |gradient| of {}", layer.weight), abs_mean)
                        .threshold(format!(">= {}", format_number(min_abs)))
                        .at(step)
                        .tensor(&layer.weight),
                ));
            }
        }
        if !starved.is_empty() {
            let names: Vec<&str> = starved.iter().take(4).map(|s| s.0.as_str()).collect();
            let more = if starved.len() > 4 { format!(" and {} more", starved.len() - 4) } else { String::new() };
            let mut finding = Finding::new(
                Self::META.id,
                Severity::Error,
                format!("{} of {} layers receive almost no gradient: {}{more}", starved.len(), layers.len(), names.join(", ")),
            );
            for (_, evidence) in starved.into_iter().take(12) {
                finding = finding.evidence(evidence);
            }
            findings.push(finding.recommend(advice));
        }
        if layers.len() >= 2 {
            let (first, last) = (layers[0], layers[layers.len() - 1]);
            let ratio = median(first.1.iter().filter_map(|(step, a)| {
                let b = last.1.iter().find(|(s, _)| s == step)?.1;
                (b.l2 > 0.0).then_some(a.l2 / b.l2)
            }));
            let limit = options.get("min_layer_ratio");
            if ratio < limit {
                findings.push(
                    Finding::new(
                        Self::META.id,
                        Severity::Error,
                        format!(
                            "gradients vanish towards the input: {} gets {} of the gradient norm of {}",
                            first.0.weight,
                            format_number(ratio),
                            last.0.weight
                        ),
                    )
                    .evidence(Evidence::new("first / last layer gradient norm (median over steps)", ratio).threshold(format!(">= {}", format_number(limit))).tensor(&first.0.weight))
                    .recommend(advice),
                );
            }
        }
        if findings.is_empty() {
            Outcome::Passed(format!("{} layer(s) receive gradients", layers.len()))
        } else {
            Outcome::Fired(findings)
        }
    }
}
