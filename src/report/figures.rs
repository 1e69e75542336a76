//! One function per figure of the report. Each reads the run through the
//! [`Context`] and returns a [`Figure`]: a chart, or, when the run did not
//! record what the figure needs, what to record.

use crate::analysis::Analysis;
use crate::context::Context;
use crate::export::chart::{decimate, Chart, Series, WIDTH};
use crate::rules::update_ratio::update_ratios;
use crate::rules::vanishing_activations::{layers_in_order, signal};
use crate::rules::Section;
use postmortem_recorder::TensorKind;

/// A figure of the report.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Stable id: file name of the plot and anchor in the HTML.
    pub id: &'static str,
    pub title: &'static str,
    pub section: Section,
    pub chart: Option<Chart>,
    /// When `chart` is `None`: why, and what to record so that it can be drawn.
    pub missing: String,
}

fn drawn(id: &'static str, title: &'static str, section: Section, chart: Chart) -> Figure {
    Figure { id, title, section, chart: Some(chart), missing: String::new() }
}

fn missing(id: &'static str, title: &'static str, section: Section, what: &str) -> Figure {
    Figure { id, title, section, chart: None, missing: format!("not recorded; {what}") }
}

/// Every figure, in report order, built in parallel: each reads its series
/// from the run on its own.
pub fn all(ctx: &Context, analysis: &Analysis) -> Vec<Figure> {
    use rayon::prelude::*;
    let builders: [&(dyn Fn() -> Figure + Sync); 9] = [
        &|| loss(ctx, analysis),
        &|| inputs(ctx),
        &|| class_counts(ctx),
        &|| lr_and_grad_norm(ctx),
        &|| layer_grad_norms(ctx),
        &|| update_ratio(ctx),
        &|| weight_std_by_depth(ctx),
        &|| activation_units(ctx),
        &|| activation_signal(ctx),
    ];
    builders.par_iter().map(|build| build()).collect()
}

/// The figure that shows a rule's evidence.
pub fn figure_for(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "class-imbalance" | "prediction-collapse" => "classes",
        "exploding-gradients" => "lr-grad-norm",
        "vanishing-gradients" => "layer-grads",
        "update-ratio" | "stalled-weights" => "update-ratio",
        "zero-or-symmetric-init" | "init-scale-off" | "weight-variance-skew" => "weights",
        "dead-relus" | "saturated-activations" => "activation-units",
        "vanishing-activations" => "activation-signal",
        "inputs-not-centered" => "inputs",
        "untapped-pretrained-weights" => return None,
        _ => "loss",
    })
}

fn points(series: &[(u64, f64)]) -> Vec<(f64, f64)> {
    let all: Vec<(f64, f64)> = series.iter().filter(|p| p.1.is_finite()).map(|&(s, v)| (s as f64, v)).collect();
    decimate(&all, WIDTH as usize)
}

/// Whether positive values span enough decades to need a log axis.
fn spans_decades(series: &[Series]) -> bool {
    let positive: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    lo.is_finite() && hi / lo > 100.0 && positive.len() == series.iter().map(|s| s.points.len()).sum::<usize>()
}

fn loss(ctx: &Context, analysis: &Analysis) -> Figure {
    let (id, title, section) = ("loss", "Loss", Section::Loss);
    let mut series = Vec::new();
    for (name, label) in [("loss", "training loss"), ("val_loss", "validation loss")] {
        let p = points(&ctx.metric(name));
        if !p.is_empty() {
            series.push(Series { name: label.into(), points: p });
        }
    }
    if series.is_empty() {
        return missing(id, title, section, "record `loss` (and `val_loss`) in metrics.jsonl");
    }
    let mut markers: Vec<(String, f64)> = Vec::new();
    for finding in analysis.findings.iter().filter(|f| figure_for(f.rule) == Some("loss")) {
        if let Some(step) = finding.steps.first() {
            if markers.len() < 6 && !markers.iter().any(|m| m.1 == *step as f64) {
                markers.push((finding.rule.to_string(), *step as f64));
            }
        }
    }
    let hlines = ctx.chance_loss().map(|c| vec![("ln C (guessing)".to_string(), c)]).unwrap_or_default();
    let log_y = spans_decades(&series);
    drawn(
        id,
        title,
        section,
        Chart { title: title.into(), x_label: "step".into(), y_label: "loss".into(), log_y, series, hlines, markers, ..Default::default() },
    )
}

