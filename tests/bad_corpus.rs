//! The adversarial corpus in `fixtures/bad/`: every case states its expected
//! outcome in `expected.json` (exit code, what stderr must say, and for runs
//! that load, rows, rules and metrics), and no case may panic or change a
//! byte of the run.

mod common;

use common::files;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn rule_status<'a>(report: &'a Value, rule: &str) -> &'a str {
    report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).and_then(|r| r["status"].as_str()).unwrap_or("absent")
}

#[test]
fn every_bad_input_has_its_stated_outcome() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value = serde_json::from_slice(&std::fs::read(case.join("expected.json")).unwrap()).unwrap();
        let before = files(&case);
        let out_dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_postmortem"));
        command.args(["analyze", case.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
        if expected["out_files_only"] == true {
            command.args(["--out", out_dir.path().to_str().unwrap()]);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(out.status.code(), expected["exit"].as_i64().map(|c| c as i32), "{name}: {stderr}");
        for needle in strings(&expected["stderr"]) {
            assert!(stderr.contains(needle), "{name}: {needle:?} not in {stderr}");
        }
        assert_eq!(files(&case), before, "{name}: the run directory changed");
        if out.status.code() != Some(0) {
            continue;
        }
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(rows) = expected["rows"].as_u64() {
            assert_eq!(report["run"]["steps"]["rows"].as_u64(), Some(rows), "{name}");
        }
        for rule in strings(&expected["fired"]) {
            assert_eq!(rule_status(&report, rule), "fired", "{name}: {rule}");
        }
        for rule in strings(&expected["skipped"]) {
            assert_eq!(rule_status(&report, rule), "skipped", "{name}: {rule}");
        }
        for rule in strings(&expected["not_skipped"]) {
            assert_ne!(rule_status(&report, rule), "skipped", "{name}: {rule}");
        }
        if let Some(reasons) = expected["skip_reasons"].as_object() {
            for (rule, needle) in reasons {
                let result = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule.as_str()).unwrap();
                let reason = result["reason"].as_str().unwrap_or_default();
                assert!(result["status"] == "skipped" && reason.contains(needle.as_str().unwrap()), "{name}: {rule}: {result}");
            }
        }
        // Each file that could not be read is a warning saying which data went with it.
        let lost: Vec<&str> = report["warnings"].as_array().unwrap().iter().filter_map(|w| w["lost"].as_str()).collect();
        let mut expected_lost = strings(&expected["lost"]);
        let mut found_lost = lost.clone();
        expected_lost.sort();
        found_lost.sort();
        found_lost.dedup();
        assert_eq!(found_lost, expected_lost, "{name}: data lost");
        if let Some(metrics) = expected["metrics"].as_object() {
            for (metric, count) in metrics {
                let found = report["run"]["metrics"].as_array().unwrap().iter().find(|m| m["name"] == metric.as_str());
                assert_eq!(found.map(|m| &m["count"]), Some(count), "{name}: {metric}");
            }
        }
        if expected["out_files_only"] == true {
            // Names from the run never become paths: only the report's own files.
            for (relative, _) in files(out_dir.path()) {
                assert!(relative.starts_with("plots/") || relative.starts_with("report."), "{name}: wrote {relative}");
            }
        }
    }
}
