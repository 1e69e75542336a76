use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::series::{self, median};
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Finds isolated loss spikes that recover: a value at least `factor`
    /// times the median of the preceding points, high against the initial
    /// loss, after which the loss returns to its level within `recover_within`
    /// points. The warm-up (first 5% of the run) is left out. Spikes that
    /// recur at a fixed step distance are reported as a note: the same batch
    /// at the same place of every epoch makes them, not instability. The
    /// validation loss, evaluated rarely, is checked point by point: a value
    /// `factor` times both its neighbours is a validation spike.
    ///
    /// ## Why it matters
    /// Spikes are the typical failure of large-model training: a rare batch,
    /// a too-high learning rate for some parameters, or Adam's second moment
    /// estimate lagging a sudden gradient. One spike is harmless; repeated
    /// spikes waste steps and can end in divergence.
    ///
    /// ## Example
    /// A loss near 0.4 that jumps to 2.9 for one step and is back at 0.4 the
    /// next fires.
    ///
    /// ## Options
    /// - `factor` (default 5): spike height over the median of the preceding
    ///   10 points.
    /// - `min_height` (default 0.2): the spike must rise this fraction of the
    ///   initial loss above that median.
    /// - `recover_within` (default 10): points within which the loss must come
    ///   back below twice the median.
    ///
    /// ## Known problems
    /// A spike that never recovers is divergence (loss-diverging). Epoch-level
    /// logs with few points rarely show spikes. A validation spike at the
    /// last evaluation has one neighbour and is not judged.
    pub struct LossSpikes {
        id: "loss-spikes",
        checklist: "Learning rate",
        section: Loss,
        needs: [Metrics],
        options: [
            factor: 5.0 => "spike height over the preceding median",
            min_height: 0.2 => "spike rise as a fraction of the initial loss",
            recover_within: 10.0 => "points within which the loss must recover",
        ],
    }
}

/// Spikes as `(step, value, median before)`.
pub fn find_spikes(points: &[(u64, f64)], factor: f64, min_height: f64, recover_within: usize) -> Vec<(u64, f64, f64)> {
    let n = points.len();
    if n < 20 {
        return Vec::new();
    }
    // The first value counts: a fast start (MNIST) has its median of three
    // far below where the loss began.
    let initial = median(points[..3].iter().map(|p| p.1)).max(points[0].1);
    let start = (n / 20).max(10);
    // trailing[i - 1] is the median of the 10 values before i.
    let trailing = series::rolling_median(&points.iter().map(|p| p.1).collect::<Vec<_>>(), 10);
    let mut spikes = Vec::new();
    let mut i = start;
    while i < n {
        let before = trailing[i - 1];
        let v = points[i].1;
        if v > factor * before && v - before > min_height * initial {
            let recovered = points[i + 1..(i + 1).saturating_add(recover_within).min(n)].iter().any(|p| p.1 < 2.0 * before);
            if recovered {
                spikes.push((points[i].0, v, before));
                i = i.saturating_add(recover_within);
                continue;
            }
        }
        i += 1;
    }
    spikes
}

/// The step distance between spikes when it is always the same (three
/// spikes or more): spikes on a schedule come from the data order.
fn fixed_period(spikes: &[(u64, f64, f64)]) -> Option<u64> {
    if spikes.len() < 3 {
        return None;
    }
    let gaps: Vec<u64> = spikes.windows(2).map(|w| w[1].0.saturating_sub(w[0].0)).collect();
    let first = gaps[0];
    (first > 0 && gaps.iter().all(|&g| g.abs_diff(first) <= first / 100)).then_some(first)
}

/// Validation points far above both neighbours: `(step, value, higher neighbour)`.
/// Validation is evaluated rarely (often once per epoch), so a spike is
/// judged against the points on either side rather than a window before.
pub fn isolated_peaks(points: &[(u64, f64)], factor: f64, min_height: f64) -> Vec<(u64, f64, f64)> {
    if points.len() < 3 {
        return Vec::new();
    }
    let initial = points[0].1;
    points
        .windows(3)
        .filter_map(|w| {
            let neighbour = w[0].1.max(w[2].1);
            (w[1].1 > factor * neighbour && w[1].1 - neighbour > min_height * initial).then_some((w[1].0, w[1].1, neighbour))
        })
        .collect()
}

impl Rule for LossSpikes {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let points = ctx.finite_metric("loss");
        let val = ctx.finite_metric("val_loss");
        if points.len() < 20 && val.len() < 3 {
            return Outcome::Skipped("needs at least 20 finite loss values, or 3 `val_loss` values, in metrics.jsonl".into());
        }
        let factor = options.get("factor");
        let spikes = find_spikes(&points, factor, options.get("min_height"), options.get("recover_within").max(1.0) as usize);
        let val_peaks = isolated_peaks(&val, factor, options.get("min_height"));
        let mut findings = Vec::new();
        if let Some(&(step, value, neighbour)) = val_peaks.iter().max_by(|a, b| (a.1 / a.2).total_cmp(&(b.1 / b.2))) {
            findings.push(
                Finding::new(
                    Self::META.id,
                    if val_peaks.len() >= 3 { Severity::Warning } else { Severity::Info },
                    format!(
                        "{} validation loss spike(s); the largest at step {step}: {} against {} on either side",
                        val_peaks.len(),
                        format_number(value),
                        format_number(neighbour)
                    ),
                )
                .evidence(Evidence::new("validation loss / higher neighbour", value / neighbour).threshold(format!("< {}", format_number(factor))).at(step))
                .recommend(
                    "check the validation pass at that step: batch-norm statistics after a large update, a learning \
                     rate too high early on, or a validation batch that differs from the rest",
                ),
            );
        }
        if spikes.is_empty() {
            return if findings.is_empty() { Outcome::Passed("no isolated spike".into()) } else { Outcome::Fired(findings) };
        }
        let (step, value, before) = spikes.iter().copied().max_by(|a, b| (a.1 / a.2).total_cmp(&(b.1 / b.2))).unwrap_or(spikes[0]);
        let period = fixed_period(&spikes);
        let mut message = format!(
            "{} loss spike(s) that recovered; the largest at step {step}: {} against {} just before",
            spikes.len(),
            format_number(value),
            format_number(before)
        );
        if let Some(period) = period {
            message.push_str(&format!(
                "; they recur every {period} steps, as the same batch at the same place of every epoch would (a short last batch, unshuffled data), not instability"
            ));
        }
        let severity = if spikes.len() >= 3 && period.is_none() { Severity::Warning } else { Severity::Info };
        let mut finding = Finding::new(Self::META.id, severity, message);
        for (s, v, b) in spikes.iter().take(10) {
            finding = finding.evidence(Evidence::new("loss / median of the 10 points before", v / b).threshold(format!("< {}", format_number(factor))).at(*s));
        }
        findings.insert(
            0,
            finding.recommend(
                "look at the batches at those steps for bad examples; lower the learning rate or add warm-up; clip \
                 gradients; with Adam, a larger epsilon or a lower beta2 damps spikes",
            ),
        );
        Outcome::Fired(findings)
    }
}
