use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;
use postmortem_recorder::Purpose;

declare_rule! {
    /// ## What it does
    /// Checks that a deliberate overfit run (`purpose: overfit-check`, or a run
    /// of unstated purpose on at most `max_examples` examples) drives the loss
    /// to near zero with regularization off.
    ///
    /// ## Why it matters
    /// A model that cannot memorize a handful of examples has a bug: wrong
    /// labels, a loss wired to the wrong outputs, an input pipeline that
    /// returns noise, or too little capacity. Checking this first saves days of
    /// tuning a model that could never learn. Dropout, L1/L2 and weight decay
    /// fight memorization, so they must be off for the check to mean anything.
    ///
    /// ## Example
    /// An overfit check on 50 digits whose loss stops at 1.6 (half of where it
    /// started) fires: a healthy model reaches under 1% of its initial loss.
    ///
    /// ## Options
    /// - `final_fraction` (default 0.01): the last loss must fall below this
    ///   fraction of the initial loss.
    /// - `max_examples` (default 100): a run that does not state its purpose
    ///   and has at most this many training examples is treated as an overfit
    ///   check too.
    ///
    /// ## Known problems
    /// A loss with a large irreducible part (label noise in the tiny set, a
    /// loss with a floor such as label smoothing) cannot reach zero; raise
    /// `final_fraction` for such runs. Runs that are neither marked nor tiny
    /// are skipped.
    pub struct OverfitTinyDataset {
        id: "overfit-tiny-dataset",
        checklist: "Overfit a tiny dataset",
        section: Data,
        needs: [Metadata, Metrics],
        options: [
            final_fraction: 0.01 => "last loss below this fraction of the initial loss",
            max_examples: 100.0 => "runs on at most this many examples count as overfit checks",
        ],
    }
}

impl Rule for OverfitTinyDataset {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let meta = &ctx.run.meta;
        let examples = meta.dataset.as_ref().and_then(|d| d.num_examples);
        let marked = meta.purpose == Some(Purpose::OverfitCheck);
        // An explicit purpose wins: a `train` run on a small data set (Iris has
        // 150 examples) is not expected to reach zero loss.
        let tiny = meta.purpose.is_none() && examples.is_some_and(|n| (n as f64) <= options.get("max_examples"));
        if !marked && !tiny {
            return Outcome::Skipped(
                "not an overfit check: mark a tiny-dataset sanity run with \"purpose\": \"overfit-check\" in run.json".into(),
            );
        }
        let Some(progress) = ctx.progress() else {
            return Outcome::Skipped("needs at least 5 finite loss values in metrics.jsonl".into());
        };
        let mut findings = Vec::new();
        let hp = meta.hyperparameters.as_ref();
        let regularizers: Vec<(&str, f64)> = [
            ("dropout", hp.and_then(|h| h.dropout)),
            ("l1", hp.and_then(|h| h.l1)),
            ("l2", hp.and_then(|h| h.l2)),
            ("weight_decay", hp.and_then(|h| h.weight_decay)),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.filter(|v| *v > 0.0).map(|v| (name, v)))
        .collect();
        let fraction = progress.last / progress.initial;
        let limit = options.get("final_fraction");
        if !(fraction < limit) {
            let mut f = Finding::new(
                Self::META.id,
                Severity::Error,
                format!(
                    "the overfit check failed: the {} only fell to {} ({} of its initial {})",
                    progress.metric,
                    format_number(progress.last),
                    percent(fraction),
                    format_number(progress.initial)
                ),
            )
            .evidence(Evidence::new(format!("last {} / initial", progress.metric), fraction).threshold(format!("< {}", format_number(limit))).at(progress.last_step))
            .recommend(
                "a model that cannot memorize a tiny set has a bug or too little capacity: turn regularization off, \
                 check that labels match inputs and that the loss reads the right outputs, then add capacity",
            );
            if let Some(n) = examples {
                f = f.evidence(Evidence::new("training examples", n as f64));
            }
            findings.push(f);
        }
        if !regularizers.is_empty() {
            let mut f = Finding::new(
                Self::META.id,
                Severity::Warning,
                format!(
                    "regularization is on in an overfit check: {}",
                    regularizers.iter().map(|(n, v)| format!("{n} = {}", format_number(*v))).collect::<Vec<_>>().join(", ")
                ),
            )
            .recommend("set dropout, L1/L2 and weight decay to 0 for the overfit check; they fight memorization");
            for (name, value) in &regularizers {
                f = f.evidence(Evidence::new(*name, *value).threshold("= 0"));
            }
            findings.push(f);
        }
        if findings.is_empty() {
            Outcome::Passed(format!(
                "the {} fell to {} of its initial value with regularization off",
                progress.metric,
                percent(fraction)
            ))
        } else {
            Outcome::Fired(findings)
        }
    }
}
