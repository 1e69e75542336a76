//! The fault-injection corpora: every fixture under fixtures/runs (candle
//! training, recorded by the Rust recorder) and fixtures/torch (PyTorch
//! training, recorded by the Python package) loads, its expected.json holds,
//! every rule is made to fire by some fixture, and the corpora stay small.

use postmortem::analysis::analyze;
use postmortem::config::Config;
use postmortem::rules::{self, Status};
use postmortem::Run;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The run folders of a corpus under fixtures/, at least `at_least` of them.
fn corpus(name: &str, at_least: usize) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= at_least, "the {name} corpus has {} fixtures", dirs.len());
    dirs
}

fn fixtures() -> Vec<PathBuf> {
    let mut dirs = corpus("runs", 25);
    dirs.extend(corpus("torch", 12));
    dirs
}

fn names(value: &Value, key: &str) -> Vec<String> {
    value.get(key).and_then(|v| v.as_array()).map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[test]
fn every_fixture_meets_its_expectations() {
    let known: BTreeSet<&str> = rules::all().iter().map(|r| r.meta().id).collect();
    let mut failures = Vec::new();
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        for rule in names(&expected, "must_fire").iter().chain(&names(&expected, "must_not_fire")).chain(&names(&expected, "must_pass")) {
            assert!(known.contains(rule.as_str()), "{name}: expected.json names unknown rule {rule}");
        }
        let run = Run::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let analysis = analyze(&run, &Config::default());
        let fired: BTreeSet<&str> = analysis.findings.iter().map(|f| f.rule).collect();
        for rule in names(&expected, "must_fire") {
            if !fired.contains(rule.as_str()) {
                let why = analysis.rules.iter().find(|r| r.rule == rule).and_then(|r| r.reason.clone()).unwrap_or_default();
                failures.push(format!("{name}: {rule} should fire ({why})"));
            }
        }
        for rule in names(&expected, "must_not_fire") {
            if let Some(f) = analysis.findings.iter().find(|f| f.rule == rule) {
                failures.push(format!("{name}: {rule} should not fire: {}", f.message));
            }
        }
        for rule in names(&expected, "must_pass") {
            let status = analysis.rules.iter().find(|r| r.rule == rule).map(|r| r.status);
            if status != Some(Status::Passed) {
                failures.push(format!("{name}: {rule} should pass, was {status:?}"));
            }
        }
        let incomplete = expected.get("incomplete").and_then(|v| v.as_bool()).unwrap_or(false);
        if analysis.verdict.incomplete != incomplete {
            failures.push(format!("{name}: incomplete should be {incomplete}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_fixture_that_makes_it_fire() {
    let mut covered = BTreeSet::new();
    for dir in fixtures() {
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        covered.extend(names(&expected, "must_fire"));
    }
    let missing: Vec<&str> = rules::all().iter().map(|r| r.meta().id).filter(|id| !covered.contains(*id)).collect();
    assert!(missing.is_empty(), "rules no fixture makes fire: {missing:?}");
}

#[test]
fn corpus_stays_small() {
    for (name, at_least, limit) in [("runs", 25, 30 << 20), ("torch", 12, 12 << 20)] {
        let mut total = 0;
        for dir in corpus(name, at_least) {
            let size = dir_size(&dir);
            assert!(size < 2 << 20, "{} is {size} bytes", dir.display());
            total += size;
        }
        assert!(total < limit, "fixtures/{name} is {total} bytes");
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { dir_size(&p) } else { p.metadata().unwrap().len() }
        })
        .sum()
}
