//! The binary: exit codes, and errors that name the file and the line or
//! tensor, never a panic.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn postmortem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postmortem")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of the handwritten fixture in a temporary folder, to break.
fn broken_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("checkpoints")).unwrap();
    for file in ["run.json", "metrics.jsonl", "tensors.jsonl", "checkpoints/step-00000009.safetensors"] {
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
    }
    dir
}

fn assert_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

#[test]
fn analyze_reports_findings_with_exit_codes_for_ci() {
    // The handwritten run's loss is NaN at step 5: an error finding.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten");
    let out = postmortem(&["analyze", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("handwritten-from-format-md (finished): steps 0 to 9"), "{text}");
    assert!(text.contains("verdict: "), "{text}");
    assert!(text.contains("nonfinite-values: NaN or infinity first appears at step 5"), "{text}");
    let never = postmortem(&["analyze", dir.to_str().unwrap(), "--fail-on", "never"]);
    assert_eq!(never.status.code(), Some(0));
    let ignored = postmortem(&["analyze", dir.to_str().unwrap(), "--ignore", "nonfinite-values,loss-diverging,exploding-gradients"]);
    assert_eq!(ignored.status.code(), Some(0), "{}", String::from_utf8_lossy(&ignored.stdout));
    let json = postmortem(&["analyze", dir.to_str().unwrap(), "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["run"]["steps"]["last"], 9);
    assert_eq!(value["run"]["run"]["complete"], true);
    let finding = value["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "nonfinite-values").unwrap();
    for key in ["severity", "message", "evidence", "recommendation", "steps", "tensors"] {
        assert!(finding.get(key).is_some(), "finding lacks {key}");
    }
    assert_eq!(value["rules"].as_array().unwrap().len(), 26);
}

#[test]
fn bad_options_are_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten");
    let d = dir.to_str().unwrap();
    assert_error(&postmortem(&["analyze", d, "--select", "no-such-rule"]), &["unknown rule \"no-such-rule\""]);
    assert_error(&postmortem(&["analyze", d, "--set", "loss-diverging.nope=3"]), &["has no option \"nope\""]);
    assert_error(&postmortem(&["analyze", d, "--set", "loss-diverging.factor"]), &["RULE.OPTION=NUMBER"]);
    let tuned = postmortem(&["analyze", d, "--select", "loss-diverging", "--set", "loss-diverging.factor=3"]);
    assert_eq!(tuned.status.code(), Some(1), "{}", stderr(&tuned));
}

#[test]
fn config_file_in_the_run_is_read() {
    let dir = broken_copy();
    std::fs::write(dir.path().join("postmortem.toml"), "ignore = [\"nonfinite-values\", \"loss-diverging\", \"exploding-gradients\"]\n").unwrap();
    let out = postmortem(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // A broken configuration in the run costs its settings, not the analysis.
    std::fs::write(dir.path().join("postmortem.toml"), "[rules.loss-diverging]\nfactr = 2\n").unwrap();
    let out = postmortem(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("postmortem.toml") && stderr(&out).contains("factr"), "{}", stderr(&out));
    // One given on the command line is the user's own: a typo there is an error.
    let config = dir.path().join("postmortem.toml");
    assert_error(&postmortem(&["analyze", dir.path().to_str().unwrap(), "--config", config.to_str().unwrap()]), &["factr"]);
}

#[test]
fn rules_and_explain() {
    let out = postmortem(&["rules"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 26);
    assert!(text.contains("dead-relus"));
    let json = postmortem(&["rules", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let first = &value[0];
    for key in ["rule", "checklist_item", "summary", "options"] {
        assert!(first.get(key).is_some(), "rules JSON lacks {key}");
    }
    let explained = postmortem(&["explain", "dead-relus"]);
    let text = String::from_utf8(explained.stdout).unwrap();
    for heading in ["## What it does", "## Why it matters", "## Example", "## Options", "## Known problems", "Checklist item: Dead ReLUs"] {
        assert!(text.contains(heading), "{heading} missing from {text}");
    }
    assert_error(&postmortem(&["explain", "nope"]), &["unknown rule"]);
}

/// Analyzed with `--format json`: warnings on stderr, the report on stdout.
fn analyze_json(dir: &Path) -> (serde_json::Value, String) {
    let out = postmortem(&["analyze", dir.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (serde_json::from_slice(&out.stdout).unwrap(), stderr(&out))
}

#[test]
fn bad_json_line_is_skipped_and_named() {
    let dir = broken_copy();
    let path = dir.path().join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen("{\"step\": 3,", "{\"step\": 3 oops,", 1);
    std::fs::write(&path, text).unwrap();
    let (report, err) = analyze_json(dir.path());
    assert!(err.contains("metrics.jsonl:4: 1 line(s) could not be read") && err.contains("invalid JSON"), "{err}");
    assert_eq!(report["run"]["steps"]["rows"], 9);
    assert!(report["warnings"][0]["message"].as_str().unwrap().contains("(lines 4)"), "{report}");
}

#[test]
fn wrong_format_version_is_named() {
    let dir = broken_copy();
    let path = dir.path().join("run.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("postmortem-run/1", "postmortem-run/9");
    std::fs::write(&path, text).unwrap();
    let out = postmortem(&["analyze", dir.path().to_str().unwrap()]);
    assert_error(&out, &["run.json", "postmortem-run/9", "postmortem-run/1"]);
}

#[test]
fn wrong_field_type_is_ignored_and_named() {
    let dir = broken_copy();
    let path = dir.path().join("run.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"num_classes\": 10", "\"num_classes\": \"ten\"");
    std::fs::write(&path, text).unwrap();
    let (report, err) = analyze_json(dir.path());
    assert!(err.contains("run.json: field \"task.num_classes\" ignored: invalid type: string \"ten\""), "{err}");
    // The rest of the task is kept.
    let rule = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "initial-loss-mismatch").unwrap();
    assert!(rule["reason"].as_str().unwrap().contains("num_classes"), "{rule}");
}

#[test]
fn truncated_checkpoint_is_left_out_and_named() {
    let dir = broken_copy();
    let path = dir.path().join("checkpoints/step-00000009.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    for (cut, needle) in [(bytes.len() - 5, "truncated"), (20, "header length")] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (report, err) = analyze_json(dir.path());
        assert!(
            err.contains("step-00000009.safetensors: could not be read, so the analysis goes on without its checkpoint") && err.contains(needle),
            "{err}"
        );
        assert_eq!(report["run"]["checkpoints"].as_array().unwrap().len(), 0);
        assert_eq!(report["run"]["steps"]["rows"], 10);
        // The text output names it too, for a person.
        let text = String::from_utf8(postmortem(&["analyze", dir.path().to_str().unwrap()]).stdout).unwrap();
        assert!(text.contains("Input warnings") && text.contains("step-00000009.safetensors: could not be read"), "{text}");
    }
}

#[test]
fn missing_run_and_missing_metrics() {
    let empty = tempfile::tempdir().unwrap();
    assert_error(&postmortem(&["analyze", empty.path().to_str().unwrap()]), &["no run found"]);
    // Without metrics the tensor statistics and the checkpoint are still analyzed.
    let dir = broken_copy();
    std::fs::remove_file(dir.path().join("metrics.jsonl")).unwrap();
    let (report, err) = analyze_json(dir.path());
    assert!(err.contains("metrics.jsonl: could not be read, so the analysis goes on without its metrics: missing"), "{err}");
    assert_eq!(report["warnings"][0]["lost"], "metrics");
    // With nothing readable at all, the run is refused.
    std::fs::remove_file(dir.path().join("tensors.jsonl")).unwrap();
    std::fs::remove_file(dir.path().join("checkpoints/step-00000009.safetensors")).unwrap();
    assert_error(&postmortem(&["analyze", dir.path().to_str().unwrap()]), &["nothing could be analyzed", "metrics.jsonl is missing"]);
    assert_error(&postmortem(&["analyze", "/nonexistent/run"]), &["/nonexistent/run"]);
}

#[test]
fn truncated_last_line_is_a_warning() {
    let dir = broken_copy();
    let path = dir.path().join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"step\": 10, \"lo");
    std::fs::write(&path, text).unwrap();
    let out = postmortem(&["analyze", dir.path().to_str().unwrap(), "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("metrics.jsonl:13: last line is cut short"), "{text}");
}

#[test]
fn bare_checkpoint_is_a_run() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/handwritten/checkpoints/step-00000009.safetensors");
    let out = postmortem(&["analyze", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["run"]["checkpoints"][0]["tensors"], 2);
    // Loss rules say what they need instead of passing silently.
    let rule = value["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "loss-diverging").unwrap();
    assert_eq!(rule["status"], "skipped");
    assert!(rule["reason"].as_str().unwrap().contains("metrics.jsonl"));
}

#[test]
fn analysis_never_writes_into_the_run() {
    let dir = broken_copy();
    let before = common::files(dir.path());
    postmortem(&["analyze", dir.path().to_str().unwrap()]);
    postmortem(&["analyze", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(before, common::files(dir.path()));
}

/// `inspect` says how a log was read: the format, and each series' role and
/// the name it came from; a log nothing reads gets an error that quotes what
/// was recognized and names --pattern.
#[test]
fn inspect_shows_what_was_read_as_what() {
    let lightning = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import/lightning");
    let out = postmortem(&["inspect", lightning.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"], "lightning-csv");
    let loss = report["series"].as_array().unwrap().iter().find(|s| s["name"] == "loss").unwrap();
    assert_eq!((loss["role"].as_str(), loss["source_name"].as_str()), (Some("training loss"), Some("train_loss_step")));
    assert!(report["missing"].as_array().unwrap().iter().any(|m| m[0] == "dead-relus"));

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    // One metric line (printed once: no template to read) among prose.
    std::fs::write(&log, "starting\nusing 2 GPUs\nepoch 1 train loss 0.5\nfinished\n").unwrap();
    let out = postmortem(&["analyze", log.to_str().unwrap(), "--from", "text-log"]);
    assert_error(&out, &["line 3", "train_loss=0.5", "step 1", "--pattern"]);
}
