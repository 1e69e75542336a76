//! `report.md`: a short summary to paste into a ticket (verdict, findings,
//! the numbers), referring to the PNG plots by file name.

use crate::analysis::Analysis;
use crate::report::figures::figure_for;
use crate::report::Rendered;
use crate::rules::{self, Severity};
use crate::run::Run;
use std::fmt::Write as _;

/// Escapes what would change the layout; `<` and `>` become entities so that
/// no markup from the run reaches a renderer that allows inline HTML.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

pub fn render(run: &Run, analysis: &Analysis, figures: &[Rendered]) -> String {
    let mut m = String::new();
    let v = &analysis.verdict;
    let _ = writeln!(m, "# postmortem: {}\n", md(&run.name()));
    let verdict = match v.status {
        "clean" => "no problems found".to_string(),
        _ => format!("**{} error(s), {} warning(s), {} note(s)**", v.errors, v.warnings, v.infos),
    };
    let steps = match (analysis.run.steps.first, analysis.run.steps.last) {
        (Some(a), Some(b)) => format!("steps {a} to {b}"),
        _ => "no steps".into(),
    };
    let _ = writeln!(m, "Verdict: {verdict} ({steps}; {} rules skipped for lack of data).\n", v.skipped);
    if v.incomplete {
        m.push_str("The run did not finish; the analysis covers what it recorded.\n\n");
    }
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        for f in analysis.findings.iter().filter(|f| f.severity == severity) {
            let item = rules::find(f.rule).map(|r| r.meta().checklist_item).unwrap_or_default();
            let _ = writeln!(m, "- **{severity}** `{}` ({}): {}", f.rule, md(item), md(&f.message));
            for e in &f.evidence {
                let _ = writeln!(m, "  - {}", md(&e.to_string()));
            }
            let _ = writeln!(m, "  - what to do: {}", md(&f.recommendation));
            let plot = figure_for(f.rule).and_then(|id| figures.iter().find(|fig| fig.id == id)?.file());
            if let Some(file) = plot {
                let _ = writeln!(m, "  - plot: `{file}`");
            }
        }
    }
    if analysis.findings.is_empty() {
        m.push_str("No rule found a problem.\n");
    }
    m.push_str("\nPlots: ");
    let drawn: Vec<String> = figures.iter().filter_map(|f| f.file()).map(|file| format!("`{file}`")).collect();
    m.push_str(&if drawn.is_empty() { "none".to_string() } else { drawn.join(", ") });
    m.push_str(". The full report with the plots inline is `report.html`.\n");
    m
}
