//! Pieces of advice that several rules give, written once.

use crate::context::Context;
use crate::summary::format_number;
use postmortem_recorder::{TensorKind, TensorStats};

/// "the next learning rates to try, in logarithmic steps", from the run's own.
pub fn next_learning_rates(ctx: &Context, lower: bool) -> String {
    let lr = ctx.run.meta.hyperparameters.as_ref().and_then(|h| h.learning_rate);
    let (factors, words) = if lower { ([0.3, 0.1], "x0.3 and x0.1") } else { ([3.0, 10.0], "x3 and x10") };
    match lr {
        Some(lr) if lr > 0.0 => format!(
            "try learning rates {} and {} ({words} the current {}), in logarithmic steps",
            format_number(lr * factors[0]),
            format_number(lr * factors[1]),
            format_number(lr)
        ),
        _ => format!("try the learning rate {words}, in logarithmic steps (run.json does not say the current one)"),
    }
}

/// Percent with one decimal.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// For each layer output that `applies`, the last recorded value of a
/// per-unit fraction (`dead_frac`, `saturated_frac`): `(layer, step, value)`.
pub fn last_unit_fractions(
    ctx: &Context,
    applies: impl Fn(&str, &[(u64, TensorStats)]) -> bool,
    pick: fn(&TensorStats) -> Option<f64>,
) -> Vec<(String, u64, f64)> {
    ctx.stats(TensorKind::Activation)
        .iter()
        .filter(|(layer, series)| applies(layer, series))
        .filter_map(|(layer, series)| {
            let (step, value) = series.iter().rev().find_map(|(step, s)| Some((*step, pick(s)?)))?;
            Some((layer.clone(), step, value))
        })
        .collect()
}
