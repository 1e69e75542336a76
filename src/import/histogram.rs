//! Histograms of weights and gradients, as TensorBoard and W&B log them,
//! turned into the tensor statistics the rules read. Which tensor a histogram
//! is, and whether it holds weights or gradients, comes from its tag
//! (docs/IMPORT.md lists the conventions).

use crate::error::Warning;
use postmortem_recorder::{TensorKind, TensorRecord, TensorStats};
use std::path::Path;

/// A histogram's moments, exact where the writer kept them.
pub(crate) struct Histogram {
    pub min: f64,
    pub max: f64,
    pub num: f64,
    pub sum: f64,
    pub sum_squares: f64,
    /// `(left, right, count)` buckets.
    pub buckets: Vec<(f64, f64, f64)>,
}

/// The most buckets a histogram keeps; writers use 30 (TensorBoard) to 64
/// (W&B) and at most a few thousand.
const MAX_BUCKETS: usize = 1 << 16;

impl Histogram {
    /// A histogram that kept only its buckets: the moments are estimated from
    /// the bucket centres.
    pub fn from_buckets(buckets: Vec<(f64, f64, f64)>) -> Self {
        let filled = || buckets.iter().filter(|b| b.2 > 0.0);
        let num = filled().map(|b| b.2).sum();
        let sum = filled().map(|b| b.2 * (b.0 + b.1) / 2.0).sum();
        let sum_squares = filled().map(|b| b.2 * ((b.0 + b.1) / 2.0).powi(2)).sum();
        let min = filled().map(|b| b.0).fold(f64::INFINITY, f64::min);
        let max = filled().map(|b| b.1).fold(f64::NEG_INFINITY, f64::max);
        Histogram { min, max, num, sum, sum_squares, buckets }
    }

    /// Buckets given as their `n + 1` edges and `n` counts (W&B's `bins` and
    /// `values`); `None` when the lengths do not fit or a count is negative.
    pub fn from_edges(edges: &[f64], counts: &[f64]) -> Option<Self> {
        if counts.is_empty() || counts.len() > MAX_BUCKETS || edges.len() != counts.len() + 1 || counts.iter().any(|c| !(*c >= 0.0)) {
            return None;
        }
        Some(Self::from_buckets(edges.windows(2).zip(counts).map(|(edge, &count)| (edge[0], edge[1], count)).collect()))
    }

    pub fn stats(&self) -> TensorStats {
        let n = self.num.max(0.0);
        let mean = if n > 0.0 { self.sum / n } else { f64::NAN };
        let variance = if n > 0.0 { (self.sum_squares / n - mean * mean).max(0.0) } else { f64::NAN };
        let filled = || self.buckets.iter().filter(|b| b.2 > 0.0);
        // Estimates from the buckets: |x| at each bucket's centre, and the
        // buckets that hold nothing but values within 1e-12 of zero (below
        // what a float32 update can move; tiny but real gradients of 1e-11
        // are not called zeros).
        let abs_mean = if n > 0.0 { filled().map(|b| b.2 * ((b.0 + b.1) / 2.0).abs()).sum::<f64>() / n } else { f64::NAN };
        let zeros: f64 = filled().filter(|b| b.0 >= -1e-12 && b.1 <= 1e-12).map(|b| b.2).sum();
        let finite = self.min.is_finite() && self.max.is_finite() && self.sum.is_finite();
        TensorStats {
            count: n as u64,
            mean,
            std: variance.sqrt(),
            min: self.min,
            max: self.max,
            abs_mean,
            l2: self.sum_squares.max(0.0).sqrt(),
            zero_frac: if n > 0.0 { zeros / n } else { 0.0 },
            nonfinite: u64::from(!finite),
            dead_frac: None,
            saturated_frac: None,
            batch_std: None,
        }
    }
}

/// Tag prefixes of histograms that no convention names, from the
/// `[histograms]` table of `postmortem.toml`: checked before the conventions.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramTags {
    /// Prefixes of gradient histograms (`"g/"` for `g/fc1.weight`).
    #[serde(default)]
    pub gradients: Vec<String>,
    /// Prefixes of weight histograms.
    #[serde(default)]
    pub weights: Vec<String>,
}