fn lr_and_grad_norm(ctx: &Context) -> Figure {
    let (id, title, section) = ("lr-grad-norm", "Learning rate and gradient norm", Section::Gradients);
    let mut series = Vec::new();
    let grad = points(&crate::rules::exploding_gradients::global_grad_norm(ctx));
    if !grad.is_empty() {
        series.push(Series { name: "global gradient norm".into(), points: grad });
    }
    let lr = points(&ctx.metric("lr"));
    if !lr.is_empty() {
        series.push(Series { name: "learning rate".into(), points: lr });
    }
    if series.is_empty() {
        return missing(id, title, section, "record `lr` and `grad_norm` (before clipping) in metrics.jsonl");
    }
    drawn(id, title, section, Chart { title: title.into(), x_label: "step".into(), y_label: "value (log)".into(), log_y: true, series, ..Default::default() })
}

/// At most `limit` of the layers: the first, the last and evenly between.
fn spread<T: Clone>(items: &[T], limit: usize) -> Vec<T> {
    if items.len() <= limit {
        return items.to_vec();
    }
    (0..limit).map(|i| items[i * (items.len() - 1) / (limit - 1)].clone()).collect()
}

fn layer_grad_norms(ctx: &Context) -> Figure {
    let (id, title, section) = ("layer-grads", "Gradient norm per layer", Section::Gradients);
    let layers = ctx.weight_series(TensorKind::Grad);
    if layers.is_empty() {
        return missing(id, title, section, "record gradient statistics per layer: kind \"grad\" in tensors.jsonl, or grad/ tensors in checkpoints");
    }
    let series = spread(&layers, 8)
        .into_iter()
        .map(|(layer, s)| Series {
            name: layer.weight.clone(),
            points: points(&s.iter().map(|(step, st)| (*step, st.l2)).collect::<Vec<_>>()),
        })
        .collect();
    drawn(id, title, section, Chart { title: title.into(), x_label: "step".into(), y_label: "||grad|| (log)".into(), log_y: true, series, ..Default::default() })
}

fn update_ratio(ctx: &Context) -> Figure {
    let (id, title, section) = ("update-ratio", "Update to weight ratio per layer", Section::Weights);
    let ratios = update_ratios(ctx);
    if ratios.is_empty() {
        return missing(id, title, section, "record update statistics with the weights: kind \"update\" and \"weight\" in tensors.jsonl");
    }
    let series = spread(&ratios, 8).into_iter().map(|(name, r)| Series { name, points: points(&r) }).collect();
    drawn(
        id,
        title,
        section,
        Chart {
            title: title.into(),
            x_label: "step".into(),
            y_label: "||dW|| / ||W|| per step (log)".into(),
            log_y: true,
            series,
            band: Some(("healthy 1e-4 to 1e-2".into(), 1e-4, 1e-2)),
            ..Default::default()
        },
    )
}

/// Layers drawn in a by-depth figure at most; deeper models show the first,
/// the last and layers evenly between, so that a figure's size is bounded
/// whatever the model.
const MAX_LAYERS_SHOWN: usize = 64;

/// Classes drawn at most: the largest by share of labels or predictions,
/// and one bar for the rest.
const MAX_CLASSES_SHOWN: usize = 30;

/// Up to five recorded steps: the first, the last, and evenly between.
fn some_steps(steps: &mut Vec<u64>) -> Vec<u64> {
    steps.sort_unstable();
    steps.dedup();
    spread(steps, 5)
}

fn weight_std_by_depth(ctx: &Context) -> Figure {
    let (id, title, section) = ("weights", "Weight standard deviation by depth", Section::Weights);
    let layers = ctx.weight_series(TensorKind::Weight);
    if layers.is_empty() {
        return missing(id, title, section, "record weights: kind \"weight\" in tensors.jsonl, or checkpoints (at least step 0 and the last step)");
    }
    let layers = spread(&layers, MAX_LAYERS_SHOWN);
    let mut steps: Vec<u64> = layers.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).collect();
    let series = some_steps(&mut steps)
        .into_iter()
        .map(|step| Series {
            name: format!("step {step}"),
            points: layers
                .iter()
                .enumerate()
                .filter_map(|(i, (_, s))| s.iter().find(|p| p.0 == step).map(|p| (i as f64, p.1.std)))
                .collect(),
        })
        .collect();
    let categories = Some(layers.iter().map(|(l, _)| l.name.clone()).collect());
    drawn(id, title, section, Chart { title: title.into(), x_label: "layer".into(), y_label: "std of weights (log)".into(), log_y: true, series, categories, ..Default::default() })
}

