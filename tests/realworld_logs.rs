//! The importers and the rules on real third-party training logs:
//! `../shared/eval/realworld-logs/` (logs committed to public repositories by
//! their authors, in their original formats, with labels and negative
//! controls in INDEX.md). Every log of a supported format must load; the
//! labelled cases, the negative controls and the healthy logs are scored and
//! printed (run with `--nocapture`), which is how docs/EVAL.md is measured.
//! Skipped where the set is absent.

use postmortem::analysis::{analyze, Analysis};
use postmortem::config::Config;
use postmortem::import::{self, ImportOptions};
use postmortem::rules::Severity;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The formats of the set, all with an importer.
const SUPPORTED: [&str; 6] = ["hf-trainer-state", "lightning-csv", "keras-csv", "mlflow", "text-log", "tfevents"];

/// The negative controls of INDEX.md: a log and a rule that must stay silent there.
const NEGATIVE_CONTROLS: [(&str, &str); 12] = [
    ("hf-trainer-state/bert-agnews-healthy", "initial-loss-mismatch"),
    ("hf-trainer-state/toxic-starts-at-ln2", "initial-loss-mismatch"),
    ("hf-trainer-state/sentiment-300-entries", "initial-loss-mismatch"),
    ("lightning-csv/mnist-lstm-22500-rows", "initial-loss-mismatch"),
    ("keras-csv/dm2020-emotion-overfit", "initial-loss-mismatch"),
    ("keras-csv/nlp-binary-overfit", "initial-loss-mismatch"),
    ("text-log/llmc-gpt2-124m", "initial-loss-mismatch"),
    ("mlflow/mnist-lr0.02-plateau", "initial-loss-mismatch"),
    ("lightning-csv/trash-val-loss-floor", "loss-not-decreasing"),
    ("hf-trainer-state/poem-gpt2-per-step", "loss-oscillating"),
    ("hf-trainer-state/poem-gpt2-per-step", "loss-spikes"),
    ("hf-trainer-state/stanford-alpaca-1218pts", "loss-spikes"),
];

