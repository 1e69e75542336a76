use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Advises a control run on a standard corpus when a run on a
    /// non-standard data set (`dataset.standard: false`) failed to learn.
    ///
    /// ## Why it matters
    /// When a model does not learn on your own data, the fault can be in the
    /// data or in the code. Training the same code on a well-known corpus
    /// (MNIST, CIFAR-10) where good numbers are known separates the two: if it
    /// fails there too, the code is wrong.
    ///
    /// ## Example
    /// A two-layer net on a generated "circles" set whose loss stays at
    /// ln(2) gets this advice; the same net on the digits set does not.
    ///
    /// ## Options
    /// None.
    ///
    /// ## Known problems
    /// A single run cannot see its siblings: `postmortem audit` names the runs
    /// on a standard corpus in the same folder as the control. "Failed to
    /// learn" means the loss fell by less than a tenth or stayed near the loss
    /// of guessing.
    pub struct NoStandardBaseline {
        id: "no-standard-baseline",
        checklist: "Train on standard corpora",
        section: Data,
        needs: [Metadata, Metrics],
        options: [],
    }
}

impl Rule for NoStandardBaseline {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, _options: &Options) -> Outcome {
        let dataset = ctx.run.meta.dataset.as_ref();
        let Some(standard) = dataset.and_then(|d| d.standard) else {
            return Outcome::Skipped("needs dataset.standard (true or false) in run.json".into());
        };
        if standard {
            return Outcome::Passed("the run is on a standard corpus".into());
        }
        let Some(progress) = ctx.progress() else {
            return Outcome::Skipped("needs at least 5 finite loss values in metrics.jsonl".into());
        };
        if progress.learned() {
            return Outcome::Passed("the run learned on its own data".into());
        }
        let name = dataset.and_then(|d| d.name.clone()).unwrap_or_else(|| "this data set".into());
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Info,
            format!("the run did not learn on {name}, which is not a standard corpus"),
        )
        .evidence(Evidence::new(format!("last {}", progress.metric), progress.last).at(progress.last_step))
        .evidence(Evidence::new(format!("initial {}", progress.metric), progress.initial).at(progress.initial_step))
        .recommend(format!(
            "run the same code on a standard corpus (MNIST, CIFAR-10) where good results are known: if it fails there \
             too, the bug is in the code, not in {name}; the loss only moved from {} to {}",
            format_number(progress.initial),
            format_number(progress.last)
        ))])
    }
}
