use super::common::percent;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::median;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Detects a "hockey stick" loss curve: most of the run's total loss drop
    /// happens in its first few percent of steps, falling by a large factor
    /// from a start that is abnormally high (at least twice ln C for a
    /// classifier; where the number of classes is unknown, the early drop
    /// must be tenfold), after which the curve flattens.
    ///
    /// ## Why it matters
    /// A steep early drop means the first steps are spent undoing a bad
    /// starting point, usually weights or outputs initialized far too large.
    /// The scale is fixed eventually, but those steps are wasted, and the
    /// large early gradients can damage the representation (dead units, huge
    /// Adam moment estimates).
    ///
    /// ## Example
    /// A net initialized at 5x the He scale starts at a loss of 354 and is at
    /// 25 ten steps later, of a total drop to 0.001: it fires.
    ///
    /// ## Options
    /// - `early_fraction` (default 0.05): the part of the run that counts as
    ///   early.
    /// - `drop_share` (default 0.8): the share of the total drop that
    ///   happens early.
    /// - `early_factor` (default 3): how many times the loss must fall early.
    /// - `min_early_level` (default 0.01): the loss after the early drop must
    ///   still be at least this fraction of the initial loss; below it the run
    ///   simply converged fast (an overfit check on 50 examples does).
    ///
    /// ## Known problems
    /// Needs at least 20 finite loss values. A healthy run with a fast
    /// optimizer sheds most of its loss early too; the abnormal-start
    /// condition keeps those out (on the keras-faults corpus, without it, the
    /// rule fired on 7 fixed runs of 144).
    pub struct HockeyStickLoss {
        id: "hockey-stick-loss",
        checklist: "Steep loss reduction",
        section: Loss,
        needs: [Metrics],
        options: [
            early_fraction: 0.05 => "part of the run that counts as early",
            drop_share: 0.8 => "share of the total drop that happens early",
            early_factor: 3.0 => "how many times the loss must fall early",
            min_early_level: 0.01 => "the loss after the early drop, as a fraction of the initial loss",
        ],
    }
}

impl Rule for HockeyStickLoss {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let points = ctx.finite_metric("loss");
        if points.len() < 20 {
            return Outcome::Skipped("needs at least 20 finite loss values in metrics.jsonl".into());
        }
        let n = points.len();
        let (first_step, last_step) = (points[0].0, points[n - 1].0);
        // Steps and the option come from files: the sum saturates.
        let early_end = first_step.saturating_add(((last_step - first_step) as f64 * options.get("early_fraction")).ceil() as u64);
        let k = points.partition_point(|p| p.0 <= early_end).clamp(2, n - 1);
        let initial = points[0].1;
        let early = median(points[k.saturating_sub(2)..(k + 1).min(n)].iter().map(|p| p.1));
        let last = median(points[n - (n / 10).max(1)..].iter().map(|p| p.1));
        let total = initial - last;
        if !(total > 0.0) {
            return Outcome::Passed("the loss did not fall overall".into());
        }
        let share = (initial - early) / total;
        let factor = initial / early.max(f64::MIN_POSITIVE);
        let (share_limit, factor_limit) = (options.get("drop_share"), options.get("early_factor"));
        // The pathology is a start far above normal: twice the loss of
        // guessing where that is known, else a drop of ten times or more.
        let abnormal_start = match ctx.chance_loss() {
            Some(chance) => initial >= 2.0 * chance,
            None => factor >= 10.0,
        };
        if share < share_limit || factor < factor_limit || early < options.get("min_early_level") * initial || !abnormal_start {
            return Outcome::Passed(format!(
                "{} of the drop happens by step {}, falling {}x",
                percent(share),
                points[k].0,
                format_number(factor)
            ));
        }
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "hockey-stick loss: it falls from {} to {} by step {} ({} of the whole drop), then flattens",
                format_number(initial),
                format_number(early),
                points[k].0,
                percent(share)
            ),
        )
        .evidence(Evidence::new("share of the drop that is early", share).threshold(format!("< {}", format_number(share_limit))).at(points[k].0))
        .evidence(Evidence::new("initial / early loss", factor).threshold(format!("< {}", format_number(factor_limit))).at(points[k].0))
        .evidence(Evidence::new("initial loss", initial).at(first_step))
        .recommend(
            "the first steps are undoing the initialization: scale the initial weights with the fan-in rule (He or \
             Glorot) and the output layer small, so the loss starts near ln C",
        )])
    }
}