fn activation_units(ctx: &Context) -> Figure {
    let (id, title, section) = ("activation-units", "Dead and saturated units by depth", Section::Activations);
    let recorded = ctx.stats(TensorKind::Activation);
    let names = spread(&layers_in_order(ctx), MAX_LAYERS_SHOWN);
    let last_step = names.iter().filter_map(|n| recorded[n].last().map(|p| p.0)).max();
    let (Some(step), false) = (last_step, names.is_empty()) else {
        return missing(id, title, section, "record layer outputs: kind \"activation\" with dead_frac and saturated_frac in tensors.jsonl, or act/ tensors in checkpoints");
    };
    let at = |name: &String| recorded[name].iter().find(|p| p.0 == step).map(|p| p.1);
    let mut series = Vec::new();
    for (label, pick) in [("dead fraction", 0), ("saturated fraction", 1)] {
        let pts: Vec<(f64, f64)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let s = at(n)?;
                Some((i as f64, if pick == 0 { s.dead_frac? } else { s.saturated_frac? }))
            })
            .collect();
        if !pts.is_empty() {
            series.push(Series { name: format!("{label} at step {step}"), points: pts });
        }
    }
    if series.is_empty() {
        return missing(id, title, section, "record dead_frac and saturated_frac with the activation statistics");
    }
    drawn(
        id,
        title,
        section,
        Chart {
            title: title.into(),
            x_label: "layer".into(),
            y_label: "fraction of units".into(),
            series,
            hlines: vec![("rule threshold 0.5".into(), 0.5)],
            categories: Some(names),
            ..Default::default()
        },
    )
}

fn activation_signal(ctx: &Context) -> Figure {
    let (id, title, section) = ("activation-signal", "Activation signal by depth", Section::Activations);
    let recorded = ctx.stats(TensorKind::Activation);
    let names = spread(&layers_in_order(ctx), MAX_LAYERS_SHOWN);
    if names.is_empty() {
        return missing(id, title, section, "record layer outputs: kind \"activation\" in tensors.jsonl, or act/ tensors in checkpoints");
    }
    let mut steps: Vec<u64> = names.iter().flat_map(|n| recorded[n].iter().map(|p| p.0)).collect();
    let uses_batch_std = names.iter().any(|n| recorded[n].iter().any(|p| p.1.batch_std.is_some()));
    let series = spread(&some_steps(&mut steps), 3)
        .into_iter()
        .map(|step| Series {
            name: format!("step {step}"),
            points: names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| recorded[n].iter().find(|p| p.0 == step).map(|p| (i as f64, signal(&p.1))))
                .collect(),
        })
        .collect();
    let y_label = if uses_batch_std { "spread across the batch (log)" } else { "std of the output (log)" };
    drawn(id, title, section, Chart { title: title.into(), x_label: "layer".into(), y_label: y_label.into(), log_y: true, series, categories: Some(names), ..Default::default() })
}

/// Mean and std of each input channel (dimension 1) of a batch, for at most
/// 64 channels.
fn channel_moments(values: &[f64], shape: &[usize]) -> Option<Vec<(f64, f64)>> {
    let (&batch, rest) = shape.split_first()?;
    let channels = *rest.first()?;
    let inner: usize = rest[1..].iter().product();
    if batch == 0 || channels == 0 || batch * channels * inner != values.len() {
        return None;
    }
    let moments = (0..channels.min(64))
        .map(|c| {
            let cell = (0..batch).flat_map(|b| {
                let start = (b * channels + c) * inner;
                values[start..start + inner].iter().copied()
            });
            let n = (batch * inner) as f64;
            let mean = cell.clone().sum::<f64>() / n;
            let var = cell.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            (mean, var.sqrt())
        })
        .collect();
    Some(moments)
}

fn inputs(ctx: &Context) -> Figure {
    let (id, title, section) = ("inputs", "Inputs: mean and standard deviation", Section::Data);
    let batch = ctx.run.checkpoints.iter().find_map(|c| {
        let entry = c.tensor(postmortem_recorder::format::INPUT_TENSOR)?;
        channel_moments(&c.values(entry).ok()?, &entry.shape).map(|m| (c.step.unwrap_or(0), m))
    });
    if let Some((step, moments)) = batch {
        let series = vec![
            Series { name: format!("mean at step {step}"), points: moments.iter().enumerate().map(|(i, m)| (i as f64, m.0)).collect() },
            Series { name: format!("std at step {step}"), points: moments.iter().enumerate().map(|(i, m)| (i as f64, m.1)).collect() },
        ];
        let categories = Some((0..moments.len()).map(|i| i.to_string()).collect());
        return drawn(
            id,
            title,
            section,
            Chart { title: title.into(), x_label: "input channel (or feature)".into(), y_label: "value".into(), series, categories, bars: true, ..Default::default() },
        );
    }
    let recorded = ctx.stats(TensorKind::Input);
    let Some((name, stats)) = recorded.iter().next() else {
        return missing(id, title, section, "record the input batch: an `input` tensor in a checkpoint, or kind \"input\" statistics in tensors.jsonl");
    };
    let over = |pick: fn(&postmortem_recorder::TensorStats) -> f64| points(&stats.iter().map(|(s, st)| (*s, pick(st))).collect::<Vec<_>>());
    let series = vec![
        Series { name: format!("mean of {name}"), points: over(|s| s.mean) },
        Series { name: format!("std of {name}"), points: over(|s| s.std) },
    ];
    drawn(id, title, section, Chart { title: title.into(), x_label: "step".into(), y_label: "value".into(), series, ..Default::default() })
}