struct Log {
    name: String,
    format: String,
    labels: Vec<String>,
    healthy: bool,
    /// The series the set's annotation names as the training and the
    /// validation loss (`series.train_loss`, `series.val_loss`), if any.
    annotated: [(&'static str, Option<String>); 2],
    /// One analysis per fit (most logs hold one).
    analyses: Vec<Analysis>,
}

impl Log {
    /// Rules with a finding of at least this severity on any fit.
    fn fired(&self, at_least: Severity) -> Vec<&'static str> {
        let mut rules: Vec<&'static str> =
            self.analyses.iter().flat_map(|a| a.findings.iter().filter(|f| f.severity >= at_least).map(|f| f.rule)).collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }
}

/// Every fit of a log, analyzed: `--fit 1`, `--fit 2`, ... until there is
/// no more; or, without `all_fits`, the one `analyze` reads.
fn analyze_fits(path: &Path, all_fits: bool) -> Result<Vec<Analysis>, String> {
    if !all_fits {
        return import::load(path, &ImportOptions::default()).map(|run| vec![analyze(&run, &Config::default())]).map_err(|e| e.to_string());
    }
    let mut analyses = Vec::new();
    for fit in 1.. {
        let options = ImportOptions { fit: Some(fit), ..Default::default() };
        match import::load(path, &options) {
            Ok(run) => analyses.push(analyze(&run, &Config::default())),
            Err(e) if fit > 1 && e.to_string().contains("--fit") => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(analyses)
}

/// Every log of a set, analyzed, and the logs that did not load (with why).
fn load_set(root: &Path, formats: &[String], all_fits: bool) -> (Vec<Log>, Vec<String>) {
    let mut logs = Vec::new();
    let mut failures = Vec::new();
    for format in formats {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(root.join(format)).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        folders.sort();
        for folder in folders {
            let source: Value = serde_json::from_slice(&std::fs::read(folder.join("source.json")).unwrap()).unwrap();
            let name = format!("{format}/{}", folder.file_name().unwrap().to_string_lossy());
            let annotated = |key: &str| source["series"][key].as_str().map(str::to_string);
            match analyze_fits(&folder, all_fits) {
                Ok(analyses) => logs.push(Log {
                    annotated: [("loss", annotated("train_loss")), ("val_loss", annotated("val_loss"))],
                    name,
                    format: format.to_string(),
                    labels: source["labels"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l.as_str().unwrap().to_string())
                        .filter(|l| l != "unlabelled")
                        .collect(),
                    healthy: source["pathological"] == false,
                    analyses,
                }),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    (logs, failures)
}

/// A series name as the annotations and the importers spell it, compared
/// loosely: case, separators and a file extension aside.
fn spelled(name: &str) -> String {
    name.trim_end_matches(".tsv").to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect()
}

/// How many annotated training and validation losses were read under their
/// role, and the ones that were not.
fn roles_read(logs: &[Log]) -> (usize, Vec<String>) {
    let mut right = 0;
    let mut wrong = Vec::new();
    for log in logs {
        let Some(analysis) = log.analyses.last() else { continue };
        for (key, want) in &log.annotated {
            let Some(want) = want else { continue };
            let read = analysis.run.metrics.iter().find(|m| m.name == *key).map(|m| spelled(m.source_name.as_deref().unwrap_or(&m.name)));
            let want = spelled(want);
            // A tool's prefix may be dropped on either side (TensorBoard's run folders).
            if read.as_ref().is_some_and(|r| *r == want || r.ends_with(&want) || want.ends_with(r.as_str())) {
                right += 1;
            } else {
                wrong.push(format!("{} {key}: annotated `{want}`, read {read:?}", log.name));
            }
        }
    }
    (right, wrong)
}

#[test]
fn realworld_logs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/realworld-logs");
    if !root.join("INDEX.md").is_file() {
        eprintln!("skipped: no ../shared/eval/realworld-logs");
        return;
    }
    let (logs, failures) = load_set(&root, &SUPPORTED.map(String::from), true);
    assert!(failures.is_empty(), "logs that did not load:\n{}", failures.join("\n"));
    let count = |format: &str| logs.iter().filter(|l| l.format == format).count();
    // The set's own counts (INDEX.md): every one of these logs loaded.
    assert_eq!(
        [count("hf-trainer-state"), count("lightning-csv"), count("keras-csv"), count("mlflow"), count("text-log"), count("tfevents")],
        [26, 11, 14, 3, 5, 5]
    );

    println!("\n| log | labels | rules with a finding |\n| --- | --- | --- |");
    for log in &logs {
        let labels = if log.labels.is_empty() { if log.healthy { "healthy".into() } else { "unlabelled".into() } } else { log.labels.join(", ") };
        println!("| {} | {labels} | {} |", log.name, log.fired(Severity::Info).join(", "));
    }

    // Recall of the labels, per format and per rule: a label is found when
    // its rule reports anything (a note included); healthy logs are judged
    // by their warnings and errors.
    let mut per_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut per_format: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for log in &logs {
        let fired = log.fired(Severity::Info);
        for label in &log.labels {
            let hit = fired.contains(&label.as_str());
            for counts in [per_rule.entry(label.as_str()).or_default(), per_format.entry(log.format.as_str()).or_default()] {
                counts.0 += 1;
                counts.1 += usize::from(hit);
            }
            if !hit {
                missed.push(format!("{} ({label})", log.name));
            }
        }
    }
    let labelled: usize = per_rule.values().map(|c| c.0).sum();
    let recalled: usize = per_rule.values().map(|c| c.1).sum();
    println!("\nlabel recall: {recalled} of {labelled}");
    for (rule, (n, hit)) in &per_rule {
        println!("  {rule}: {hit} of {n}");
    }
    for (format, (n, hit)) in &per_format {
        println!("  {format}: {hit} of {n}");
    }
    println!("missed: {}", missed.join("; "));

    // Negative controls.
    let mut controls_fired = Vec::new();
    for (name, rule) in NEGATIVE_CONTROLS {
        let log = logs.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no log {name}"));
        if log.fired(Severity::Info).contains(&rule) {
            controls_fired.push(format!("{name}: {rule}"));
        }
    }
    println!("\nnegative controls fired: {} of {}: {}", controls_fired.len(), NEGATIVE_CONTROLS.len(), controls_fired.join("; "));

    // Healthy logs with a warning or an error.
    let healthy: Vec<&Log> = logs.iter().filter(|l| l.healthy).collect();
    let loud = |at: Severity| healthy.iter().filter(|l| !l.fired(at).is_empty()).map(|l| format!("{} ({})", l.name, l.fired(at).join(", "))).collect::<Vec<_>>();
    let (errors, warnings) = (loud(Severity::Error), loud(Severity::Warning));
    println!("\nhealthy logs: {}; with an error: {}; with a warning or error: {}", healthy.len(), errors.len(), warnings.len());
    for line in &warnings {
        println!("  {line}");
    }
}

/// The second set (`../shared/eval/realworld-logs-2/`, other repositories and
/// more tools), read in place as a new user would point postmortem at it:
/// the share that loads, and whether the training and validation losses the
/// set's annotations name are the series read as them, over both sets.
#[test]
fn realworld_logs_2() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval");
    let root = base.join("realworld-logs-2");
    if !root.join("INDEX.md").is_file() {
        eprintln!("skipped: no ../shared/eval/realworld-logs-2");
        return;
    }
    let mut formats: Vec<String> =
        std::fs::read_dir(&root).unwrap().flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    formats.sort();
    let (logs, failures) = load_set(&root, &formats, false);
    let total = logs.len() + failures.len();
    println!("\nrealworld-logs-2: {} of {total} logs load", logs.len());
    for format in &formats {
        let loaded = logs.iter().filter(|l| l.format == *format).count();
        let failed = failures.iter().filter(|f| f.starts_with(&format!("{format}/"))).count();
        println!("  {format}: {loaded} of {}", loaded + failed);
    }
    for failure in &failures {
        println!("  did not load: {}", failure.lines().next().unwrap_or_default());
    }
    let (first, _) = load_set(&base.join("realworld-logs"), &SUPPORTED.map(String::from), false);
    let both: Vec<Log> = first.into_iter().chain(logs).collect();
    let (right, wrong) = roles_read(&both);
    println!("training and validation losses read under their role: {right} of {}", right + wrong.len());
    for miss in &wrong {
        println!("  {miss}");
    }
    // Floors at what this reader achieves today (170 of 174; 330 of 351), so
    // that a change that reads fewer logs, or fewer losses right, fails.
    assert!(logs_share(both.len() - 64, total) >= 0.97, "{} of {total} logs of the second set load", total - failures.len());
    assert!(logs_share(right, right + wrong.len()) >= 0.9, "{right} of {} losses read under their role", right + wrong.len());
}

fn logs_share(part: usize, whole: usize) -> f64 {
    part as f64 / whole.max(1) as f64
}
