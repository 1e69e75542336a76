//! `report.md`: a short summary to paste into a ticket (verdict, findings,
//! the numbers), referring to the PNG plots by file name.

use super::DrawnFigure;
use crate::analysis::Analysis;
use crate::rules::{self, Evidence, Severity};
use crate::run::Run;
use crate::summary::format_number;
use std::fmt::Write as _;

/// Escapes what would change the layout with a backslash, which renders as
/// the character itself: no markup from the run reaches a renderer that
/// allows inline HTML (`\<` is a plain `<`), and the text stays readable.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '<' | '>' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a code span: shown as written, so only backticks need care.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// One piece of evidence for a reader: what, the value in bold, and the
/// comparison and place in words.
fn evidence(e: &Evidence) -> String {
    let mut line = format!("{}: **{}**", md(&e.what), format_number(e.value));
    let mut context = Vec::new();
    if let Some(t) = &e.threshold {
        context.push(format!("threshold {}", code(t)));
    }
    if let Some(s) = e.step {
        context.push(format!("at step {s}"));
    }
    if !context.is_empty() {
        line.push_str(&format!(" ({})", context.join(", ")));
    }
    line
}

pub fn render(run: &Run, analysis: &Analysis, figures: &[DrawnFigure]) -> String {
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
    if let Some(format) = &analysis.run.run.imported_from {
        let _ = writeln!(m, "Read from a `{format}` log (docs/IMPORT.md).\n");
    }
    if v.incomplete {
        m.push_str("The run did not finish; the analysis covers what it recorded.\n\n");
    }
    let lost: Vec<_> = analysis.warnings.iter().filter(|w| w.lost.is_some()).collect();
    if !lost.is_empty() {
        m.push_str("Files that could not be read (the analysis went on without them):\n\n");
        for w in lost {
            let _ = writeln!(m, "- {}", md(&w.to_string()));
        }
        m.push('\n');
    }
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        for f in analysis.findings.iter().filter(|f| f.severity == severity) {
            let item = rules::find(f.rule).map(|r| r.meta().checklist_item).unwrap_or_default();
            let _ = writeln!(m, "- **{severity}** `{}` ({}): {}", f.rule, md(item), md(&f.message));
            for e in &f.evidence {
                let _ = writeln!(m, "  - {}", evidence(e));
            }
            let _ = writeln!(m, "  - what to do: {}", md(&f.recommendation));
            let plot = DrawnFigure::for_rule(figures, f.rule).and_then(|fig| fig.file());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_reads_as_written_and_markup_is_inert() {
        let e = Evidence::new("dead units in fc<1>", 0.7031).threshold("<= 0.5").at(299);
        assert_eq!(evidence(&e), "dead units in fc\\<1\\>: **0.7031** (threshold `<= 0.5`, at step 299)");
        assert_eq!(md("<script>*x*</script>"), "\\<script\\>\\*x\\*\\</script\\>");
        assert_eq!(code("a`b"), "`a'b`");
    }
}
