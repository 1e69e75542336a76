//! A run written by hand from docs/FORMAT.md, not by the recorder, loads:
//! bare NaN/Infinity tokens, sparse validation steps, repeated steps, unknown
//! fields, and a checkpoint assembled byte by byte.

use postmortem::Run;
use std::path::Path;

#[test]
fn handwritten_run_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten");
    let run = Run::load(&dir).unwrap();
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    assert_eq!(run.name(), "handwritten-from-format-md");
    assert!(run.is_complete());
    assert_eq!(run.meta.model.as_ref().unwrap().layers.len(), 2);
    assert!(run.meta.extra.contains_key("git_commit"));
    let hp = run.meta.hyperparameters.as_ref().unwrap();
    assert_eq!((hp.learning_rate, hp.grad_clip), (Some(0.01), None));
    assert!(hp.extra.contains_key("momentum"));

    assert_eq!(run.metrics.rows(), 10);
    let loss = run.metrics.series("loss").unwrap();
    assert_eq!(loss.len(), 10);
    assert!(loss[5].1.is_nan());
    let grad_norm = run.metrics.series("grad_norm").unwrap();
    assert_eq!(grad_norm.len(), 9, "null is missing, not a value");
    assert_eq!(grad_norm[5], (5, f64::INFINITY));
    assert_eq!(run.metrics.series("val_loss").unwrap(), [(4, 2.1), (9, 1.9)]);
    assert_eq!(run.metrics.series("my_custom_metric").unwrap(), [(8, 7.0)]);
    assert_eq!(run.metrics.counts["pred_counts"][0].1[0], 32);

    assert_eq!(run.tensors.len(), 4);
    assert_eq!(run.tensors[2].stats.dead_frac, Some(0.03));
    assert!(run.tensors[3].stats.std.is_nan() && run.tensors[3].stats.min.is_nan());

    let ckpt = &run.checkpoints[0];
    assert_eq!(ckpt.step, Some(9));
    let w = ckpt.tensor("fc2.weight").unwrap();
    let stats = ckpt.stats(w).unwrap();
    assert_eq!((stats.count, stats.min, stats.max, stats.zero_frac), (6, -1.0, 1.0, 1.0 / 6.0));
    assert_eq!(ckpt.values(ckpt.tensor("labels").unwrap()).unwrap(), [3.0, 1.0]);
}

#[test]
fn bare_model_file_gets_the_weight_rules() {
    use postmortem::analysis::analyze;
    use postmortem::config::Config;
    use postmortem::rules::Status;
    use postmortem_recorder::HostTensor;
    // A downloaded model: no run.json, no step; fc1 never broke symmetry.
    let fc1 = HostTensor::from_f32(vec![4, 3], &[0.0; 12]);
    let fc2: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) / 10.0).collect();
    let fc2 = HostTensor::from_f32(vec![2, 4], &fc2);
    let fc3 = HostTensor::from_f32(vec![2, 2], &[0.3, -0.3, 0.35, -0.35]);
    let tensors = [("fc1.weight", &fc1), ("fc2.weight", &fc2), ("fc3.weight", &fc3)];
    let bytes = safetensors::serialize(tensors, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let run = Run::load(&path).unwrap();
    let analysis = analyze(&run, &Config::default());
    let status = |id: &str| analysis.rules.iter().find(|r| r.rule == id).unwrap().status;
    assert_eq!(status("zero-or-symmetric-init"), Status::Fired);
    assert_eq!(status("init-scale-off"), Status::Skipped);
    assert_eq!(status("weight-variance-skew"), Status::Passed);
    assert_eq!(status("loss-not-decreasing"), Status::Skipped);
}
