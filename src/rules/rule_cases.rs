//! Each rule on small hand-made runs: a case that fires, one that passes, a
//! boundary case at its threshold, and one it must skip for lack of data.

use super::testing::{check, decay, fired, passed, run, skipped, stats};
use super::*;
use postmortem_recorder::{Activation, Dataset, Model, Purpose, TensorKind};

fn flat(level: f64, n: usize) -> Vec<f64> {
    // Deterministic small noise around a level.
    (0..n).map(|i| level * (1.0 + 0.002 * ((i * 7 % 5) as f64 - 2.0))).collect()
}

fn three_classes(m: &mut postmortem_recorder::RunMeta) {
    m.task.as_mut().unwrap().num_classes = Some(3);
}

fn findings(outcome: Outcome) -> Vec<Finding> {
    match outcome {
        Outcome::Fired(f) => f,
        other => panic!("expected findings, got {other:?}"),
    }
}

#[test]
fn overfit_tiny_dataset() {
    let rule = &overfit_tiny_dataset::OverfitTinyDataset;
    let check_run = |purpose, to: f64| run().meta(|m| m.purpose = purpose).metric("loss", decay(3.0, to, 50)).build();
    assert!(fired(&check(rule, &check_run(Some(Purpose::OverfitCheck), 0.5), &[])));
    assert!(passed(&check(rule, &check_run(Some(Purpose::OverfitCheck), 0.001), &[])));
    // Boundary: the same curve passes or fails with the threshold.
    let borderline = check_run(Some(Purpose::OverfitCheck), 0.02);
    assert!(passed(&check(rule, &borderline, &[])));
    assert!(fired(&check(rule, &borderline, &[("final_fraction", 0.005)])));
    // Regularization on is a finding even when the loss reached zero.
    let dropout = run()
        .meta(|m| {
            m.purpose = Some(Purpose::OverfitCheck);
            m.hyperparameters = Some(postmortem_recorder::Hyperparameters { dropout: Some(0.5), ..Default::default() });
        })
        .metric("loss", decay(3.0, 0.001, 50))
        .build();
    let found = findings(check(rule, &dropout, &[]));
    assert_eq!((found.len(), found[0].severity), (1, Severity::Warning));
    assert!(skipped(&check(rule, &check_run(Some(Purpose::Train), 0.5), &[])));
}

#[test]
fn no_standard_baseline() {
    let rule = &no_standard_baseline::NoStandardBaseline;
    let on = |standard: Option<bool>, loss: Vec<f64>| {
        run()
            .meta(|m| {
                m.task.as_mut().unwrap().num_classes = Some(2);
                m.dataset = Some(Dataset { name: Some("circles".into()), standard, ..Default::default() });
            })
            .metric("loss", loss)
            .build()
    };
    let found = findings(check(rule, &on(Some(false), flat(0.69, 40)), &[]));
    assert_eq!(found[0].severity, Severity::Info);
    assert!(passed(&check(rule, &on(Some(true), flat(0.69, 40)), &[])));
    assert!(passed(&check(rule, &on(Some(false), decay(0.69, 0.05, 40)), &[])));
    // Boundary: a 10% drop that still ends near guessing has not learned.
    assert!(fired(&check(rule, &on(Some(false), decay(0.76, 0.68, 40)), &[])));
    assert!(skipped(&check(rule, &on(None, flat(0.69, 40)), &[])));
}

