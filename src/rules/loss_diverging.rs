use super::common::next_learning_rates;
use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::{rolling_median, smoothing_window};
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Detects a loss that blows up: it becomes NaN or infinite, or its
    /// smoothed value rises to `factor` times its lowest point so far and
    /// never comes back.
    ///
    /// ## Why it matters
    /// Divergence almost always means the learning rate is too high for the
    /// loss surface (each step overshoots further), sometimes a bad batch, a
    /// division by zero, or a log of zero. Once the loss is NaN, every weight
    /// it touches is NaN and the run is lost.
    ///
    /// ## Example
    /// SGD at learning rate 5 taking the loss from 3.0 to 17, 656, 2e4, then
    /// NaN at step 7 fires at step 1.
    ///
    /// ## Options
    /// - `factor` (default 2): the rise over the lowest smoothed loss so far.
    /// - `min_rise` (default 0.1): the rise must also be this fraction of the
    ///   initial loss, so that noise near a loss of zero is not divergence.
    ///
    /// ## Known problems
    /// A rise that recovers is reported by loss-spikes instead. Smoothing is a
    /// rolling median over 2% of the points (at least 3), so a divergence in
    /// the last two points of a run is seen only through NaN.
    pub struct LossDiverging {
        id: "loss-diverging",
        checklist: "Learning rate",
        section: Loss,
        needs: [Metrics],
        options: [
            factor: 2.0 => "rise over the lowest smoothed loss so far",
            min_rise: 0.1 => "the rise as a fraction of the initial loss",
        ],
    }
}

/// The first step where the smoothed loss rises `factor` over its running
/// minimum (and by `min_rise` of the initial loss) and never recovers.
pub fn divergence_point(points: &[(u64, f64)], factor: f64, min_rise: f64) -> Option<(u64, f64, f64)> {
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let smooth = rolling_median(&values, smoothing_window(values.len()));
    let initial = *smooth.first()?;
    let mut low = f64::INFINITY;
    let mut candidate: Option<(usize, f64)> = None;
    for (i, &v) in smooth.iter().enumerate() {
        match candidate {
            Some((_, m)) if v < 1.5 * m => candidate = None,
            None if v > factor * low && v - low > min_rise * initial.abs() => candidate = Some((i, low)),
            _ => {}
        }
        if candidate.is_none() {
            low = low.min(v);
        }
    }
    candidate.map(|(i, m)| (points[i].0, values[i], m))
}

impl Rule for LossDiverging {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let loss = ctx.metric("loss");
        if loss.len() < 3 {
            return Outcome::Skipped("needs at least 3 loss values in metrics.jsonl".into());
        }
        let mut findings = Vec::new();
        let finite = ctx.finite_metric("loss");
        let first_bad = loss.iter().find(|(_, v)| !v.is_finite()).copied();
        let diverged = divergence_point(&finite, options.get("factor"), options.get("min_rise"));
        let advice = format!(
            "{}; add gradient clipping; if it starts at one step, look at that step's batch for bad values",
            next_learning_rates(ctx, true)
        );
        if let Some((step, value, low)) = diverged {
            findings.push(
                Finding::new(
                    Self::META.id,
                    Severity::Error,
                    format!("the loss diverges from step {step}: {} against a low of {} before", format_number(value), format_number(low)),
                )
                .evidence(Evidence::new("loss / lowest smoothed loss before", value / low).threshold(format!("< {}", options.get("factor"))).at(step))
                .recommend(advice.clone()),
            );
        }
        if let Some((step, value)) = first_bad {
            let last_good = finite.iter().rev().find(|(s, _)| *s < step);
            let mut f = Finding::new(Self::META.id, Severity::Error, format!("the loss becomes {} at step {step}", format_number(value)))
                .evidence(Evidence::new("loss", value).threshold("finite").at(step));
            if let Some((s, v)) = last_good {
                f = f.evidence(Evidence::new("last finite loss", *v).at(*s));
            }
            findings.push(f.recommend(advice));
        }
        if findings.is_empty() {
            Outcome::Passed("the loss stays finite and does not run away".into())
        } else {
            Outcome::Fired(findings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[f64]) -> Vec<(u64, f64)> {
        values.iter().enumerate().map(|(i, v)| (i as u64, *v)).collect()
    }

    #[test]
    fn runaway_fires_and_a_recovered_bump_does_not() {
        let runaway = points(&[3.0, 2.0, 1.5, 1.4, 1.6, 3.5, 5.0, 9.0, 20.0, 50.0]);
        let (step, _, low) = divergence_point(&runaway, 2.0, 0.1).unwrap();
        assert_eq!((step, low), (6, 1.5));
        let bump = points(&[3.0, 2.0, 1.5, 1.4, 4.0, 4.0, 4.0, 1.3, 1.2, 1.1, 1.0]);
        assert_eq!(divergence_point(&bump, 2.0, 0.1), None);
        // Noise near zero is not divergence.
        let converged = points(&[3.0, 1.0, 0.1, 0.01, 0.003, 0.009, 0.02, 0.02, 0.02]);
        assert_eq!(divergence_point(&converged, 2.0, 0.1), None);
    }
}
