//! `index.html` of an audit: one row per run with its verdict, the rules that
//! fired and a link to its report; sweeps with their loss plot. Self-contained
//! like the run report; a small inline script sorts and filters the table,
//! which stays complete and readable without it.

use super::chart::{Chart, Series};
use crate::archive::{Audit, Sweep};
use crate::summary::format_number;
use maud::{html, Markup, PreEscaped};

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1.5em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4;cursor:pointer}tr.unreadable td{background:#fdecea}
.v{font-weight:700}.v-error{color:#c62828}.v-warning{color:#ef6c00}.v-info{color:#1565c0}.v-clean{color:#2e7d32}.v-unreadable{color:#6a1b9a}
figure svg{max-width:100%;height:auto;border:1px solid #eee}input,select{margin:0 .5em .5em 0}
.scroll{overflow-x:auto}details.input summary{cursor:pointer;color:#6a1b9a}details.input ul{margin:.2em 0;padding-left:1.2em}
";

/// Sorts by a clicked column and filters by rule and verdict; plain DOM only.
const SCRIPT: &str = "
const t=document.getElementById('runs'),rows=[...t.tBodies[0].rows];
function filter(){const r=document.getElementById('rule').value,v=document.getElementById('verdict').value;
rows.forEach(x=>{x.hidden=(r&&!x.dataset.rules.split(' ').includes(r))||(v&&x.dataset.verdict!==v);});}
document.getElementById('rule').onchange=filter;document.getElementById('verdict').onchange=filter;
[...t.tHead.rows[0].cells].forEach((h,i)=>h.onclick=()=>{const dir=h.dataset.dir==='1'?-1:1;h.dataset.dir=dir===1?'1':'-1';
const key=x=>{const c=x.cells[i];return c.dataset.sort??c.textContent;};
rows.sort((a,b)=>{const p=key(a),q=key(b),m=parseFloat(p),n=parseFloat(q);return dir*(isNaN(m)||isNaN(n)?p.localeCompare(q):m-n);});
rows.forEach(x=>t.tBodies[0].appendChild(x));});
";

pub fn render(audit: &Audit) -> String {
    let counts: Vec<String> = audit.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    let mut rules: Vec<&String> = audit.rows.iter().flat_map(|r| &r.rules).collect();
    rules.sort();
    rules.dedup();
    let rank = |v: &str| match v {
        "unreadable" => 4,
        "error" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    };
    let body = html! {
                h1 { "postmortem audit" }
                p { (audit.rows.len()) " runs under " code { (audit.archive) } ": " (counts.join(", ")) "." }
                p {
                    label { "rule " select #rule { option value="" { "any" } @for r in &rules { option { (r) } } } }
                    label { "verdict " select #verdict { option value="" { "any" } @for (v, _) in audit.counts() { option { (v) } } } }
                }
                div.scroll {
                    table #runs {
                        thead { tr { th { "run" } th { "verdict" } th { "errors" } th { "warnings" } th { "notes" } th { "rules fired" } th { "final loss" } th { "steps" } } }
                        tbody {
                            @for r in &audit.rows {
                                tr class=(r.verdict) data-verdict=(r.verdict) data-rules=(r.rules.join(" ")) {
                                    td { @match &r.report { Some(link) => a href=(link) { (r.run) }, None => (r.run) } }
                                    td class={ "v v-" (r.verdict) } data-sort=(rank(&r.verdict)) { (r.verdict) @if r.incomplete { " (incomplete)" } }
                                    td { (r.errors) } td { (r.warnings) } td { (r.infos) }
                                    td {
                                        @match &r.error { Some(e) => { "could not be read: " (e) }, None => (r.rules.join(", ")) }
                                        @if !r.input_warnings.is_empty() {
                                            details.input {
                                                summary { "input: " (r.input_warnings.len()) " warning(s)" }
                                                ul { @for w in &r.input_warnings { li { (w) } } }
                                            }
                                        }
                                        @if !r.controls.is_empty() { br; "control on a standard corpus: " (r.controls.join(", ")) }
                                    }
                                    td { (r.final_loss.map(format_number).unwrap_or_default()) }
                                    td { (r.last_step.map(|s| s.to_string()).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                @if !audit.sweeps.is_empty() { h2 { "Sweeps" } }
                @for sweep in &audit.sweeps { (sweep_section(sweep)) }
                script { (PreEscaped(SCRIPT)) }
    };
    super::html::page("postmortem audit", STYLE, body)
}

fn sweep_section(sweep: &Sweep) -> Markup {
    let positive = sweep.points.iter().all(|p| p.0 > 0.0);
    let chart = Chart {
        title: format!("final loss against {}", sweep.parameter),
        x_label: sweep.parameter.clone(),
        y_label: "final loss".into(),
        log_x: positive,
        log_y: sweep.points.iter().all(|p| p.1.is_some_and(|l| l > 0.0)),
        series: vec![Series { name: "final loss".into(), points: sweep.points.iter().filter_map(|p| Some((p.0, p.1?))).collect() }],
        ..Default::default()
    };
    html! {
        h3 { (sweep.parameter) " sweep over " (sweep.points.len()) " runs" }
        p {
            @match &sweep.best { Some(b) => { "lowest final loss: " code { (b) } }, None => "no run ended with a finite loss" }
            @if !sweep.diverged.is_empty() {
                "; diverged: "
                @for (i, d) in sweep.diverged.iter().enumerate() { @if i > 0 { ", " } code { (d) } }
            }
            "."
        }
        // plotters escapes the text it writes into the SVG.
        @match chart.to_svg() {
            Ok(svg) => figure { (PreEscaped(svg)) },
            Err(e) => p { "plot not drawn: " (e) },
        }
    }
}
