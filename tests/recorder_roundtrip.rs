//! What the recorder writes, the analyzer loads back equal.

use postmortem::Run;
use postmortem_recorder::stats::{activation_stats, stats_f32};
use postmortem_recorder::{
    Activation, HostTensor, Metrics, Purpose, Recorder, RunMeta, RunStatus, Task, TaskKind, TensorKind,
};

#[test]
fn recorded_run_loads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = RunMeta::new("round-trip");
    meta.purpose = Some(Purpose::Train);
    meta.task = Some(Task { kind: Some(TaskKind::Classification), num_classes: Some(3), loss: Some("cross_entropy".into()), ..Default::default() });
    let mut rec = Recorder::create(dir.path(), meta.clone()).unwrap();
    let weights: Vec<f32> = (0..12).map(|i| i as f32 / 10.0 - 0.5).collect();
    // Unit 0 never fires: half the units are dead.
    let acts: Vec<f32> = vec![0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0];
    let mut expected_loss = Vec::new();
    for step in 0..30u64 {
        let loss = if step == 29 { f64::NAN } else { 1.0 / (step as f64 + 1.0) };
        expected_loss.push((step, loss));
        let mut m = Metrics::new().scalar("loss", loss).scalar("lr", 0.1);
        if step % 10 == 9 {
            m = m.scalar("val_loss", 0.5).counts("pred_counts", vec![1, 2, step]);
        }
        rec.log_metrics(step, &m).unwrap();
        if rec.policy().wants_stats(step) {
            rec.log_tensor(step, "fc.weight", TensorKind::Weight, &stats_f32(&weights)).unwrap();
            rec.log_tensor(step, "fc", TensorKind::Activation, &activation_stats(&acts, &[4, 2], &Activation::Relu))
                .unwrap();
        }
    }
    let tensors = vec![
        ("fc.weight".to_string(), HostTensor::from_f32(vec![3, 4], &weights)),
        ("labels".to_string(), HostTensor::from_i64(vec![4], &[0, 2, 1, 1])),
    ];
    rec.write_checkpoint(29, &tensors).unwrap();
    rec.finish().unwrap();

    let run = Run::load(dir.path()).unwrap();
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    meta.status = Some(RunStatus::Finished);
    assert_eq!(run.meta, meta);
    assert!(run.is_complete());

    let loss = run.metrics.series("loss").unwrap();
    assert_eq!(loss.len(), 30);
    for ((s, v), (es, ev)) in loss.iter().zip(&expected_loss) {
        assert_eq!(s, es);
        assert!(v == ev || (v.is_nan() && ev.is_nan()), "step {s}: {v} vs {ev}");
    }
    assert_eq!(run.metrics.series("val_loss").unwrap(), [(9, 0.5), (19, 0.5), (29, 0.5)]);
    assert_eq!(run.metrics.counts["pred_counts"][2], (29, vec![1, 2, 29]));

    assert_eq!(run.tensors.len(), 6);
    assert_eq!(run.tensors[0].stats, stats_f32(&weights));
    let act = &run.tensors[1];
    assert_eq!((act.kind, act.stats.dead_frac), (TensorKind::Activation, Some(0.5)));

    assert_eq!(run.checkpoints.len(), 1);
    let ckpt = &run.checkpoints[0];
    assert_eq!(ckpt.step, Some(29));
    let w = ckpt.tensor("fc.weight").unwrap();
    assert_eq!(w.shape, [3, 4]);
    assert_eq!(ckpt.stats(w).unwrap(), stats_f32(&weights));
    assert_eq!(ckpt.values(ckpt.tensor("labels").unwrap()).unwrap(), [0.0, 2.0, 1.0, 1.0]);
}
