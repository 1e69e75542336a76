//! The report: self-contained, deterministic, small for long runs, and safe
//! with hostile names.

use postmortem::analysis::analyze_in;
use postmortem::context::Context;
use postmortem::config::Config;
use postmortem::Run;
use postmortem_recorder::{Metrics, Recorder, RunMeta};
mod common;
use common::files;
use std::path::Path;

fn fixture(name: &str) -> Run {
    Run::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs").join(name)).unwrap()
}

#[test]
fn report_is_self_contained_and_deterministic() {
    let run = fixture("dead-relu");
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    postmortem::report::write(&ctx, &analysis, a.path()).unwrap();
    postmortem::report::write(&ctx, &analysis, b.path()).unwrap();
    assert_eq!(files(a.path()), files(b.path()), "two reports of the same run differ");
    let html = std::fs::read_to_string(a.path().join("report.html")).unwrap();
    for banned in ["<script", "src=\"http", "href=\"http", "<link", "@import", "url(", "<img"] {
        assert!(!html.contains(banned), "report.html contains {banned:?}");
    }
    assert!(html.contains("<svg"), "plots are inline");
    assert!(html.contains("dead-relus") && html.contains("href=\"#fig-activation-units\""));
    let md = std::fs::read_to_string(a.path().join("report.md")).unwrap();
    assert!(md.contains("`dead-relus`") && md.contains("plots/activation-units.png"));
    for name in ["loss", "activation-units", "weights"] {
        assert!(a.path().join(format!("plots/{name}.png")).is_file());
        assert!(a.path().join(format!("plots/{name}.svg")).is_file());
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(a.path().join("report.json")).unwrap()).unwrap();
    assert!(json["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "dead-relus"));
}

#[test]
fn missing_data_is_named_not_drawn_empty() {
    let run = Run::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten")).unwrap();
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let out = tempfile::tempdir().unwrap();
    postmortem::report::write(&ctx, &analysis, out.path()).unwrap();
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Update to weight ratio per layer: not recorded; record update statistics"), "{html}");
    assert!(!out.path().join("plots/update-ratio.svg").exists());
}

const HOSTILE: &str = "</script><img src=x onerror=alert(1)>";

#[test]
fn names_from_the_run_are_only_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path().join("run"), RunMeta::new(HOSTILE)).unwrap();
    for step in 0..40u64 {
        let loss = if step == 30 { f64::NAN } else { 2.0 / (1.0 + step as f64) };
        rec.log_metrics(step, &Metrics::new().scalar("loss", loss).scalar(HOSTILE, step as f64)).unwrap();
    }
    rec.finish().unwrap();
    let run = Run::load(&dir.path().join("run")).unwrap();
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let out = dir.path().join("report");
    postmortem::report::write(&ctx, &analysis, &out).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<img"), "markup from the run reached the HTML");
    assert!(!html.contains("<script"), "markup from the run reached the HTML");
    assert!(html.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    // In Markdown a backslash makes `<` plain text, and code spans are
    // literal: outside those, no `<` may reach a renderer.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let outside_code: String = md.split('`').step_by(2).collect();
    assert!(!outside_code.replace("\\<", "").contains('<'), "{md}");
    assert!(md.contains("\\</script\\>\\<img src=x onerror=alert(1)\\>"), "{md}");
}

#[test]
fn long_runs_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("run.json"), r#"{"format": "postmortem-run/1", "status": "finished"}"#).unwrap();
    let mut text = String::new();
    for step in 0..100_000u64 {
        let loss = 3.0 / (1.0 + step as f64 / 1000.0) + ((step * 7919) % 101) as f64 / 1000.0;
        text.push_str(&format!("{{\"step\":{step},\"loss\":{loss},\"lr\":0.001,\"grad_norm\":{}}}\n", 1.0 + (step % 13) as f64 / 10.0));
    }
    std::fs::write(path.join("metrics.jsonl"), text).unwrap();
    let run = Run::load(&path).unwrap();
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let out = dir.path().join("report");
    postmortem::report::write(&ctx, &analysis, &out).unwrap();
    for entry in std::fs::read_dir(out.join("plots")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "svg") {
            let size = p.metadata().unwrap().len();
            assert!(size < 300 << 10, "{} is {size} bytes", p.display());
        }
    }
    assert!(out.join("report.html").metadata().unwrap().len() < 5 << 20);
}

