//! `index.html` of an audit: one row per run with its verdict, the rules that
//! fired and a link to its report; sweeps with their loss plot. Self-contained
//! like the run report; a small inline script sorts and filters the table,
//! which stays complete and readable without it. A large archive's index is
//! paged, so that its first page opens at once: [`PAGE_RUNS`] runs and
//! [`PAGE_SWEEPS`] sweeps a page, the rest on `runs-N.html` and
//! `sweeps-N.html` (summary.csv and summary.json hold every row).

use super::chart::{Chart, Series};
use crate::archive::{Audit, AuditRow, Sweep};
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

/// Runs on one page of the index.
pub const PAGE_RUNS: usize = 1000;
/// Sweeps (each with its plot) on one page of the index.
pub const PAGE_SWEEPS: usize = 50;

/// The file name of page `n` (from 1) of `what` (`runs` or `sweeps`).
fn page_name(what: &str, n: usize) -> String {
    if n == 1 {
        "index.html".into()
    } else {
        format!("{what}-{n}.html")
    }
}

/// Whether a file name is one [`render_pages`] writes (a later audit into the
/// same folder removes the old ones first).
pub fn is_page_name(name: &str) -> bool {
    let numbered = |prefix: &str| name.strip_prefix(prefix).and_then(|r| r.strip_suffix(".html")).is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n >= 2));
    name == "index.html" || numbered("runs-") || numbered("sweeps-")
}

/// The index's pages as `(file name, HTML)`, `index.html` first, each
/// rendered when it is asked for (a large audit has hundreds).
pub fn render_pages(audit: &Audit) -> impl Iterator<Item = (String, String)> + '_ {
    let run_pages = audit.rows.len().div_ceil(PAGE_RUNS).max(1);
    let sweep_pages = audit.sweeps.len().div_ceil(PAGE_SWEEPS).max(1);
    let first = std::iter::once(1).map(move |_| ("index.html".to_string(), render_page(audit, 1, run_pages, 1, sweep_pages)));
    let runs = (2..=run_pages).map(move |n| (page_name("runs", n), render_page(audit, n, run_pages, 0, sweep_pages)));
    let sweeps = (2..=sweep_pages).map(move |n| (page_name("sweeps", n), render_page(audit, 0, run_pages, n, sweep_pages)));
    first.chain(runs).chain(sweeps)
}

/// Links to every page of `what` but `current` (none when there is one page).
fn pager(what: &str, current: usize, pages: usize) -> Markup {
    html! {
        @if pages > 1 {
            p.pager {
                (what) " pages: "
                @for n in 1..=pages {
                    @if n == current { b { (n) } } @else { a href=(page_name(what, n)) { (n) } }
                    " "
                }
            }
        }
    }
}

/// Page `run_page` of the runs and `sweep_page` of the sweeps (0: none of
/// them on this page).
fn render_page(audit: &Audit, run_page: usize, run_pages: usize, sweep_page: usize, sweep_pages: usize) -> String {
    let window = |page: usize, size: usize, len: usize| if page == 0 { 0..0 } else { ((page - 1) * size).min(len)..(page * size).min(len) };
    let rows: Vec<AuditRow> = audit.rows.range(window(run_page, PAGE_RUNS, audit.rows.len())).collect();
    let sweeps = &audit.sweeps[window(sweep_page, PAGE_SWEEPS, audit.sweeps.len())];
    let counts: Vec<String> = audit.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    let rules = audit.rows.rules();
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
        @if run_page != 1 { p { a href="index.html" { "back to the first page" } } }
        @if run_page > 0 {
            (pager("runs", run_page, run_pages))
            p {
                label { "rule " select #rule { option value="" { "any" } @for r in rules { option { (r) } } } }
                label { "verdict " select #verdict { option value="" { "any" } @for (v, _) in audit.counts() { option { (v) } } } }
            }
            div.scroll {
                table #runs {
                    thead { tr { th { "run" } th { "verdict" } th { "errors" } th { "warnings" } th { "notes" } th { "rules fired" } th { "final loss" } th { "steps" } } }
                    tbody {
                        @for r in rows {
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
        } @else {
            (pager("runs", 0, run_pages))
        }
        @if sweep_page > 0 {
            @if !sweeps.is_empty() {
                h2 { "Sweeps" }
                (pager("sweeps", sweep_page, sweep_pages))
                @for sweep in sweeps { (sweep_section(sweep)) }
            }
        } @else {
            (pager("sweeps", 0, sweep_pages))
        }
        @if run_page > 0 { script { (PreEscaped(SCRIPT)) } }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Rows;

    fn row(i: usize) -> AuditRow {
        AuditRow {
            run: format!("exp/run-{i:05}"),
            name: format!("run-{i}"),
            verdict: "clean".into(),
            errors: 0,
            warnings: 0,
            infos: 0,
            rules: Vec::new(),
            final_loss: Some(0.1),
            last_step: Some(99),
            incomplete: false,
            report: Some(format!("runs/exp__run-{i:05}/report.html")),
            error: None,
            input_warnings: Vec::new(),
            hyperparameters: Default::default(),
            fingerprint: String::new(),
            standard_dataset: None,
            controls: Vec::new(),
        }
    }

    /// A large audit's index is paged; a small one is one page, as before.
    #[test]
    fn large_indexes_are_paged() {
        let sweep = |i: usize| Sweep { parameter: "learning_rate".into(), points: vec![(0.1, Some(1.0), format!("s{i}/a")), (0.01, Some(0.5), format!("s{i}/b"))], best: None, diverged: Vec::new() };
        let audit = Audit { archive: "archive".into(), rows: Rows::from_rows((0..2500).map(row)), sweeps: (0..120).map(sweep).collect(), left_out: 0, reused: 0 };
        let pages: Vec<(String, String)> = render_pages(&audit).collect();
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["index.html", "runs-2.html", "runs-3.html", "sweeps-2.html", "sweeps-3.html"]);
        assert!(names.iter().all(|n| is_page_name(n)) && !is_page_name("runs-1.html") && !is_page_name("summary.csv"));
        let rows_on = |html: &str| html.matches("<tr class=").count();
        let sweeps_on = |html: &str| html.matches("<figure>").count();
        assert_eq!(pages.iter().map(|p| rows_on(&p.1)).collect::<Vec<_>>(), [1000, 1000, 500, 0, 0]);
        assert_eq!(pages.iter().map(|p| sweeps_on(&p.1)).collect::<Vec<_>>(), [50, 0, 0, 50, 20]);
        assert!(pages[0].1.contains("href=\"runs-3.html\"") && pages[0].1.contains("href=\"sweeps-2.html\""));
        assert!(pages[2].1.contains("exp/run-02499") && pages[4].1.contains("href=\"index.html\""));
        let small = Audit { rows: Rows::from_rows((0..3).map(row)), sweeps: Vec::new(), ..audit };
        let pages: Vec<(String, String)> = render_pages(&small).collect();
        assert_eq!(pages.len(), 1);
        assert!(!pages[0].1.contains("pages:"));
    }
}
