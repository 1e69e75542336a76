//! `report.html`: one self-contained file (CSS and plots inline, no script, no
//! network, no font) that opens from an e-mail or a ticket attachment.
//!
//! The first screen answers the reader's question: the verdict, the files
//! that could not be read, the whole checklist at a glance (each item fired,
//! passed or skipped, linking to its finding or its reason), then each
//! finding with the few numbers that make its case and its plot beside them.
//! The full plots, the run's details and every rule's reason follow. Markup
//! is built with maud, which escapes every string from the run.

use super::DrawnFigure;
use crate::analysis::Analysis;
use crate::rules::{self, doc_section, Finding, RuleResult, Section, Severity, Status};
use crate::run::Run;
use crate::summary::{format_bytes, format_number};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Evidence shown in a finding before the rest is folded away.
const EVIDENCE_SHOWN: usize = 3;

/// How a report page carries its style sheet and plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding<'a> {
    /// Everything inline: one file that opens from an e-mail or a ticket.
    SelfContained,
    /// The style sheet at a relative URL and the plots as the SVG files
    /// under `plots/`: an audit's many reports share one style sheet and
    /// carry no plot twice.
    Linked { stylesheet: &'a str },
}

/// The report's style sheet, for an audit to write once beside its reports.
pub const STYLE: &str = "
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1em 1.2em;color:#222;line-height:1.45}
h1{font-size:1.5em;margin:.2em 0;overflow-wrap:anywhere}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;margin:.2em 0 .3em}
.verdict{display:inline-block;padding:.25em .7em;border-radius:4px;font-weight:600;color:#fff;margin-right:.5em}
.v-error{background:#c62828}.v-warning{background:#ef6c00}.v-info{background:#1565c0}.v-clean{background:#2e7d32}
.lead{margin:.3em 0}.lead code{overflow-wrap:anywhere}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:.4em .9em;margin:.6em 0}
.note ul{margin:.2em 0;padding-left:1.2em}
.checklist{margin:.4em 0 1em}.checklist div{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25em .3em;margin:.15em 0}
.checklist h3{display:inline;font-size:.85em;margin:0 .3em 0 0;min-width:10.5em}
.chip{font-size:.8em;padding:.05em .45em;border-radius:3px;text-decoration:none;white-space:nowrap}
@media (max-width:600px){.checklist h3{flex-basis:100%}}
.chip:hover{text-decoration:underline}.legend{font-size:.8em;color:#555;margin:.2em 0}
.mark{display:inline-block;font-size:.75em;font-weight:700;text-transform:uppercase;padding:0 .3em;border-radius:3px}
.m-error{background:#c62828;color:#fff}.m-warning{background:#ef6c00;color:#fff}.m-info{background:#1565c0;color:#fff}
.m-passed{background:#e8f5e9;color:#2e7d32}.m-skipped{background:#eee;color:#555}.m-disabled{background:#fafafa;color:#999}
.finding{display:flex;flex-wrap:wrap;gap:.6em 1.2em;border-left:5px solid #999;padding:.5em 1em;margin:.8em 0;background:#fafafa}
.finding.error{border-color:#c62828}.finding.warning{border-color:#ef6c00}.finding.info{border-color:#1565c0}
.finding .text{flex:1 1 330px;min-width:0}.finding .text p{margin:.3em 0}.finding ul{margin:.2em 0;padding-left:1.2em}
.finding figure{flex:0 1 420px;margin:0;min-width:0}.finding figure svg,.finding figure img{width:100%;height:auto;border:1px solid #eee;background:#fff}
.sev{font-weight:700;text-transform:uppercase;font-size:.8em;margin-right:.5em}
.error .sev{color:#c62828}.warning .sev{color:#ef6c00}.info .sev{color:#1565c0}
code{background:#f0f0f0;padding:0 .25em;border-radius:3px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
figure{margin:1em 0}figure svg,figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.missing{color:#666;font-style:italic}
details summary{cursor:pointer;color:#444}
";

pub fn render(run: &Run, analysis: &Analysis, figures: &[DrawnFigure], embedding: Embedding) -> String {
    let name = run.name();
    let body = html! {
            (verdict(run, analysis, &name))
            (input_warnings(analysis))
            (checklist(analysis, embedding))
            (findings(analysis, figures, embedding))
            (plots(figures, embedding))
            (metadata(run, analysis))
            (every_check(analysis))
            p { small { "Made by postmortem. " code { "postmortem explain RULE" } " prints a rule's full documentation." } }
    };
    let title = format!("postmortem: {name}");
    match embedding {
        Embedding::SelfContained => page(&title, STYLE, body),
        Embedding::Linked { stylesheet } => document(&title, html! { link rel="stylesheet" href=(stylesheet); }, body),
    }
}

/// A figure's drawing: the SVG inline, or its file.
fn drawing(figure: &DrawnFigure, embedding: Embedding) -> Markup {
    match embedding {
        // plotters escapes the text it writes into the SVG.
        Embedding::SelfContained => html! { (PreEscaped(figure.svg.as_deref().unwrap_or_default())) },
        Embedding::Linked { .. } => html! { img src={ "plots/" (figure.id) ".svg" } alt=(figure.title) loading="lazy"; },
    }
}

/// A whole self-contained page: its title, its style sheet inline, its body.
pub(super) fn page(title: &str, style: &str, body: Markup) -> String {
    document(title, html! { style { (PreEscaped(style)) } }, body)
}

/// A page with `style` (a style element or a link to a sheet) in its head.
fn document(title: &str, style: Markup, body: Markup) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                (style)
            }
            body { (body) }
        }
    };
    let mut text = page.into_string();
    text.push('\n');
    text
}

fn verdict(run: &Run, analysis: &Analysis, name: &str) -> Markup {
    let v = &analysis.verdict;
    let words = match v.status {
        "clean" => "No problems found".to_string(),
        _ => format!("{} error(s), {} warning(s), {} note(s)", v.errors, v.warnings, v.infos),
    };
    let steps = match (analysis.run.steps.first, analysis.run.steps.last) {
        (Some(a), Some(b)) => format!("steps {a} to {b}"),
        _ => "no steps recorded".into(),
    };
    let checked = analysis.rules.iter().filter(|r| matches!(r.status, Status::Fired | Status::Passed)).count();
    html! {
        h1 { "postmortem: " (name) }
        p.lead {
            span class={ "verdict v-" (v.status) } { (words) }
            (checked) " rules checked, " (v.skipped) " skipped for lack of data."
        }
        p.lead {
            "Run " code { (analysis.run.run.source) }
            @if let Some(format) = &analysis.run.run.imported_from { " (read from " code { (format) } ", docs/IMPORT.md)" }
            ", status " (run.meta.status.map_or("unknown", |s| s.as_str())) ", " (steps) "."
        }
        @if v.incomplete {
            p.note { "The run did not say it finished (killed, crashed, or still running): the analysis covers what it recorded." }
        }
    }
}

/// Files left out first (they change what the verdict means), the rest folded.
fn input_warnings(analysis: &Analysis) -> Markup {
    let (lost, other): (Vec<_>, Vec<_>) = analysis.warnings.iter().partition(|w| w.lost.is_some());
    html! {
        @if !lost.is_empty() {
            div.note {
                strong { (lost.len()) " file(s) could not be read; the analysis went on without them:" }
                ul { @for w in &lost { li { (w.to_string()) } } }
            }
        }
        @if !other.is_empty() {
            details.note {
                summary { (other.len()) " other input warning(s)" }
                ul { @for w in &other { li { (w.to_string()) } } }
            }
        }
    }
}

/// Every checklist item with its status, by section, each linking to its
/// finding (fired) or its reason (passed, skipped).
fn checklist(analysis: &Analysis, embedding: Embedding) -> Markup {
    let sections = [Section::Data, Section::Model, Section::Loss, Section::Activations, Section::Gradients, Section::Weights];
    html! {
        h2 id="checklist" { "The checklist" }
        p.legend {
            "Each check of the debugging checklist: "
            span class="chip m-error" { "error" } " " span class="chip m-warning" { "warning" } " " span class="chip m-info" { "note" }
            " found a problem; " span class="chip m-passed" { "passed" } " checked and fine; "
            span class="chip m-skipped" { "skipped" } " lacks data (hover or follow it for what to record)."
        }
        div.checklist {
            @for section in sections {
                @let results: Vec<&RuleResult> = analysis.rules.iter().filter(|r| rules::find(r.rule).is_some_and(|rule| rule.meta().section == section)).collect();
                @if !results.is_empty() {
                    div {
                        h3 { (section.title()) }
                        @for r in results {
                            @let item = rules::find(r.rule).map(|rule| rule.meta().checklist_item).unwrap_or_default();
                            @let (mark, target) = status_mark(r, analysis);
                            // An audit's report leaves the reason to the row the chip links to.
                            @let reason = r.reason.as_deref().filter(|_| embedding == Embedding::SelfContained);
                            @let tip = format!("{item}: {mark}{}", reason.map(|why| format!(" ({why})")).unwrap_or_default());
                            a class={ "chip m-" (mark) } href=(target) title=(tip) { (r.rule) }
                        }
                    }
                }
            }
        }
    }
}

/// The mark of a rule's status (a fired rule's highest severity) and where it links.
fn status_mark(result: &RuleResult, analysis: &Analysis) -> (&'static str, String) {
    match result.status {
        Status::Fired => {
            let highest = analysis.findings.iter().filter(|f| f.rule == result.rule).map(|f| f.severity).max();
            let mark = match highest {
                Some(Severity::Error) => "error",
                Some(Severity::Warning) => "warning",
                _ => "info",
            };
            (mark, format!("#finding-{}", result.rule))
        }
        Status::Passed => ("passed", format!("#rule-{}", result.rule)),
        Status::Skipped => ("skipped", format!("#rule-{}", result.rule)),
        Status::Disabled => ("disabled", format!("#rule-{}", result.rule)),
    }
}

fn findings(analysis: &Analysis, figures: &[DrawnFigure], embedding: Embedding) -> Markup {
    let ordered: Vec<&Finding> = [Severity::Error, Severity::Warning, Severity::Info]
        .into_iter()
        .flat_map(|s| analysis.findings.iter().filter(move |f| f.severity == s))
        .collect();
    html! {
        @if !ordered.is_empty() {
            h2 id="findings" { "Findings" }
            @for (i, f) in ordered.iter().enumerate() {
                // The first finding of a rule carries the anchor the checklist
                // links to, and the first to use a figure shows it.
                @let first = ordered.iter().position(|g| g.rule == f.rule) == Some(i);
                @let figure = DrawnFigure::for_rule(figures, f.rule)
                    .filter(|fig| ordered[..i].iter().all(|g| DrawnFigure::for_rule(figures, g.rule).is_none_or(|other| other.id != fig.id)));
                (finding(f, first, figure, embedding))
            }
        }
    }
}

fn finding(f: &Finding, anchor: bool, figure: Option<&DrawnFigure>, embedding: Embedding) -> Markup {
    let meta = rules::find(f.rule).map(|r| r.meta());
    let item = meta.map(|m| m.checklist_item).unwrap_or_default();
    let (shown, folded) = f.evidence.split_at(f.evidence.len().min(EVIDENCE_SHOWN));
    html! {
        div class={ "finding " (f.severity) } id=[anchor.then(|| format!("finding-{}", f.rule))] {
            div.text {
                p { span.sev { (f.severity) } code { (f.rule) } " (" (item) ")" br; strong { (f.message) } }
                @if !shown.is_empty() {
                    ul { @for e in shown { li { (e.to_string()) } } }
                }
                @if !folded.is_empty() {
                    details {
                        summary { "all " (f.evidence.len()) " values" }
                        ul { @for e in folded { li { (e.to_string()) } } }
                    }
                }
                p { strong { "What to do: " } (f.recommendation) }
                @if let Some(why) = meta.and_then(|m| doc_section(m.doc, "Why it matters")) {
                    details { summary { "Why it matters" } p { (why) } }
                }
            }
            @if let Some(fig) = figure {
                figure {
                    (drawing(fig, embedding))
                    figcaption { a href={ "#fig-" (fig.id) } { (fig.title) } }
                }
            }
        }
    }
}

fn plots(figures: &[DrawnFigure], embedding: Embedding) -> Markup {
    let mut sections: Vec<Section> = figures.iter().map(|f| f.section).collect();
    sections.sort();
    sections.dedup();
    html! {
        h2 id="plots" { "Plots" }
        @for section in sections {
            h3 { (section.title()) }
            @for f in figures.iter().filter(|f| f.section == section) {
                @match &f.svg {
                    Some(_) => {
                        figure id={ "fig-" (f.id) } {
                            (drawing(f, embedding))
                            figcaption { (f.title) " (" (f.file().unwrap_or_default()) ")" }
                        }
                    }
                    None => p.missing id={ "fig-" (f.id) } { (f.title) ": " (f.missing) "." },
                }
            }
        }
    }
}

fn metadata(run: &Run, analysis: &Analysis) -> Markup {
    let meta = &run.meta;
    let mut rows: Vec<(&str, String)> = vec![
        ("name", run.name()),
        ("status", meta.status.map_or("unknown".into(), |s| s.as_str().to_string())),
        ("purpose", meta.purpose.map_or(String::new(), |p| format!("{p:?}"))),
    ];
    if let Some(t) = &meta.task {
        let kind = t.kind.map_or("unknown".into(), |k| format!("{k:?}"));
        let classes = t.num_classes.map_or("?".into(), |c| c.to_string());
        rows.push(("task", format!("{kind} {classes} classes, loss {}", t.loss.clone().unwrap_or_default())));
    }
    if let Some(d) = &meta.dataset {
        let examples = d.num_examples.map_or("?".into(), |n| n.to_string());
        let standard = d.standard.map_or("?".into(), |s| s.to_string());
        rows.push(("dataset", format!("{} ({examples} examples, standard: {standard})", d.name.clone().unwrap_or_default())));
    }
    if let Some(m) = &meta.model {
        let pretrained = m.pretrained.clone().unwrap_or_else(|| "none".into());
        rows.push((
            "model",
            format!("{} {}; pretrained: {pretrained}", m.name.clone().unwrap_or_default(), m.architecture.clone().unwrap_or_default()),
        ));
        let layers: Vec<String> = m.layers.iter().map(|l| format!("{} ({})", l.name, l.kind.clone().unwrap_or_default())).collect();
        rows.push(("layers", layers.join(", ")));
    }
    if let Some(hp) = &meta.hyperparameters {
        rows.push(("hyperparameters", serde_json::to_string(hp).unwrap_or_default()));
    }
    if let Some(f) = &meta.framework {
        rows.push((
            "framework",
            format!("{} {} {}", f.name.clone().unwrap_or_default(), f.version.clone().unwrap_or_default(), f.device.clone().unwrap_or_default()),
        ));
    }
    let tensors = &analysis.run.tensors;
    html! {
        h2 id="run" { "The run" }
        div.scroll { table { @for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) { tr { th { (k) } td { (v) } } } } }
        h3 { "Metrics" }
        div.scroll {
            table {
                tr { th { "metric" } th { "read as" } th { "values" } th { "non-finite" } th { "last finite" } }
                @for m in &analysis.run.metrics {
                    tr {
                        td { (m.name) }
                        td { (m.role.unwrap_or_default()) @if let Some(source) = &m.source_name { " (from " code { (source) } ")" } }
                        td { (m.count) } td { (m.nonfinite) } td { (m.last.map(format_number).unwrap_or_default()) }
                    }
                }
            }
        }
        p { (tensors.records) " tensor statistics records (" (tensors.names) " tensors at " (tensors.steps) " steps)." }
        @if !analysis.run.checkpoints.is_empty() {
            h3 { "Checkpoints" }
            div.scroll {
                table {
                    tr { th { "step" } th { "file" } th { "tensors" } th { "size" } }
                    @for c in &analysis.run.checkpoints {
                        tr { td { (c.step.map_or("?".into(), |s| s.to_string())) } td { (c.file) } td { (c.tensors) } td { (format_bytes(c.bytes)) } }
                    }
                }
            }
        }
    }
}

/// Every rule with its status and reason: the targets of the checklist's links.
fn every_check(analysis: &Analysis) -> Markup {
    html! {
        h2 id="checks" { "Every check, and what to record" }
        div.scroll {
            table {
                tr { th { "rule" } th { "status" } th { "what was checked, or why not and what to record" } }
                @for r in &analysis.rules {
                    @let (mark, _) = status_mark(r, analysis);
                    tr id={ "rule-" (r.rule) } {
                        td { code { (r.rule) } }
                        td { span class={ "mark m-" (mark) } { (mark) } }
                        td { (r.reason.as_deref().unwrap_or(if r.status == Status::Fired { "see the finding above" } else { "" })) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_from_the_run_is_escaped() {
        let markup = maud::html! { p { ("</script><img src=x onerror=alert(1)>") } p title=("a \"b\" & 'c'") {} };
        let text = markup.into_string();
        assert!(text.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), "{text}");
        assert!(text.contains("title=\"a &quot;b&quot; &amp; 'c'\""), "{text}");
    }
}
