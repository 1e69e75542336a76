//! A recording process killed with SIGKILL leaves a run that loads, with every
//! line it completed, and that the analyzer reports as incomplete.
//!
//! The test runs itself as the child: with POSTMORTEM_CRASH_CHILD set, the
//! ignored test `child_records_forever` records until it is killed.

use postmortem::Run;
use postmortem_recorder::stats::stats_f32;
use postmortem_recorder::{HostTensor, Metrics, Recorder, RunMeta, TensorKind};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "POSTMORTEM_CRASH_CHILD";

#[test]
#[ignore = "runs only as the child of killed_recorder_leaves_a_loadable_run"]
fn child_records_forever() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let mut rec = Recorder::create(&dir, RunMeta::new("crash")).unwrap();
    let weights = vec![0.25f32; 4096];
    for step in 0u64.. {
        let m = Metrics::new().scalar("loss", 1.0 / (step as f64 + 1.0)).scalar("step_twice", 2.0 * step as f64);
        rec.log_metrics(step, &m).unwrap();
        rec.log_tensor(step, "w", TensorKind::Weight, &stats_f32(&weights)).unwrap();
        if step % 50 == 0 {
            rec.write_checkpoint(step, &[("w".to_string(), HostTensor::from_f32(vec![4096], &weights))]).unwrap();
        }
    }
}

fn wait_for_lines(path: &Path, lines: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::fs::read_to_string(path).map(|t| t.lines().count() >= lines).unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the child wrote fewer than {lines} lines in 60 s");
}

/// Kill moments, seeded: after a number of lines, plus a delay of a few
/// milliseconds so that the kill lands anywhere in a write or a checkpoint.
fn kill_moments(count: usize) -> Vec<(usize, u64)> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(|_| (1 + (next() % 3000) as usize, next() % 15)).collect()
}

#[test]
fn killed_recorder_leaves_a_loadable_run() {
    // Many kills at seeded moments; each must leave a whole run.
    for (attempt, (lines, delay_ms)) in kill_moments(12).into_iter().enumerate() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!("run-{attempt}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_records_forever", "--ignored", "--nocapture"])
            .env(CHILD_ENV, &dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_lines(&dir.join("metrics.jsonl"), lines);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let run = Run::load(&dir).unwrap();
        assert!(!run.is_complete());
        assert!(run.warnings.iter().any(|w| w.message.contains("did not finish")), "{:?}", run.warnings);
        let loss = run.metrics.series("loss").unwrap();
        assert!(loss.len() >= lines, "{} rows after seeing {lines}", loss.len());
        for (i, (step, value)) in loss.iter().enumerate() {
            assert_eq!(*step, i as u64);
            assert_eq!(*value, 1.0 / (i as f64 + 1.0));
        }
        // Every complete line is there: the file holds at most one partial line.
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert!(loss.len() + 1 >= text.split('\n').filter(|l| !l.is_empty()).count());
        // The line of step 1 is written after the step-0 checkpoint is renamed into place.
        if loss.len() >= 2 {
            assert!(!run.checkpoints.is_empty());
        }
        for ckpt in &run.checkpoints {
            let w = ckpt.tensor("w").unwrap();
            assert_eq!(ckpt.stats(w).unwrap().mean, 0.25);
        }
    }
}