fn class_counts(ctx: &Context) -> Figure {
    let (id, title, section) = ("classes", "Labels and predictions per class", Section::Data);
    use crate::rules::class_imbalance::{add_counts, count_total, label_counts};
    let Some(labels) = label_counts(ctx) else {
        return missing(id, title, section, "record `label_counts` and `pred_counts` in metrics.jsonl");
    };
    let mut preds = vec![0u64; labels.len()];
    if let Some(series) = ctx.run.metrics.counts.get("pred_counts") {
        for (_, counts) in series {
            add_counts(&mut preds, counts);
        }
    }
    let (label_total, pred_total) = (count_total(&labels).max(1) as f64, count_total(&preds).max(1) as f64);
    let label_share = |c: usize| labels[c] as f64 / label_total;
    let pred_share = |c: usize| preds[c] as f64 / pred_total;
    let shown = largest_classes(labels.len(), |c| label_share(c).max(pred_share(c)), MAX_CLASSES_SHOWN);
    let rest = labels.len() - shown.len();
    // The rest as the mean share of a class among them, on the scale of the
    // others: their sum would dwarf every class shown.
    let bars = |share: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        let mut bars: Vec<(f64, f64)> = shown.iter().enumerate().map(|(i, &c)| (i as f64, share(c))).collect();
        if rest > 0 {
            let kept: f64 = shown.iter().map(|&c| share(c)).sum();
            bars.push((shown.len() as f64, (1.0 - kept).max(0.0) / rest as f64));
        }
        bars
    };
    let mut series = vec![Series { name: "labels".into(), points: bars(&label_share) }];
    if preds.iter().any(|c| *c > 0) {
        series.push(Series { name: "predictions".into(), points: bars(&pred_share) });
    }
    let mut names: Vec<String> = shown.iter().map(|c| c.to_string()).collect();
    let mut chart_title = title.to_string();
    if rest > 0 {
        names.push("rest".into());
        chart_title = format!("{title}: the {} largest of {}, and the mean of the other {rest}", shown.len(), labels.len());
    }
    let categories = Some(names);
    drawn(id, title, section, Chart { title: chart_title, x_label: "class".into(), y_label: "share".into(), series, categories, bars: true, ..Default::default() })
}

/// The classes to draw, in class order: all `count` when there are at most
/// `limit`, else the `limit - 1` of largest `size` (ties to the lower class),
/// leaving one bar for the rest. A heap of the kept few: millions of classes
/// are neither sorted nor copied.
fn largest_classes(count: usize, size: impl Fn(usize) -> f64, limit: usize) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if count <= limit {
        return (0..count).collect();
    }
    let keep = limit.saturating_sub(1);
    // Ordered so that the heap's top is the weakest kept class.
    #[derive(PartialEq)]
    struct Kept(f64, Reverse<usize>);
    impl Eq for Kept {}
    impl PartialOrd for Kept {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Kept {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
        }
    }
    let mut heap = BinaryHeap::with_capacity(keep + 1);
    for c in 0..count {
        heap.push(Kept(size(c), Reverse(c)));
        if heap.len() > keep {
            heap.pop();
        }
    }
    let mut shown: Vec<usize> = heap.into_iter().map(|k| (k.1).0).collect();
    shown.sort_unstable();
    shown
}

#[cfg(test)]
mod tests {
    use super::largest_classes;

    #[test]
    fn many_classes_keep_the_largest_and_one_bar_for_the_rest() {
        let labels = [0.1, 0.0, 0.5, 0.0, 0.2, 0.2];
        let preds = [0.0, 0.9, 0.1, 0.0, 0.0, 0.0];
        let size = |c: usize| f64::max(labels[c], preds[c]);
        // Class 1 is kept for its predictions, 2 for its labels; of the tied
        // 4 and 5, the lower.
        assert_eq!(largest_classes(6, size, 3), vec![1, 2]);
        assert_eq!(largest_classes(6, size, 4), vec![1, 2, 4]);
        assert_eq!(largest_classes(6, size, 6), (0..6).collect::<Vec<_>>());
    }
}
