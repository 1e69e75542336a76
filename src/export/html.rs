//! `report.html`: one self-contained file (CSS and plots inline, no script, no
//! network, no font) that opens from an e-mail or a ticket attachment. Every
//! string that comes from the run is escaped.

use crate::analysis::Analysis;
use crate::report::figures::figure_for;
use crate::report::Rendered;
use crate::rules::{self, doc_section, Section, Severity, Status};
use crate::run::Run;
use crate::summary::{format_bytes, format_number};
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1000px;padding:1.5em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:600;color:#fff}
.v-error{background:#c62828}.v-warning{background:#ef6c00}.v-info{background:#1565c0}.v-clean{background:#2e7d32}
.finding{border-left:5px solid #999;padding:.5em 1em;margin:.8em 0;background:#fafafa}
.finding.error{border-color:#c62828}.finding.warning{border-color:#ef6c00}.finding.info{border-color:#1565c0}
.sev{font-weight:700;text-transform:uppercase;font-size:.8em;margin-right:.5em}
.error .sev{color:#c62828}.warning .sev{color:#ef6c00}.info .sev{color:#1565c0}
code{background:#f0f0f0;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}.missing{color:#666;font-style:italic}
.note{background:#fff8e1;padding:.5em 1em;border-radius:4px}
";

pub fn render(run: &Run, analysis: &Analysis, figures: &[Rendered]) -> String {
    let mut h = String::new();
    let name = esc(&run.name());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>postmortem: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    verdict(&mut h, run, analysis, &name);
    findings(&mut h, analysis, figures);
    plots(&mut h, analysis, figures);
    metadata(&mut h, run, analysis);
    not_checked(&mut h, analysis);
    h.push_str("<p><small>Made by postmortem. <code>postmortem explain RULE</code> prints a rule's full documentation.</small></p>\n</body>\n</html>\n");
    h
}

fn verdict(h: &mut String, run: &Run, analysis: &Analysis, name: &str) {
    let v = &analysis.verdict;
    let words = match v.status {
        "clean" => "No problems found".to_string(),
        _ => format!("{} error(s), {} warning(s), {} note(s)", v.errors, v.warnings, v.infos),
    };
    let _ = writeln!(h, "<h1>postmortem: {name}</h1>");
    let _ = writeln!(h, "<p><span class=\"verdict v-{}\">{}</span></p>", v.status, esc(&words));
    let steps = match (analysis.run.steps.first, analysis.run.steps.last) {
        (Some(a), Some(b)) => format!("steps {a} to {b}"),
        _ => "no steps recorded".into(),
    };
    let _ = writeln!(
        h,
        "<p>Run <code>{}</code>, status {}, {}. {} rules checked, {} skipped for lack of data.</p>",
        esc(&analysis.run.run.source),
        esc(run.meta.status.map_or("unknown", |s| s.as_str())),
        esc(&steps),
        analysis.rules.iter().filter(|r| matches!(r.status, Status::Fired | Status::Passed)).count(),
        v.skipped
    );
    if v.incomplete {
        h.push_str("<p class=\"note\">The run did not say it finished (killed, crashed, or still running): the analysis covers what it recorded.</p>\n");
    }
    if !analysis.run.warnings.is_empty() {
        h.push_str("<p class=\"note\">Input warnings:<br>");
        for w in &analysis.run.warnings {
            let _ = write!(h, "{}<br>", esc(&w.to_string()));
        }
        h.push_str("</p>\n");
    }
}

fn findings(h: &mut String, analysis: &Analysis, figures: &[Rendered]) {
    if analysis.findings.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"findings\">Findings</h2>\n");
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        for f in analysis.findings.iter().filter(|f| f.severity == severity) {
            let meta = rules::find(f.rule).map(|r| r.meta());
            let item = meta.map(|m| m.checklist_item).unwrap_or_default();
            let _ = writeln!(h, "<div class=\"finding {severity}\" id=\"finding-{}\">", esc(f.rule));
            let _ = writeln!(
                h,
                "<p><span class=\"sev\">{severity}</span><code>{}</code> ({}) <br><strong>{}</strong></p>",
                esc(f.rule),
                esc(item),
                esc(&f.message)
            );
            if !f.evidence.is_empty() {
                h.push_str("<ul>");
                for e in &f.evidence {
                    let _ = write!(h, "<li>{}</li>", esc(&e.to_string()));
                }
                h.push_str("</ul>\n");
            }
            let _ = writeln!(h, "<p><strong>What to do:</strong> {}</p>", esc(&f.recommendation));
            let plot = figure_for(f.rule).filter(|id| figures.iter().any(|fig| fig.id == *id && fig.svg.is_some()));
            if let Some(id) = plot {
                let _ = writeln!(h, "<p><a href=\"#fig-{id}\">See the plot</a></p>");
            }
            if let Some(why) = meta.and_then(|m| doc_section(m.doc, "Why it matters")) {
                let _ = writeln!(h, "<details><summary>Why it matters</summary><p>{}</p></details>", esc(&why));
            }
            h.push_str("</div>\n");
        }
    }
}

fn plots(h: &mut String, _analysis: &Analysis, figures: &[Rendered]) {
    h.push_str("<h2 id=\"plots\">Plots</h2>\n");
    let mut sections: Vec<Section> = figures.iter().map(|f| f.section).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        let _ = writeln!(h, "<h3>{}</h3>", esc(section.title()));
        for f in figures.iter().filter(|f| f.section == section) {
            match &f.svg {
                Some(svg) => {
                    // plotters escapes the text it writes into the SVG.
                    let file = f.file().unwrap_or_default();
                    let _ = writeln!(h, "<figure id=\"fig-{}\">\n{}\n<figcaption>{} ({})</figcaption>\n</figure>", f.id, svg, esc(f.title), esc(&file));
                }
                None => {
                    let _ = writeln!(h, "<p class=\"missing\" id=\"fig-{}\">{}: not recorded; {}.</p>", f.id, esc(f.title), esc(&f.missing));
                }
            }
        }
    }
}

fn metadata(h: &mut String, run: &Run, analysis: &Analysis) {
    h.push_str("<h2 id=\"run\">The run</h2>\n<table>\n");
    let meta = &run.meta;
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
        }
    };
    row("name", run.name());
    row("status", meta.status.map_or("unknown".into(), |s| s.as_str().to_string()));
    row("purpose", meta.purpose.map_or(String::new(), |p| format!("{p:?}")));
    if let Some(t) = &meta.task {
        row("task", format!("{} {} classes, loss {}", t.kind.map_or("unknown".into(), |k| format!("{k:?}")), t.num_classes.map_or("?".into(), |c| c.to_string()), t.loss.clone().unwrap_or_default()));
    }
    if let Some(d) = &meta.dataset {
        row("dataset", format!("{} ({} examples, standard: {})", d.name.clone().unwrap_or_default(), d.num_examples.map_or("?".into(), |n| n.to_string()), d.standard.map_or("?".into(), |s| s.to_string())));
    }
    if let Some(m) = &meta.model {
        let layers: Vec<String> = m.layers.iter().map(|l| format!("{} ({})", l.name, l.kind.clone().unwrap_or_default())).collect();
        row("model", format!("{} {}; pretrained: {}", m.name.clone().unwrap_or_default(), m.architecture.clone().unwrap_or_default(), m.pretrained.clone().unwrap_or_else(|| "none".into())));
        row("layers", layers.join(", "));
    }
    if let Some(hp) = &meta.hyperparameters {
        row("hyperparameters", serde_json::to_string(hp).unwrap_or_default());
    }
    if let Some(f) = &meta.framework {
        row("framework", format!("{} {} {}", f.name.clone().unwrap_or_default(), f.version.clone().unwrap_or_default(), f.device.clone().unwrap_or_default()));
    }
    h.push_str("</table>\n<h3>Metrics</h3>\n<table><tr><th>metric</th><th>values</th><th>non-finite</th><th>last finite</th></tr>\n");
    for m in &analysis.run.metrics {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&m.name), m.count, m.nonfinite, m.last.map(format_number).unwrap_or_default());
    }
    h.push_str("</table>\n");
    let inputs = &analysis.run.tensors;
    let _ = writeln!(h, "<p>{} tensor statistics records ({} tensors at {} steps).</p>", inputs.records, inputs.names, inputs.steps);
    if !analysis.run.checkpoints.is_empty() {
        h.push_str("<h3>Checkpoints</h3>\n<table><tr><th>step</th><th>file</th><th>tensors</th><th>size</th></tr>\n");
        for c in &analysis.run.checkpoints {
            let step = c.step.map_or("?".into(), |s| s.to_string());
            let _ = writeln!(h, "<tr><td>{step}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&c.file), c.tensors, format_bytes(c.bytes));
        }
        h.push_str("</table>\n");
    }
}

fn not_checked(h: &mut String, analysis: &Analysis) {
    let skipped: Vec<_> = analysis.rules.iter().filter(|r| r.status == Status::Skipped).collect();
    if skipped.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"not-checked\">Not checked: what to record</h2>\n<table><tr><th>rule</th><th>why, and what to record</th></tr>\n");
    for r in skipped {
        let _ = writeln!(h, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(r.rule), esc(r.reason.as_deref().unwrap_or_default()));
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("</script><img src=x onerror=alert(1)>"), "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(esc("a \"b\" & 'c'"), "a &quot;b&quot; &amp; &#39;c&#39;");
    }
}
