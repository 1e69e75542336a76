use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::{Context, WeightLayer};
use crate::summary::format_number;
use postmortem_recorder::{Activation, TensorKind};

declare_rule! {
    /// ## What it does
    /// Compares each weight matrix's standard deviation at step 0 with the
    /// fan-in rule for the nonlinearity that follows it: He,
    /// sqrt(2 / fan_in), before ReLU; Glorot, sqrt(2 / (fan_in + fan_out)),
    /// before tanh and sigmoid; LeCun, sqrt(1 / fan_in), before none (the
    /// output layer). It fires when one layer is off by `factor` or more, or
    /// when the layers' ratios multiply to `factor` or more through the
    /// depth of the net (an output layer smaller than its rule is left out
    /// of the product: it only makes the initial logits small).
    ///
    /// ## Why it matters
    /// Each layer multiplies the scale of the signal by roughly its weight
    /// std over the rule's. Off by 1.6x in an 11-layer net, the output is 170x
    /// too large; the loss starts huge, gradients explode or vanish, and the
    /// first hundreds of steps are spent undoing the initialization.
    ///
    /// ## Example
    /// A 6-layer ReLU net initialized with std 1.0 (He gives 0.18 for 64
    /// inputs) fires: 5.7x per layer, 10^5 through the net.
    ///
    /// ## Options
    /// - `factor` (default 10): how far off (either way) one layer, or the
    ///   product over layers, may be.
    ///
    /// Layers directly followed by batch or layer normalization are not
    /// counted: normalization removes their scale. Nets of one or two weight
    /// layers may also use a plain small std between 1e-3 and 0.1 (the
    /// classic 0.01 for shallow nets).
    ///
    /// ## Known problems
    /// Fan-in needs the weight shapes (a checkpoint) or the weight and bias
    /// counts from `tensors.jsonl`. Without `model.layers` the nonlinearity is
    /// unknown and the nearer of He and LeCun is used. Convolutions are taken
    /// as `[out, in, kh, kw]` (PyTorch and candle order).
    pub struct InitScaleOff {
        id: "init-scale-off",
        checklist: "Weight init, shallow models",
        section: Model,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [factor: 10.0 => "largest per-layer or compounded ratio to the fan-in rule"],
    }
}

/// The std the fan-in rule gives a layer, and the rule's name.
pub fn expected_std(layer: &WeightLayer, is_last: bool, actual: f64) -> Option<(f64, &'static str)> {
    let fan_in = layer.fan_in? as f64;
    let fan_out = layer.fan_out.unwrap_or(layer.fan_in?) as f64;
    let he = ((2.0 / fan_in).sqrt(), "He sqrt(2/fan_in)");
    let lecun = ((1.0 / fan_in).sqrt(), "LeCun sqrt(1/fan_in)");
    let glorot = ((2.0 / (fan_in + fan_out)).sqrt(), "Glorot sqrt(2/(fan_in+fan_out))");
    Some(match &layer.activation {
        Some(Activation::Relu | Activation::LeakyRelu | Activation::Gelu) => he,
        Some(Activation::Tanh | Activation::Sigmoid) => glorot,
        Some(Activation::None) => lecun,
        _ if is_last => lecun,
        _ => {
            if (actual.ln() - he.0.ln()).abs() < (actual.ln() - lecun.0.ln()).abs() {
                he
            } else {
                lecun
            }
        }
    })
}

impl Rule for InitScaleOff {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        if ctx.is_bare() {
            return Outcome::Skipped(
                "a bare checkpoint with no step: its weights may be trained, not initial; record a checkpoint at step 0".into(),
            );
        }
        let layers = ctx.weight_layers();
        let weights = ctx.stats(TensorKind::Weight);
        let normalized = normalized_layers(ctx);
        let shallow = layers.len() <= 2;
        let mut rows = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let Some((0, stats)) = weights.get(&layer.weight).and_then(|s| s.first()).copied() else { continue };
            if !(stats.std > 0.0) || normalized.contains(&layer.name) {
                continue;
            }
            let Some((expected, rule)) = expected_std(layer, i + 1 == layers.len(), stats.std) else { continue };
            let ratio = stats.std / expected;
            if shallow && (1e-3..=0.1).contains(&stats.std) {
                continue;
            }
            rows.push((layer, stats.std, expected, rule, ratio));
        }
        if rows.is_empty() {
            return Outcome::Skipped(
                "needs weights at step 0 with their fan-in: a checkpoint at step 0, or weight lines at step 0 in tensors.jsonl with their `shape` (or with bias lines)".into(),
            );
        }
        let factor = options.get("factor");
        // A small output layer only makes the initial logits small, which is
        // harmless (some recipes zero it): it does not shrink the signal
        // through the net, so it is not compounded. A large one is.
        let last = layers.last().map(|l| l.weight.as_str());
        let compounded: f64 = rows.iter().filter(|r| !(Some(r.0.weight.as_str()) == last && r.4 < 1.0)).map(|r| r.4).product();
        let worst = rows.iter().max_by(|a, b| a.4.ln().abs().total_cmp(&b.4.ln().abs())).copied();
        let Some(worst) = worst else { return Outcome::Passed("no layer to compare".into()) };
        let off = |r: f64| r >= factor || r <= 1.0 / factor;
        if !off(worst.4) && !off(compounded) {
            return Outcome::Passed(format!(
                "every layer is within {factor}x of its fan-in rule (compounded {})",
                format_number(compounded)
            ));
        }
        let direction = if compounded >= 1.0 { "large" } else { "small" };
        let mut finding = Finding::new(
            Self::META.id,
            if off(compounded) && (compounded >= factor * factor || compounded <= 1.0 / (factor * factor)) { Severity::Error } else { Severity::Warning },
            format!(
                "the initial weights are too {direction}: {} starts with std {} where {} gives {} ({}x), {}x through the net",
                worst.0.weight,
                format_number(worst.1),
                worst.3,
                format_number(worst.2),
                format_number(worst.4),
                format_number(compounded)
            ),
        )
        .evidence(Evidence::new("product of std / rule over layers", compounded).threshold(format!("within {}x", format_number(factor))).at(0));
        for (layer, _, expected, _, ratio) in rows.iter().filter(|r| off(r.4) || off(compounded)).take(8) {
            let inferred = if layer.fans_inferred { " (fan-in inferred from the element counts of the layers)" } else { "" };
            finding = finding.evidence(
                Evidence::new(format!("{} std / {}{inferred}", layer.weight, format_number(*expected)), *ratio)
                    .threshold(format!("within {}x", format_number(factor)))
                    .at(0)
                    .tensor(&layer.weight),
            );
        }
        Outcome::Fired(vec![finding.recommend(
            "initialize each layer with the fan-in rule of its nonlinearity: He (std sqrt(2 / fan_in)) before ReLU, \
             Glorot before tanh or sigmoid, LeCun (sqrt(1 / fan_in)) for the output layer; or add batch normalization",
        )])
    }
}

/// Layers whose output goes straight into a normalization layer.
fn normalized_layers(ctx: &Context) -> Vec<String> {
    let layers = ctx.run.meta.model.as_ref().map(|m| m.layers.as_slice()).unwrap_or_default();
    layers
        .windows(2)
        .filter(|w| w[1].kind.as_deref().is_some_and(|k| k.to_ascii_lowercase().contains("norm")))
        .map(|w| w[0].name.clone())
        .collect()
}