/// A run whose one metrics line counts 7 million classes, with 2,000
/// recorded layers: every figure draws a bounded number of marks, and the
/// whole report folder stays under 10 MB (before bounding, the class plot
/// alone was 600 MB, inlined once more into report.html).
#[test]
fn millions_of_classes_and_thousands_of_layers_stay_small() {
    const CLASSES: usize = 7_000_000;
    const LAYERS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    std::fs::create_dir(&path).unwrap();
    let layers: Vec<String> =
        (0..LAYERS).map(|i| format!(r#"{{"name": "fc{i}", "type": "linear", "activation": "relu", "params": ["fc{i}.weight"]}}"#)).collect();
    let meta = format!(
        r#"{{"format": "postmortem-run/1", "status": "finished", "task": {{"type": "classification", "num_classes": {CLASSES}}}, "model": {{"layers": [{}]}}}}"#,
        layers.join(",")
    );
    std::fs::write(path.join("run.json"), meta).unwrap();
    let mut metrics = String::new();
    for step in 0..50 {
        metrics.push_str(&format!("{{\"step\":{step},\"loss\":{}}}\n", 15.0 - step as f64 * 0.1));
    }
    let counts: Vec<String> = (0..CLASSES).map(|c| ((c * 7919) % 1000).to_string()).collect();
    metrics.push_str(&format!("{{\"step\":50,\"loss\":10,\"label_counts\":[{}],\"pred_counts\":[{}]}}\n", counts.join(","), counts.join(",")));
    std::fs::write(path.join("metrics.jsonl"), metrics).unwrap();
    let mut tensors = String::new();
    for step in [0, 10] {
        for i in 0..LAYERS {
            let stats = r#""count": 4096, "mean": 0.1, "std": 0.05, "min": 0.0, "max": 0.4, "abs_mean": 0.1, "l2": 7.0, "zero_frac": 0.3, "nonfinite": 0"#;
            tensors.push_str(&format!("{{\"step\": {step}, \"name\": \"fc{i}.weight\", \"kind\": \"weight\", {stats}}}\n"));
            tensors.push_str(&format!("{{\"step\": {step}, \"name\": \"fc{i}\", \"kind\": \"activation\", {stats}, \"dead_frac\": 0.1}}\n"));
        }
    }
    std::fs::write(path.join("tensors.jsonl"), tensors).unwrap();
    let run = Run::load(&path).unwrap();
    let ctx = Context::new(&run);
    let analysis = analyze_in(&ctx, &Config::default());
    let out = dir.path().join("report");
    postmortem::report::write(&ctx, &analysis, &out).unwrap();
    let written = files(&out);
    let total: usize = written.iter().map(|(_, bytes)| bytes.len()).sum();
    assert!(total < 10 << 20, "the report folder is {total} bytes: {:?}", written.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>());
    let classes = String::from_utf8(written.iter().find(|(n, _)| n == "plots/classes.svg").unwrap().1.clone()).unwrap();
    assert!(classes.contains(&format!("the 29 largest of {CLASSES}, and the mean of the other {}", CLASSES - 29)), "the rest of the classes is one bar");
    let weights = String::from_utf8(written.iter().find(|(n, _)| n == "plots/weights.svg").unwrap().1.clone()).unwrap();
    assert!(weights.contains("fc0") && weights.len() < 1 << 20, "weights.svg is {} bytes", weights.len());
}
