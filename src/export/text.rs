//! The analysis for a person at a terminal: the verdict, the findings grouped
//! by checklist section with their evidence, and what could not be checked.

use crate::analysis::Analysis;
use crate::rules::{Section, Status};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub fn render(analysis: &Analysis) -> String {
    let mut out = String::new();
    let run = &analysis.run;
    let status = match &run.run.imported_from {
        Some(format) => format!("{}; read from {format}", run.run.status.unwrap_or("status unknown")),
        None => run.run.status.unwrap_or("status unknown").to_string(),
    };
    let steps = match (run.steps.first, run.steps.last) {
        (Some(a), Some(b)) => format!("steps {a} to {b}"),
        _ => "no steps".into(),
    };
    let _ = writeln!(
        out,
        "{} ({status}): {steps}, {} metrics, {} tensor records, {} checkpoints",
        run.run.name,
        run.metrics.len(),
        run.tensors.records,
        run.checkpoints.len()
    );
    // What was read as what, where the source named it otherwise.
    let read_as: Vec<String> = run
        .metrics
        .iter()
        .filter_map(|m| Some(format!("{} `{}`", m.role?, m.source_name.as_deref()?)))
        .collect();
    if !read_as.is_empty() {
        let _ = writeln!(out, "read as: {}", read_as.join(", "));
    }
    let v = &analysis.verdict;
    let verdict = if analysis.findings.is_empty() {
        "no problems found".to_string()
    } else {
        format!("{} error(s), {} warning(s), {} note(s)", v.errors, v.warnings, v.infos)
    };
    let ran = analysis.rules.iter().filter(|r| matches!(r.status, Status::Fired | Status::Passed)).count();
    let _ = writeln!(out, "verdict: {verdict} ({ran} rules checked, {} skipped for lack of data)", v.skipped);
    if v.incomplete {
        let _ = writeln!(out, "note: the run did not finish; the analysis covers what it recorded");
    }
    if !analysis.warnings.is_empty() {
        let _ = writeln!(out, "\nInput warnings (what was skipped, and why):");
        for warning in &analysis.warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    let mut by_section: BTreeMap<Section, Vec<_>> = BTreeMap::new();
    for finding in &analysis.findings {
        by_section.entry(Analysis::section_of(finding)).or_default().push(finding);
    }
    for (section, findings) in by_section {
        let _ = writeln!(out, "\n{}", section.title());
        for f in findings {
            let _ = writeln!(out, "  {:<7} {}: {}", f.severity, f.rule, f.message);
            let evidence: Vec<String> = f.evidence.iter().map(|e| e.to_string()).collect();
            if !evidence.is_empty() {
                let _ = writeln!(out, "          evidence: {}", evidence.join("; "));
            }
            if !f.recommendation.is_empty() {
                let _ = writeln!(out, "          fix: {}", f.recommendation);
            }
        }
    }
    let skipped: Vec<_> = analysis.rules.iter().filter(|r| r.status == Status::Skipped).collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "\nNot checked (record this to enable):");
        if run.run.imported_from.is_some() {
            // The reasons name the native format's files and keys.
            let _ = writeln!(
                out,
                "  (an imported log: `postmortem convert` writes it as a run whose run.json and metrics.jsonl can be completed; docs/IMPORT.md)"
            );
        }
        for r in skipped {
            let _ = writeln!(out, "  {}: {}", r.rule, r.reason.as_deref().unwrap_or_default());
        }
    }
    if !analysis.findings.is_empty() {
        let _ = writeln!(out, "\n`postmortem explain RULE` tells what a rule checks and why.");
    }
    out
}