/// Weight or gradient, and the parameter's name, by the prefixes configured
/// and the tag conventions of docs/IMPORT.md; `None` for other histograms.
pub(crate) fn histogram_kind(tag: &str, configured: &HistogramTags) -> Option<(TensorKind, String)> {
    let own = |prefixes: &[String], kind| prefixes.iter().find_map(|p| tag.strip_prefix(p.as_str()).filter(|rest| !rest.is_empty()).map(|rest| (kind, rest.replace('/', "."))));
    if let Some(found) = own(&configured.gradients, TensorKind::Grad).or_else(|| own(&configured.weights, TensorKind::Weight)) {
        return Some(found);
    }
    let lower = tag.to_ascii_lowercase();
    for prefix in ["gradients/", "gradient/", "grads/", "grad/"] {
        if lower.starts_with(prefix) {
            return Some((TensorKind::Grad, tag[prefix.len()..].replace('/', ".")));
        }
    }
    for suffix in [".grad", "/grad", "_grad", "/gradient"] {
        if lower.ends_with(suffix) {
            return Some((TensorKind::Grad, tag[..tag.len() - suffix.len()].replace('/', ".")));
        }
    }
    for prefix in ["parameters/", "params/", "weights/", "weight/"] {
        if lower.starts_with(prefix) {
            return Some((TensorKind::Weight, tag[prefix.len()..].replace('/', ".")));
        }
    }
    let last = lower.rsplit(['/', '.']).next().unwrap_or("");
    ["weight", "bias", "kernel", "kernel_0", "bias_0"].contains(&last).then(|| (TensorKind::Weight, tag.replace('/', ".")))
}

/// One warning for the histograms whose tags no convention or configured
/// prefix names.
pub(crate) fn warn_unnamed(path: &Path, count: usize, warnings: &mut Vec<Warning>) {
    if count > 0 {
        warnings.push(Warning::new(
            path,
            None,
            format!(
                "{count} histogram value(s) with tags that name neither weights nor gradients were left out (docs/IMPORT.md lists the conventions; a [histograms] table in postmortem.toml adds prefixes)"
            ),
        ));
    }
}

/// The tensor statistics a histogram logged under `tag` stands for; `None`
/// when the tag names neither weights nor gradients.
pub(crate) fn tensor_record(tag: &str, step: u64, histogram: &Histogram, configured: &HistogramTags) -> Option<TensorRecord> {
    let (kind, name) = histogram_kind(tag, configured)?;
    Some(TensorRecord { step, name, kind, shape: None, span: None, stats: histogram.stats() })
}

/// The histograms of each tensor with the resume rule applied, in file
/// order: a record at a step before the tensor's previous one (a restarted
/// writer) supersedes that tensor's records from its step on. Sorted by step
/// and name.
pub(crate) fn resumed(records: Vec<TensorRecord>) -> Vec<TensorRecord> {
    let mut by_tensor: std::collections::HashMap<(String, TensorKind), Vec<TensorRecord>> = std::collections::HashMap::new();
    for record in records {
        let series = by_tensor.entry((record.name.clone(), record.kind)).or_default();
        if series.last().is_some_and(|last| record.step <= last.step) {
            series.retain(|r| r.step < record.step);
        }
        series.push(record);
    }
    let mut tensors: Vec<TensorRecord> = by_tensor.into_values().flatten().collect();
    tensors.sort_by(|a, b| a.step.cmp(&b.step).then_with(|| a.name.cmp(&b.name)));
    tensors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_and_counts_must_fit() {
        assert!(Histogram::from_edges(&[0.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(Histogram::from_edges(&[0.0, 1.0, 2.0], &[1.0, -2.0]).is_none());
        assert!(Histogram::from_edges(&[0.0, 1.0, 2.0], &[1.0, f64::NAN]).is_none());
        // W&B's single bucket for a tensor whose values are all equal.
        let zeros = Histogram::from_edges(&[0.0, 0.0], &[12.0]).unwrap().stats();
        assert_eq!((zeros.count, zeros.zero_frac, zeros.min, zeros.max), (12, 1.0, 0.0, 0.0));
        let spread = Histogram::from_edges(&[-1.0, 0.0, 1.0], &[1.0, 3.0]).unwrap().stats();
        assert!((spread.mean - 0.25).abs() < 1e-12 && spread.zero_frac == 0.0, "{spread:?}");
    }

    #[test]
    fn configured_prefixes_come_before_the_conventions() {
        let none = HistogramTags::default();
        assert_eq!(histogram_kind("gradients/fc1/weight", &none), Some((TensorKind::Grad, "fc1.weight".into())));
        assert_eq!(histogram_kind("fc1.weight.grad", &none), Some((TensorKind::Grad, "fc1.weight".into())));
        assert_eq!(histogram_kind("model/fc1.weight", &none), Some((TensorKind::Weight, "model.fc1.weight".into())));
        assert_eq!(histogram_kind("dw/fc1", &none), None);
        let configured = HistogramTags { gradients: vec!["dw/".into()], weights: vec!["w_".into()] };
        assert_eq!(histogram_kind("dw/fc1", &configured), Some((TensorKind::Grad, "fc1".into())));
        assert_eq!(histogram_kind("w_fc1", &configured), Some((TensorKind::Weight, "fc1".into())));
        assert_eq!(histogram_kind("dw/", &configured), None);
    }
}