#[test]
fn inputs_not_centered() {
    let rule = &inputs_not_centered::InputsNotCentered;
    let with = |mean, std| run().tensor(0, "input", TensorKind::Input, stats(1000, mean, std)).build();
    assert!(fired(&check(rule, &with(4.9, 6.0), &[])));
    assert!(passed(&check(rule, &with(0.01, 1.0), &[])));
    assert!(passed(&check(rule, &with(0.2, 1.0), &[])));
    assert!(fired(&check(rule, &with(0.21, 1.0), &[])));
    // Raw non-negative values fire even when the mean is small against the std.
    let mut raw = stats(1000, 0.5, 3.0);
    (raw.min, raw.max) = (0.0, 255.0);
    assert!(fired(&check(rule, &run().tensor(0, "input", TensorKind::Input, raw).build(), &[])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

#[test]
fn class_imbalance() {
    let rule = &class_imbalance::ClassImbalance;
    let with = |counts: &[u64]| run().meta(three_classes).counts("label_counts", 0, counts).build();
    assert!(fired(&check(rule, &with(&[100, 5, 10]), &[])));
    assert!(passed(&check(rule, &with(&[100, 20, 30]), &[])));
    assert!(passed(&check(rule, &with(&[100, 10, 50]), &[])));
    assert!(fired(&check(rule, &with(&[101, 10, 50]), &[])));
    let never = findings(check(rule, &with(&[100, 0, 50]), &[]));
    assert!(never[0].message.contains("class 1 never appears"), "{}", never[0].message);
    assert!(skipped(&check(rule, &run().build(), &[])));
}

#[test]
fn prediction_collapse() {
    let rule = &prediction_collapse::PredictionCollapse;
    let with = |preds: &[u64], labels: &[u64]| {
        run().meta(three_classes).metric("loss", flat(1.0, 11)).counts("pred_counts", 10, preds).counts("label_counts", 10, labels).build()
    };
    assert!(fired(&check(rule, &with(&[95, 3, 2], &[34, 33, 33]), &[])));
    assert!(passed(&check(rule, &with(&[40, 30, 30], &[34, 33, 33]), &[])));
    assert!(fired(&check(rule, &with(&[90, 5, 5], &[34, 33, 33]), &[])));
    assert!(passed(&check(rule, &with(&[89, 6, 5], &[34, 33, 33]), &[])));
    // Predicting the majority class as often as it occurs is not a collapse.
    assert!(passed(&check(rule, &with(&[90, 5, 5], &[88, 6, 6]), &[])));
    // Predictions from the start of a long run say nothing.
    let early = run().metric("loss", flat(1.0, 100)).counts("pred_counts", 0, &[95, 5]).counts("label_counts", 0, &[50, 50]).build();
    assert!(skipped(&check(rule, &early, &[])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

fn mlp(depth: usize) -> Vec<(String, Activation)> {
    let mut layers: Vec<(String, Activation)> = (1..=depth).map(|i| (format!("fc{i}"), Activation::Relu)).collect();
    layers.push(("out".into(), Activation::None));
    layers
}

fn with_layers(depth: usize) -> testing::RunBuilder {
    let layers = mlp(depth);
    let refs: Vec<(&str, Activation)> = layers.iter().map(|(n, a)| (n.as_str(), a.clone())).collect();
    run().layers(&refs)
}

#[test]
fn deep_model_not_learning() {
    let rule = &deep_model_not_learning::DeepModelNotLearning;
    assert!(fired(&check(rule, &with_layers(6).metric("loss", flat(2.3, 40)).build(), &[])));
    assert!(passed(&check(rule, &with_layers(6).metric("loss", decay(2.3, 0.1, 40)).build(), &[])));
    // Four weight layers (three hidden and the output) are not deep by default.
    assert!(passed(&check(rule, &with_layers(3).metric("loss", flat(2.3, 40)).build(), &[])));
    assert!(fired(&check(rule, &with_layers(3).metric("loss", flat(2.3, 40)).build(), &[("min_layers", 4.0)])));
    assert!(skipped(&check(rule, &run().metric("loss", flat(2.3, 40)).build(), &[])));
}

/// Weight and bias statistics at `step` for fc1, fc2 (64 -> 64) and out (64 -> 10).
fn weights_at(builder: testing::RunBuilder, step: u64, stds: [f64; 3]) -> testing::RunBuilder {
    let mut b = builder;
    for (i, (name, units)) in [("fc1", 64u64), ("fc2", 64), ("out", 10)].into_iter().enumerate() {
        b = b
            .tensor(step, &format!("{name}.weight"), TensorKind::Weight, stats(64 * units, 0.0, stds[i]))
            .tensor(step, &format!("{name}.bias"), TensorKind::Weight, stats(units, 0.0, 0.01));
    }
    b
}

#[test]
fn zero_or_symmetric_init() {
    let rule = &zero_or_symmetric_init::ZeroOrSymmetricInit;
    let found = findings(check(rule, &weights_at(with_layers(2), 0, [0.0, 0.1, 0.1]).build(), &[]));
    assert!(found[0].message.contains("fc1.weight starts all zero"), "{}", found[0].message);
    assert!(passed(&check(rule, &weights_at(with_layers(2), 0, [0.1, 0.1, 0.1]).build(), &[])));
    // A constant other than zero is just as symmetric.
    let mut constant = stats(4096, 0.05, 0.0);
    (constant.min, constant.max) = (0.05, 0.05);
    let b = weights_at(with_layers(2), 0, [0.1, 0.1, 0.1]).tensor(0, "fc2.weight", TensorKind::Weight, constant);
    let mut run_ = b.build();
    run_.tensors.retain(|r| !(r.name == "fc2.weight" && r.stats.std > 0.0));
    let found = findings(check(rule, &run_, &[]));
    assert!(found[0].message.contains("all equal to 0.05"), "{}", found[0].message);
    assert!(skipped(&check(rule, &weights_at(with_layers(2), 10, [0.0, 0.0, 0.0]).build(), &[])));
}

#[test]
fn init_scale_off() {
    let rule = &init_scale_off::InitScaleOff;
    let he = (2.0f64 / 64.0).sqrt();
    let lecun = (1.0f64 / 64.0).sqrt();
    assert!(passed(&check(rule, &weights_at(with_layers(2), 0, [he, he, lecun]).build(), &[])));
    assert!(fired(&check(rule, &weights_at(with_layers(2), 0, [1.0, 1.0, 1.0]).build(), &[])));
    assert!(fired(&check(rule, &weights_at(with_layers(2), 0, [1e-4, 1e-4, 1e-4]).build(), &[])));
    // One layer 5x off: within 10x, outside 5x.
    let one_off = weights_at(with_layers(2), 0, [5.0 * he, he, lecun]).build();
    assert!(passed(&check(rule, &one_off, &[])));
    assert!(fired(&check(rule, &one_off, &[("factor", 4.9)])));
    assert!(skipped(&check(rule, &weights_at(with_layers(2), 5, [1.0, 1.0, 1.0]).build(), &[])));
}

/// Weights 12x the He scale at step 0, recorded in tensors.jsonl with no
/// bias lines and no checkpoint: the fan-in comes from each line's shape, or
/// is inferred from how the layers' element counts chain.
#[test]
fn init_scale_off_takes_fan_in_from_shapes_or_infers_it() {
    let rule = &init_scale_off::InitScaleOff;
    let layers = [("fc1", 64u64, 32u64), ("fc2", 64, 64), ("out", 10, 64)];
    let build = |builder: testing::RunBuilder, shaped: bool| {
        let mut b = builder;
        for (name, out, fan_in) in layers {
            let st = stats(out * fan_in, 0.0, 12.0 * (2.0 / fan_in as f64).sqrt());
            let weight = format!("{name}.weight");
            b = if shaped {
                b.tensor_shaped(0, &weight, TensorKind::Weight, &[out, fan_in], st)
            } else {
                b.tensor(0, &weight, TensorKind::Weight, st)
            };
        }
        b.build()
    };
    assert!(skipped(&check(rule, &build(run(), false), &[])));
    let from_shapes = findings(check(rule, &build(run(), true), &[]));
    assert!(from_shapes[0].evidence.iter().all(|e| !e.what.contains("inferred")), "{:?}", from_shapes[0].evidence);
    let inferred = findings(check(rule, &build(with_layers(2), false), &[]));
    assert!(inferred[0].evidence.iter().any(|e| e.what.contains("fc1.weight std") && e.what.contains("inferred")), "{:?}", inferred[0].evidence);
    // The inferred fans are the true ones.
    let run_ = build(with_layers(2), false);
    let ctx = crate::context::Context::new(&run_);
    let fans: Vec<_> = ctx.weight_layers().iter().map(|l| (l.fan_in, l.fan_out, l.fans_inferred)).collect();
    assert_eq!(fans, [(Some(32), Some(64), true), (Some(64), Some(64), true), (Some(64), Some(10), true)]);
    // A shape that disagrees with the line's count is not believed.
    let lying = run().tensor_shaped(0, "fc1.weight", TensorKind::Weight, &[u64::MAX, 3], stats(2048, 0.0, 1.0)).build();
    assert_eq!(crate::context::Context::new(&lying).weight_layers()[0].fan_in, None);
}

fn activations(signals: &[f64], batch_std: bool) -> testing::RunBuilder {
    let mut b = with_layers(signals.len());
    for (i, s) in signals.iter().enumerate() {
        let mut st = stats(6400, 0.3, if batch_std { 0.2 } else { *s });
        if batch_std {
            st.batch_std = Some(*s);
        }
        b = b.tensor(0, &format!("fc{}", i + 1), TensorKind::Activation, st);
    }
    b
}

#[test]
fn vanishing_activations() {
    let rule = &vanishing_activations::VanishingActivations;
    assert!(fired(&check(rule, &activations(&[0.5, 0.05, 0.001], false).build(), &[])));
    assert!(passed(&check(rule, &activations(&[0.5, 0.4, 0.45], false).build(), &[])));
    // The spread across the batch decides when recorded, not the plain std.
    assert!(fired(&check(rule, &activations(&[0.5, 0.05, 1e-6], true).build(), &[])));
    let edge = activations(&[0.5, 0.1, 0.5 / 128.0], false).build();
    assert!(passed(&check(rule, &edge, &[("min_ratio", 1.0 / 128.0)])));
    assert!(fired(&check(rule, &edge, &[("min_ratio", 1.0 / 64.0)])));
    assert!(skipped(&check(rule, &activations(&[0.5], false).build(), &[])));
}

#[test]
fn untapped_pretrained_weights() {
    let rule = &untapped_pretrained_weights::UntappedPretrainedWeights;
    let model = |arch: &str, pretrained: Option<&str>| {
        run()
            .meta(|m| {
                m.model = Some(Model { architecture: Some(arch.into()), pretrained: pretrained.map(Into::into), ..Default::default() })
            })
            .build()
    };
    assert_eq!(findings(check(rule, &model("resnet18", None), &[]))[0].severity, Severity::Info);
    assert!(passed(&check(rule, &model("resnet18", Some("imagenet")), &[])));
    assert!(passed(&check(rule, &model("mlp", None), &[])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

#[test]
fn loss_not_decreasing() {
    let rule = &loss_not_decreasing::LossNotDecreasing;
    let regression = || run().meta(|m| m.task = None);
    assert!(fired(&check(rule, &regression().metric("loss", decay(3.0, 2.95, 50)).build(), &[])));
    assert!(passed(&check(rule, &regression().metric("loss", decay(3.0, 0.1, 50)).build(), &[])));
    let tenth = regression().metric("loss", decay(3.0, 2.7, 50)).build();
    assert!(passed(&check(rule, &tenth, &[])));
    assert!(fired(&check(rule, &tenth, &[("min_drop", 0.2)])));
    // A classifier that ends at ln C has learned nothing, however high it started.
    let guessing = findings(check(rule, &run().metric("loss", decay(20.0, 2.31, 50)).build(), &[]));
    assert!(guessing[0].message.contains("loss of guessing"), "{}", guessing[0].message);
    let mut nan = decay(3.0, 2.99, 50);
    nan[40] = f64::NAN;
    assert!(passed(&check(rule, &regression().metric("loss", nan).build(), &[])));
    assert!(skipped(&check(rule, &regression().metric("loss", [3.0, 2.9, 2.8]).build(), &[])));
    // A loss of exactly 0 from early on has no gradient; a few zeros at the end of a converged run are fine.
    let mut zero = vec![0.03];
    zero.extend([0.0; 20]);
    let stuck = findings(check(rule, &regression().metric("loss", zero).build(), &[]));
    assert!(stuck[0].message.contains("exactly 0 in 20 of its 21 values, from step 1"), "{}", stuck[0].message);
    let mut converged = decay(3.0, 0.01, 40);
    converged.extend([0.0; 5]);
    assert!(passed(&check(rule, &regression().metric("loss", converged).build(), &[])));
}

#[test]
fn loss_diverging() {
    let rule = &loss_diverging::LossDiverging;
    let mut nan = decay(3.0, 1.0, 30);
    nan[20] = f64::NAN;
    let found = findings(check(rule, &run().metric("loss", nan).build(), &[]));
    assert!(found.iter().any(|f| f.message.contains("becomes NaN at step 20")));
    let mut runaway = decay(3.0, 1.0, 30);
    runaway.extend([2.5, 2.5, 2.5, 2.5, 2.5]);
    let runaway = run().metric("loss", runaway).build();
    assert!(fired(&check(rule, &runaway, &[])));
    assert!(passed(&check(rule, &runaway, &[("factor", 3.0)])));
    assert!(passed(&check(rule, &run().metric("loss", decay(3.0, 0.01, 40)).build(), &[])));
    assert!(skipped(&check(rule, &run().metric("loss", [3.0, 2.0]).build(), &[])));
}

#[test]
fn loss_oscillating() {
    let rule = &loss_oscillating::LossOscillating;
    let mut bouncing = vec![3.0, 3.0, 3.0];
    bouncing.extend((0..97).map(|i| if i % 2 == 0 { 1.8 } else { 1.2 }));
    let bouncing = run().metric("loss", bouncing).build();
    assert!(fired(&check(rule, &bouncing, &[])));
    assert!(passed(&check(rule, &bouncing, &[("amplitude", 0.25)])));
    assert!(passed(&check(rule, &run().metric("loss", decay(3.0, 0.01, 100)).build(), &[])));
    // Noise of a few percent on a loss stuck high is not oscillation.
    let mut noisy = vec![3.0, 3.0, 3.0];
    noisy.extend((0..97).map(|i| if i % 2 == 0 { 2.95 } else { 2.85 }));
    assert!(passed(&check(rule, &run().metric("loss", noisy).build(), &[])));
    assert!(skipped(&check(rule, &run().metric("loss", flat(2.0, 20)).build(), &[])));
}

#[test]
fn initial_loss_mismatch() {
    let rule = &initial_loss_mismatch::InitialLossMismatch;
    let ln10 = 10f64.ln();
    let starting = |l0: f64| run().metric("loss", [l0, 2.0, 1.5]).build();
    assert!(fired(&check(rule, &starting(57.0), &[])));
    assert!(passed(&check(rule, &starting(2.4), &[])));
    assert!(fired(&check(rule, &starting(2.0 * ln10), &[])));
    assert!(passed(&check(rule, &starting(1.99 * ln10), &[])));
    let summed = run()
        .meta(|m| m.hyperparameters = Some(postmortem_recorder::Hyperparameters { batch_size: Some(64), ..Default::default() }))
        .metric("loss", [64.0 * ln10, 100.0])
        .build();
    assert!(findings(check(rule, &summed, &[]))[0].message.contains("summed over the batch"));
    // The penalty is not part of the prediction: data_loss decides.
    let penalized = run().metric("loss", [270.0, 200.0]).metric("data_loss", [2.3, 2.2]).build();
    assert!(passed(&check(rule, &penalized, &[])));
    assert!(skipped(&check(rule, &run().meta(|m| m.task = None).metric("loss", [57.0]).build(), &[])));
    // A fine-tune starts below ln C, and should; above it, it still fires.
    // (Below ln C is at most 1 x ln C away: only a tolerance under 1 sees it.)
    let fine_tune = |l0: f64| {
        run()
            .meta(|m| m.model = Some(postmortem_recorder::Model { pretrained: Some("bert-base-uncased".into()), ..Default::default() }))
            .metric("loss", [l0, 0.05])
            .build()
    };
    assert!(fired(&check(rule, &starting(0.01), &[("tolerance", 0.5)])));
    assert!(passed(&check(rule, &fine_tune(0.01), &[("tolerance", 0.5)])));
    assert!(fired(&check(rule, &fine_tune(57.0), &[])));
}

#[test]
fn regularization_dominates() {
    let rule = &regularization_dominates::RegularizationDominates;
    let with = |dominated: usize| {
        let reg: Vec<f64> = (0..100).map(|i| if i < dominated { 50.0 } else { 0.1 }).collect();
        run().metric("reg_loss", reg).metric("data_loss", flat(2.0, 100)).build()
    };
    assert!(fired(&check(rule, &with(20), &[])));
    assert!(passed(&check(rule, &with(0), &[])));
    assert!(passed(&check(rule, &with(9), &[])));
    assert!(fired(&check(rule, &with(10), &[])));
    // Without data_loss, loss minus the penalty is the data loss.
    let total: Vec<f64> = (0..100).map(|i| if i < 20 { 52.0 } else { 2.1 }).collect();
    let reg: Vec<f64> = (0..100).map(|i| if i < 20 { 50.0 } else { 0.1 }).collect();
    assert!(fired(&check(rule, &run().metric("loss", total).metric("reg_loss", reg).build(), &[])));
    assert!(skipped(&check(rule, &run().metric("loss", flat(2.0, 10)).build(), &[])));
}

#[test]
fn hockey_stick_loss() {
    let rule = &hockey_stick_loss::HockeyStickLoss;
    let stick = |start: f64| {
        let mut v = vec![start, start * 0.5, start * 0.2, 4.0, 2.5, 2.0];
        v.extend(decay(2.0, 1.0, 94));
        v
    };
    assert!(fired(&check(rule, &run().metric("loss", stick(50.0)).build(), &[])));
    assert!(passed(&check(rule, &run().metric("loss", decay(2.3, 0.01, 100)).build(), &[])));
    // Without ln C the early drop itself must be tenfold.
    let regression = |start: f64| run().meta(|m| m.task = None).metric("loss", stick(start)).build();
    assert!(fired(&check(rule, &regression(20.0), &[])));
    assert!(passed(&check(rule, &regression(19.0), &[])));
    assert!(skipped(&check(rule, &run().metric("loss", stick(50.0)[..10].to_vec()).build(), &[])));
}

fn layer_output(activation: Activation, field: &str, value: f64) -> crate::run::Run {
    let mut s = stats(640, 0.5, 0.3);
    match field {
        "saturated" => s.saturated_frac = Some(value),
        _ => s.dead_frac = Some(value),
    }
    if activation == Activation::Relu {
        s.min = 0.0;
    }
    run().layers(&[("fc1", activation), ("out", Activation::None)]).tensor(10, "fc1", TensorKind::Activation, s).build()
}

#[test]
fn saturated_activations() {
    let rule = &saturated_activations::SaturatedActivations;
    assert!(fired(&check(rule, &layer_output(Activation::Tanh, "saturated", 0.8), &[])));
    assert!(passed(&check(rule, &layer_output(Activation::Tanh, "saturated", 0.1), &[])));
    assert!(passed(&check(rule, &layer_output(Activation::Sigmoid, "saturated", 0.5), &[])));
    assert!(fired(&check(rule, &layer_output(Activation::Sigmoid, "saturated", 0.51), &[])));
    assert!(skipped(&check(rule, &layer_output(Activation::Relu, "dead", 0.9), &[])));
}

#[test]
fn dead_relus() {
    let rule = &dead_relus::DeadRelus;
    assert!(fired(&check(rule, &layer_output(Activation::Relu, "dead", 0.9), &[])));
    assert!(passed(&check(rule, &layer_output(Activation::Relu, "dead", 0.05), &[])));
    assert!(passed(&check(rule, &layer_output(Activation::Relu, "dead", 0.5), &[])));
    assert!(fired(&check(rule, &layer_output(Activation::Relu, "dead", 0.51), &[])));
    assert!(skipped(&check(rule, &layer_output(Activation::Tanh, "saturated", 0.9), &[])));
}

#[test]
fn exploding_gradients() {
    let rule = &exploding_gradients::ExplodingGradients;
    let with = |spike: f64| {
        let mut g = flat(1.0, 40);
        g[30] = spike;
        run().metric("grad_norm", g).build()
    };
    assert!(fired(&check(rule, &with(50.0), &[])));
    assert!(passed(&check(rule, &run().metric("grad_norm", decay(3.0, 0.1, 40)).build(), &[])));
    let median_before = crate::series::median(flat(1.0, 40)[10..30].iter().copied());
    assert!(passed(&check(rule, &with(10.0 * median_before), &[])));
    assert!(fired(&check(rule, &with(10.5 * median_before), &[])));
    assert!(fired(&check(rule, &run().metric("grad_norm", [1.0, 2.0, 5.0, 20.0, 100.0, 300.0]).build(), &[])));
    assert!(fired(&check(rule, &run().metric("grad_norm", [1.0, 2.0, f64::INFINITY]).build(), &[])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

fn grads(l2: [f64; 3], zero_frac: f64) -> crate::run::Run {
    let mut b = with_layers(2);
    for (i, name) in ["fc1", "fc2", "out"].iter().enumerate() {
        let mut s = stats(4096, 0.0, l2[i] / 64.0);
        s.l2 = l2[i];
        s.abs_mean = l2[i] / 64.0;
        s.zero_frac = if i == 1 { zero_frac } else { 0.0 };
        b = b.tensor(10, &format!("{name}.weight"), TensorKind::Grad, s);
    }
    b.build()
}

#[test]
fn vanishing_gradients() {
    let rule = &vanishing_gradients::VanishingGradients;
    assert!(fired(&check(rule, &grads([1e-6, 0.1, 1.0], 0.0), &[])));
    assert!(passed(&check(rule, &grads([0.5, 0.7, 1.0], 0.0), &[])));
    assert!(passed(&check(rule, &grads([0.5, 0.7, 1.0], 0.99), &[])));
    assert!(fired(&check(rule, &grads([0.5, 0.7, 1.0], 0.995), &[])));
    assert!(skipped(&check(rule, &with_layers(2).build(), &[])));
}

fn updates(update_l2: f64) -> crate::run::Run {
    let mut b = with_layers(2);
    for name in ["fc1.weight", "fc2.weight", "out.weight"] {
        for step in [0, 10, 20] {
            let mut w = stats(4096, 0.0, 0.15);
            w.l2 = 10.0;
            b = b.tensor(step, name, TensorKind::Weight, w);
            if step > 0 {
                let mut u = stats(4096, 0.0, 0.001);
                u.l2 = update_l2;
                b = b.tensor(step, name, TensorKind::Update, u);
            }
        }
    }
    b.build()
}

#[test]
fn update_ratio() {
    let rule = &update_ratio::UpdateRatio;
    let low = findings(check(rule, &updates(0.001), &[]));
    assert!(low[0].message.contains("too small"));
    assert!(passed(&check(rule, &updates(0.1), &[])));
    assert!(findings(check(rule, &updates(10.0), &[]))[0].message.contains("too large"));
    // Per step: the update over 10 steps divided by 10 and by ||W||.
    let exact = 0.001 / 10.0 / 10.0;
    assert!(passed(&check(rule, &updates(0.001), &[("low", exact)])));
    assert!(fired(&check(rule, &updates(0.001), &[("low", exact * 1.01)])));
    assert!(skipped(&check(rule, &with_layers(2).build(), &[])));
    // An update that says it spans one step is one step's, and needs no
    // earlier weight record: the first recorded step counts too.
    let mut spanned = updates(0.001);
    for record in spanned.tensors.iter_mut().filter(|r| r.kind == TensorKind::Update) {
        record.span = Some(1);
    }
    let mut first = spanned.tensors.iter().find(|r| r.kind == TensorKind::Update && r.step == 10).unwrap().clone();
    first.step = 0;
    spanned.tensors.push(first);
    let per_step = 0.001 / 10.0;
    assert!(passed(&check(rule, &spanned, &[("low", per_step)])));
    assert!(fired(&check(rule, &spanned, &[("low", per_step * 1.01)])));
    assert_eq!(update_ratio::update_ratios(&crate::context::Context::new(&spanned))[0].1.len(), 3);
}

#[test]
fn weight_variance_skew() {
    let rule = &weight_variance_skew::WeightVarianceSkew;
    let he = (2.0f64 / 64.0).sqrt();
    let lecun = (1.0f64 / 64.0).sqrt();
    assert!(fired(&check(rule, &weights_at(with_layers(2), 0, [he, he, 30.0 * lecun]).build(), &[])));
    assert!(passed(&check(rule, &weights_at(with_layers(2), 0, [he, he, lecun]).build(), &[])));
    // He against LeCun is a factor 2 in variance.
    let normal = weights_at(with_layers(2), 0, [he, he, lecun]).build();
    assert!(fired(&check(rule, &normal, &[("max_ratio", 1.9)])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

#[test]
fn nonfinite_values() {
    let rule = &nonfinite_values::NonfiniteValues;
    let mut loss = flat(2.0, 10);
    loss[5] = f64::NAN;
    let mut bad_grad = stats(100, 0.0, 1.0);
    bad_grad.nonfinite = 3;
    let r = run().metric("loss", loss).tensor(3, "fc1.weight", TensorKind::Grad, bad_grad).build();
    let found = findings(check(rule, &r, &[]));
    assert!(found[0].message.contains("step 3, in grad fc1.weight"), "{}", found[0].message);
    assert!(passed(&check(rule, &run().metric("loss", flat(2.0, 10)).build(), &[])));
    let mut inf = flat(2.0, 10);
    inf[9] = f64::INFINITY;
    assert!(fired(&check(rule, &run().metric("grad_norm", inf).build(), &[])));
    assert!(skipped(&check(rule, &run().build(), &[])));
}

#[test]
fn stalled_weights() {
    let rule = &stalled_weights::StalledWeights;
    let with = |steps: &[u64], changing: bool| {
        let mut b = run();
        for (i, step) in steps.iter().enumerate() {
            let std = if changing { 0.1 + 0.01 * i as f64 } else { 0.1 };
            b = b.tensor(*step, "fc1.weight", TensorKind::Weight, stats(100, 0.0, std));
        }
        b.build()
    };
    assert!(fired(&check(rule, &with(&[0, 10, 20], false), &[])));
    assert!(passed(&check(rule, &with(&[0, 10, 20], true), &[])));
    assert!(skipped(&check(rule, &with(&[0, 10], false), &[])));
    assert!(fired(&check(rule, &with(&[0, 10], false), &[("min_records", 2.0)])));
    // Running statistics that never change say the model trains in eval mode.
    let mut b = run();
    for step in [0, 10, 20] {
        b = b.tensor(step, "bn.running_mean", TensorKind::Weight, stats(64, 0.0, 0.0));
        b = b.tensor(step, "fc1.weight", TensorKind::Weight, stats(100, 0.0, 0.1 + step as f64 * 1e-3));
    }
    let found = findings(check(rule, &b.build(), &[]));
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("running statistic(s) never change (the model trains in evaluation mode): bn.running_mean"), "{}", found[0].message);
    assert!(found[0].recommendation.contains("model.train()"));
}

#[test]
fn overfitting() {
    let rule = &overfitting::Overfitting;
    let with = |val: &[f64], train: Vec<f64>| {
        let points: Vec<(u64, f64)> = val.iter().enumerate().map(|(i, v)| (i as u64 * 10, *v)).collect();
        run().metric("loss", train).metric_at("val_loss", points).build()
    };
    let rising = [2.0, 1.0, 0.8, 0.7, 0.75, 0.9, 1.1, 1.2];
    assert!(fired(&check(rule, &with(&rising, decay(2.0, 0.01, 71)), &[])));
    assert!(passed(&check(rule, &with(&[2.0, 1.0, 0.8, 0.7, 0.65, 0.6, 0.58, 0.57], decay(2.0, 0.01, 71)), &[])));
    // The validation loss rising with the training loss is not overfitting.
    assert!(passed(&check(rule, &with(&rising, decay(0.5, 3.0, 71)), &[])));
    assert!(passed(&check(rule, &with(&rising, decay(2.0, 0.01, 71)), &[("rise", 0.8)])));
    assert!(skipped(&check(rule, &with(&rising[..4], decay(2.0, 0.01, 71)), &[])));
}

#[test]
fn loss_spikes() {
    let rule = &loss_spikes::LossSpikes;
    let with = |spike: f64, recovers: bool| {
        let mut v = flat(1.0, 60);
        v[40] = spike;
        if !recovers {
            v[41..].iter_mut().for_each(|x| *x = spike);
        }
        run().metric("loss", v).build()
    };
    let found = findings(check(rule, &with(6.0, true), &[]));
    assert_eq!(found[0].steps, [40]);
    assert!(passed(&check(rule, &run().metric("loss", flat(1.0, 60)).build(), &[])));
    let before = crate::series::median(flat(1.0, 60)[30..40].iter().copied());
    assert!(passed(&check(rule, &with(5.0 * before, true), &[])));
    assert!(fired(&check(rule, &with(5.01 * before, true), &[])));
    // A rise that stays is divergence, not a spike.
    assert!(passed(&check(rule, &with(6.0, false), &[])));
    assert!(skipped(&check(rule, &run().metric("loss", flat(1.0, 10)).build(), &[])));
}
