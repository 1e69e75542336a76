use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use postmortem_recorder::TensorKind;

declare_rule! {
    /// ## What it does
    /// Finds the first step at which a NaN or an infinity appears: in any
    /// scalar metric, and in the weights, gradients, updates, activations or
    /// inputs (the `nonfinite` count of their statistics).
    ///
    /// ## Why it matters
    /// One NaN spreads to everything it touches within a step or two; the
    /// first step and the first place it shows up point at the cause: the
    /// input (bad data), the activations (overflow in exp or log), the
    /// gradients (explosion), or the weights (an update that overflowed).
    ///
    /// ## Example
    /// A loss that becomes NaN at step 7, after gradients became infinite at
    /// step 6, fires with both steps.
    ///
    /// ## Options
    /// None.
    ///
    /// ## Known problems
    /// Tensor statistics are recorded every few steps, so the first recorded
    /// non-finite tensor can be later than the first real one.
    pub struct NonfiniteValues {
        id: "nonfinite-values",
        checklist: "NaN and infinities (beyond the checklist)",
        section: Gradients,
        needs: [Metrics, TensorStats, Checkpoints],
        options: [],
    }
}

impl Rule for NonfiniteValues {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, _options: &Options) -> Outcome {
        let mut firsts: Vec<(u64, String, f64)> = Vec::new();
        for name in ctx.run.metrics.names() {
            if let Some((step, v)) = ctx.run.metrics.facts(&name).and_then(|f| f.first_nonfinite) {
                firsts.push((step, format!("metric {name}"), v));
            }
        }
        let kinds = [TensorKind::Input, TensorKind::Activation, TensorKind::Grad, TensorKind::Update, TensorKind::Weight];
        let mut tensors_seen = false;
        for kind in kinds {
            let mut first: Option<(u64, String, f64)> = None;
            for (name, series) in ctx.stats(kind) {
                tensors_seen = true;
                if let Some((step, s)) = series.iter().find(|(_, s)| s.nonfinite > 0) {
                    if first.as_ref().is_none_or(|f| *step < f.0) {
                        first = Some((*step, format!("{} {name}", kind.as_str()), s.nonfinite as f64));
                    }
                }
            }
            firsts.extend(first);
        }
        if firsts.is_empty() {
            return match (ctx.run.metrics.rows(), tensors_seen) {
                (0, false) => Outcome::Skipped("needs metrics or tensor statistics".into()),
                (_, true) => Outcome::Passed("every metric and tensor statistic is finite".into()),
                (_, false) => Outcome::Passed("every metric is finite (no tensor statistics were recorded)".into()),
            };
        }
        firsts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let (step, where_, _) = &firsts[0];
        let mut finding = Finding::new(Self::META.id, Severity::Error, format!("NaN or infinity first appears at step {step}, in {where_}"));
        for (s, what, value) in firsts.iter().take(10) {
            let label = if what.starts_with("metric") { format!("{what} value") } else { format!("non-finite elements of {what}") };
            let tensor = what.split_once(' ').map(|(_, n)| n.to_string()).unwrap_or_default();
            finding = finding.evidence(Evidence::new(label, *value).threshold("finite").at(*s).tensor(tensor));
        }
        Outcome::Fired(vec![finding.recommend(
            "look at the earliest place: non-finite inputs mean bad data; activations, an overflow (exp, log of 0, \
             division); gradients, an explosion (clip them, lower the learning rate); run with anomaly detection \
             around that step",
        )])
    }
}
