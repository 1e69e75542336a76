use super::common::{next_learning_rates, percent};
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::{median, windows};
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Detects a loss that swings up and down instead of settling. The run is
    /// cut into ten windows; a window oscillates when the step-to-step change
    /// flips sign more than `sign_flips` of the time, the typical swing is at
    /// least `amplitude` times the initial loss and `level_amplitude` times
    /// the window's own level, the loss is still above
    /// `min_level` of its initial value, and the window makes less than
    /// `max_progress` net progress. It fires when `window_fraction` of the
    /// windows oscillate.
    ///
    /// ## Why it matters
    /// A learning rate just above what the loss surface allows makes each step
    /// jump across the valley: the loss bounces at a high level and makes
    /// little net progress, typically with plain SGD and no momentum.
    /// Minibatch noise also flips the sign, but a healthy run keeps making
    /// progress or settles near zero, which the level and progress conditions
    /// leave out.
    ///
    /// ## Example
    /// SGD at learning rate 2.0 on the digits: 3.0, 2.9, 6.4, 2.7, 4.0, 2.2,
    /// 1.9, 3.0, 3.4, ... and still bouncing around 1.5 at step 300. It fires.
    ///
    /// ## Options
    /// - `sign_flips` (default 0.5): fraction of sign changes in a window.
    /// - `amplitude` (default 0.03): median absolute step-to-step change, as a
    ///   fraction of the initial loss.
    /// - `level_amplitude` (default 0.08): the same swing as a fraction of the
    ///   window's median loss; a loss stuck high with plain minibatch noise
    ///   (a learning rate far too low) swings by a few percent only.
    /// - `min_level` (default 0.2): the window's median loss, as a fraction of
    ///   the initial loss, below which the run counts as settled.
    /// - `max_progress` (default 0.15): relative drop of the loss within a
    ///   window above which it is learning, not oscillating.
    /// - `window_fraction` (default 0.5): fraction of windows that must
    ///   oscillate.
    ///
    /// ## Known problems
    /// Needs at least 30 loss values. A model that cannot learn (saturated
    /// units) also leaves a bouncing loss behind and can fire; the other
    /// findings tell the two apart. Very noisy losses (reinforcement learning,
    /// tiny batches) can fire; raise `amplitude` for them.
    pub struct LossOscillating {
        id: "loss-oscillating",
        checklist: "Learning rate",
        section: Loss,
        needs: [Metrics],
        options: [
            sign_flips: 0.5 => "fraction of sign changes in a window",
            amplitude: 0.03 => "median swing as a fraction of the initial loss",
            level_amplitude: 0.08 => "median swing as a fraction of the window's own loss level",
            min_level: 0.2 => "window loss level, as a fraction of the initial loss, that counts as unsettled",
            max_progress: 0.15 => "relative drop within a window that counts as learning",
            window_fraction: 0.5 => "fraction of windows that must oscillate",
        ],
    }
}

impl Rule for LossOscillating {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let points = ctx.finite_metric("loss");
        if points.len() < 30 {
            return Outcome::Skipped("needs at least 30 finite loss values in metrics.jsonl".into());
        }
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        let initial = median(values[..3].iter().copied());
        let (flip_limit, amp_limit) = (options.get("sign_flips"), options.get("amplitude"));
        let mut oscillating = Vec::new();
        let chunks = windows(&values, 10);
        let mut offset = 0;
        for chunk in &chunks {
            let deltas: Vec<f64> = chunk.windows(2).map(|w| w[1] - w[0]).collect();
            let flips = deltas.windows(2).filter(|d| d[0] * d[1] < 0.0).count() as f64 / (deltas.len().max(2) - 1) as f64;
            let scale = initial.abs().max(f64::MIN_POSITIVE);
            let swing = median(deltas.iter().map(|d| d.abs())) / scale;
            let level = median(chunk.iter().copied()) / scale;
            let third = (chunk.len() / 3).max(1);
            let head = median(chunk[..third].iter().copied());
            let progress = (head - median(chunk[chunk.len() - third..].iter().copied())) / head.abs().max(f64::MIN_POSITIVE);
            let relative_swing = swing / level.max(f64::MIN_POSITIVE);
            if flips > flip_limit
                && swing >= amp_limit
                && relative_swing >= options.get("level_amplitude")
                && level >= options.get("min_level")
                && progress < options.get("max_progress")
            {
                oscillating.push((points[offset].0, flips, swing));
            }
            offset += chunk.len();
        }
        let share = oscillating.len() as f64 / chunks.len() as f64;
        let limit = options.get("window_fraction");
        if share < limit {
            return Outcome::Passed(format!("{} of the windows oscillate", percent(share)));
        }
        let (step, flips, swing) = oscillating[0];
        let typical = median(oscillating.iter().map(|o| o.2));
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "the loss oscillates in {} of the run: it swings by {} of the initial loss from step to step",
                percent(share),
                percent(typical)
            ),
        )
        .evidence(Evidence::new("windows that oscillate", share).threshold(format!("< {}", format_number(limit))))
        .evidence(Evidence::new("sign changes in the first such window", flips).threshold(format!("<= {}", format_number(flip_limit))).at(step))
        .evidence(Evidence::new("median swing / initial loss", swing).threshold(format!("< {}", format_number(amp_limit))).at(step))
        .recommend(format!(
            "{}; or add momentum, or decay the learning rate; the initial loss was {}",
            next_learning_rates(ctx, true),
            format_number(initial)
        ))])
    }
}
