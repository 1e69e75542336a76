//! The rules on real third-party training runs: the keras-faults corpus in
//! `../shared/eval/` (buggy and fixed Keras programs with human fault labels).
//! Every run must load and be analyzed; NaN detection must agree with the
//! labels exactly; and the per-rule firing counts on buggy against fixed runs
//! are printed (run with `--nocapture`), which is how the rules' precision and
//! recall there are measured. Skipped where the corpus is absent.

use postmortem::analysis::analyze;
use postmortem::config::Config;
use postmortem::rules::{self, Severity};
use postmortem::Run;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn keras_faults_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/keras-faults");
    let Ok(labels) = std::fs::read_to_string(root.join("labels.json")) else {
        eprintln!("skipped: no ../shared/eval/keras-faults");
        return;
    };
    // The labels hold bare NaN tokens, as Python writes them.
    let labels: BTreeMap<String, Value> = postmortem::jsonl::parse_object(labels.as_bytes()).unwrap().into_iter().collect();
    // Per rule: fired on buggy, fired on fixed.
    let mut fired: BTreeMap<&str, (usize, usize)> = rules::all().iter().map(|r| (r.meta().id, (0, 0))).collect();
    let (mut buggy, mut fixed, mut flagged_buggy, mut flagged_fixed) = (0, 0, 0, 0);
    let mut nan_mismatches = Vec::new();
    let mut stuck = (0, 0, 0);
    for (name, label) in &labels {
        let run = Run::load(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let analysis = analyze(&run, &Config::default());
        let is_buggy = label["variant"] == "buggy";
        if is_buggy { buggy += 1 } else { fixed += 1 }
        let flagged = analysis.findings.iter().any(|f| f.severity >= Severity::Warning);
        match (is_buggy, flagged) {
            (true, true) => flagged_buggy += 1,
            (false, true) => flagged_fixed += 1,
            _ => {}
        }
        let mut rules_fired: Vec<&str> = analysis.findings.iter().map(|f| f.rule).collect();
        rules_fired.dedup();
        for rule in &rules_fired {
            let entry = fired.get_mut(rule).unwrap();
            if is_buggy { entry.0 += 1 } else { entry.1 += 1 }
        }
        let nan_labelled = label["loss_nonfinite"].as_bool().unwrap_or(false);
        let loss_nan = analysis.findings.iter().any(|f| f.rule == "nonfinite-values" && f.message.contains("metric loss"));
        if nan_labelled != loss_nan {
            nan_mismatches.push(name.clone());
        }
        if label["symptom"] == "Loss Not Changing" && is_buggy {
            stuck.0 += 1;
            if rules_fired.iter().any(|r| ["loss-not-decreasing", "loss-diverging", "nonfinite-values"].contains(r)) {
                stuck.1 += 1;
            }
        }
        if !is_buggy && rules_fired.contains(&"loss-not-decreasing") {
            stuck.2 += 1;
        }
    }
    println!("keras-faults: {buggy} buggy and {fixed} fixed runs");
    println!(
        "runs with a warning or error: {flagged_buggy}/{buggy} buggy (recall {:.2}), {flagged_fixed}/{fixed} fixed; precision {:.2}",
        flagged_buggy as f64 / buggy as f64,
        flagged_buggy as f64 / (flagged_buggy + flagged_fixed).max(1) as f64
    );
    println!("\"Loss Not Changing\" buggy runs caught by a loss rule: {}/{}; loss-not-decreasing on fixed runs: {}", stuck.1, stuck.0, stuck.2);
    println!("{:<28} {:>6} {:>6} {:>10}", "rule", "buggy", "fixed", "precision");
    for (rule, (b, f)) in &fired {
        if b + f > 0 {
            println!("{rule:<28} {b:>6} {f:>6} {:>10.2}", *b as f64 / (b + f) as f64);
        }
    }
    assert!(nan_mismatches.is_empty(), "nonfinite-values disagrees with the labels on {nan_mismatches:?}");
}
