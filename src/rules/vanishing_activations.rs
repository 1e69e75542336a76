use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::natural_cmp;
use crate::summary::format_number;
use postmortem_recorder::{TensorKind, TensorStats};

declare_rule! {
    /// ## What it does
    /// Follows the signal through the depth of the net: for each layer's
    /// output, how much it varies across the examples of the batch
    /// (`batch_std`, or the plain `std` when that was not recorded). It fires
    /// when the last hidden layer carries less than `min_ratio` of the first
    /// one's signal.
    ///
    /// ## Why it matters
    /// When the signal shrinks layer after layer, the deep layers output the
    /// same thing for every example: the network's prediction no longer
    /// depends on its input, and the gradients that flow back shrink the same
    /// way. It comes from an initialization that is too small for the depth,
    /// or from saturating nonlinearities (sigmoid) without normalization.
    ///
    /// ## Example
    /// A 16-layer sigmoid MLP without batch norm fires: the per-unit spread
    /// across the batch falls from 0.21 in fc1 to 5e-9 in fc16, while the
    /// plain std stays near 0.1 (every unit sits at its own constant).
    ///
    /// ## Options
    /// - `min_ratio` (default 0.01): the smallest last-to-first ratio of the
    ///   signal. TheDeepChecker flags layers outside [0.5, 2] of their
    ///   neighbour; the ratio over the whole depth is less noisy.
    ///
    /// ## Known problems
    /// Needs the activations of at least two layers at the same step. Layer
    /// order comes from `model.layers`, else from the layers' names (`fc2`
    /// before `fc10`). Nets that shrink their width on purpose (bottlenecks)
    /// can lose signal legitimately.
    pub struct VanishingActivations {
        id: "vanishing-activations",
        checklist: "Weight init, deeper models",
        section: Activations,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [min_ratio: 0.01 => "smallest last-to-first ratio of the activation signal"],
    }
}

/// How much a layer's output varies with the input.
pub fn signal(stats: &TensorStats) -> f64 {
    stats.batch_std.unwrap_or(stats.std)
}

/// Recorded layer outputs in forward order.
pub fn layers_in_order(ctx: &Context) -> Vec<String> {
    let recorded = ctx.stats(TensorKind::Activation);
    let declared = ctx.run.meta.model.as_ref().map(|m| m.layers.as_slice()).unwrap_or_default();
    let mut names: Vec<String> = declared.iter().map(|l| l.name.clone()).filter(|n| recorded.contains_key(n)).collect();
    if names.is_empty() {
        names = recorded.keys().cloned().collect();
        names.sort_by(|a, b| natural_cmp(a, b));
    }
    names
}

impl Rule for VanishingActivations {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let recorded = ctx.stats(TensorKind::Activation);
        let names = layers_in_order(ctx);
        if names.len() < 2 {
            return Outcome::Skipped(
                "needs the outputs of at least two layers: kind \"activation\" lines in tensors.jsonl, or act/ tensors in a checkpoint".into(),
            );
        }
        let (first, last) = (&names[0], &names[names.len() - 1]);
        let limit = options.get("min_ratio");
        // The earliest step both are recorded at: the initialization decides this.
        let step_pairs: Vec<(u64, f64, f64)> = recorded[first]
            .iter()
            .filter_map(|(step, a)| {
                let b = recorded[last].iter().find(|(s, _)| s == step)?.1;
                Some((*step, signal(a), signal(&b)))
            })
            .filter(|(_, a, b)| a.is_finite() && b.is_finite())
            .collect();
        let Some(&(step, a, b)) = step_pairs.first() else {
            return Outcome::Skipped(format!("{first} and {last} are never recorded at the same step"));
        };
        let ratio = if a > 0.0 { b / a } else { f64::NAN };
        if !(ratio < limit) {
            return Outcome::Passed(format!("{last} keeps {} of {first}'s signal at step {step}", format_number(ratio)));
        }
        let no_norm = !ctx
            .run
            .meta
            .model
            .as_ref()
            .is_some_and(|m| m.layers.iter().any(|l| l.kind.as_deref().is_some_and(|k| k.contains("norm"))));
        let batch = ctx.run.meta.hyperparameters.as_ref().and_then(|h| h.batch_size);
        let mut advice = String::from(
            "initialize with the fan-in rule of the nonlinearity (He for ReLU, Glorot for tanh), prefer ReLU over sigmoid in deep stacks",
        );
        if no_norm {
            advice.push_str(", and add batch normalization (the run has none)");
        }
        if let Some(b) = batch.filter(|b| *b < 16) {
            advice.push_str(&format!("; batch size {b} is small for batch normalization, consider layer or group normalization"));
        }
        let mut finding = Finding::new(
            Self::META.id,
            Severity::Error,
            format!(
                "the signal vanishes with depth: {last} varies {} as much as {first} across the batch at step {step}",
                format_number(ratio)
            ),
        )
        .evidence(Evidence::new(format!("signal of {last} / {first}"), ratio).threshold(format!(">= {}", format_number(limit))).at(step));
        for name in names.iter().take(12) {
            if let Some((_, s)) = recorded[name].iter().find(|(s, _)| *s == step) {
                finding = finding.evidence(Evidence::new(format!("signal of {name}"), signal(s)).at(step).tensor(name));
            }
        }
        Outcome::Fired(vec![finding.recommend(advice)])
    }
}
