//! `index.html` of an audit: one row per run with its verdict, the rules that
//! fired and a link to its report; sweeps with their loss plot. Self-contained
//! like the run report; a small inline script sorts and filters the table,
//! which stays complete and readable without it.

use super::html::esc;
use crate::audit::Audit;
use crate::report::chart::{Chart, Series};
use crate::summary::format_number;
use std::fmt::Write as _;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1.5em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4;cursor:pointer}tr.unreadable td{background:#fdecea}
.v{font-weight:700}.v-error{color:#c62828}.v-warning{color:#ef6c00}.v-info{color:#1565c0}.v-clean{color:#2e7d32}.v-unreadable{color:#6a1b9a}
figure svg{max-width:100%;height:auto;border:1px solid #eee}input,select{margin:0 .5em .5em 0}
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
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>postmortem audit</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>postmortem audit</h1>\n"
    );
    let counts: Vec<String> = audit.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    let _ = writeln!(h, "<p>{} runs under <code>{}</code>: {}.</p>", audit.rows.len(), esc(&audit.archive), counts.join(", "));
    let mut rules: Vec<&String> = audit.rows.iter().flat_map(|r| &r.rules).collect();
    rules.sort();
    rules.dedup();
    h.push_str("<p><label>rule <select id=\"rule\"><option value=\"\">any</option>");
    for r in &rules {
        let _ = write!(h, "<option>{}</option>", esc(r));
    }
    h.push_str("</select></label><label>verdict <select id=\"verdict\"><option value=\"\">any</option>");
    for (v, _) in audit.counts() {
        let _ = write!(h, "<option>{v}</option>");
    }
    h.push_str("</select></label></p>\n");
    h.push_str("<table id=\"runs\"><thead><tr><th>run</th><th>verdict</th><th>errors</th><th>warnings</th><th>notes</th><th>rules fired</th><th>final loss</th><th>steps</th></tr></thead><tbody>\n");
    let rank = |v: &str| match v {
        "unreadable" => 4,
        "error" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    };
    for r in &audit.rows {
        let run = match &r.report {
            Some(link) => format!("<a href=\"{}\">{}</a>", esc(link), esc(&r.run)),
            None => esc(&r.run),
        };
        let mut rules_or_error = match &r.error {
            Some(e) => format!("could not be read: {}", esc(e)),
            None => esc(&r.rules.join(", ")),
        };
        if !r.controls.is_empty() {
            rules_or_error.push_str(&format!("<br>control on a standard corpus: {}", esc(&r.controls.join(", "))));
        }
        let _ = writeln!(
            h,
            "<tr class=\"{v}\" data-verdict=\"{v}\" data-rules=\"{}\"><td>{run}</td><td class=\"v v-{v}\" data-sort=\"{}\">{v}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{rules_or_error}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.rules.join(" ")),
            rank(&r.verdict),
            if r.incomplete { " (incomplete)" } else { "" },
            r.errors,
            r.warnings,
            r.infos,
            r.final_loss.map(format_number).unwrap_or_default(),
            r.last_step.map(|s| s.to_string()).unwrap_or_default(),
            v = esc(&r.verdict),
        );
    }
    h.push_str("</tbody></table>\n");
    if !audit.sweeps.is_empty() {
        h.push_str("<h2>Sweeps</h2>\n");
    }
    for sweep in &audit.sweeps {
        let _ = writeln!(h, "<h3>{} sweep over {} runs</h3>", esc(&sweep.parameter), sweep.points.len());
        let best = sweep.best.as_ref().map(|b| format!("lowest final loss: <code>{}</code>", esc(b))).unwrap_or_else(|| "no run ended with a finite loss".into());
        let diverged = if sweep.diverged.is_empty() { String::new() } else { format!("; diverged: {}", sweep.diverged.iter().map(|d| format!("<code>{}</code>", esc(d))).collect::<Vec<_>>().join(", ")) };
        let _ = writeln!(h, "<p>{best}{diverged}.</p>");
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
        match chart.to_svg() {
            Ok(svg) => {
                let _ = writeln!(h, "<figure>{svg}</figure>");
            }
            Err(e) => {
                let _ = writeln!(h, "<p>plot not drawn: {}</p>", esc(&e));
            }
        }
    }
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}
