//! The report a person reads and a bug ticket carries: `report.html` (one
//! self-contained file), `report.md`, `report.json` and `plots/*.svg|png`.
//! Figures are built from the run (`figures`), drawn by one renderer
//! (`crate::export::chart`), laid out by the exporters in `crate::export`,
//! and written here.

pub mod figures;

use crate::analysis::Analysis;
use crate::context::Context;
use crate::export::{self, DrawnFigure};
use std::path::{Path, PathBuf};

/// The style sheet an audit writes once at the top of its output, which
/// its run reports (two folders down) link to.
pub const AUDIT_STYLESHEET: &str = "report.css";

/// What a report folder holds, and how its page carries its plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// One run's report for a bug ticket: plots as SVG and PNG, and a
    /// report.html that holds everything inline.
    Single,
    /// One of an audit's many reports: plots as SVG (and PNG with `png`,
    /// which would take most of an audit's time and about 1 MB a run), and
    /// a report.html that links them and the audit's style sheet.
    InAudit { png: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Draw(String),
    #[error("could not write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Draws every figure of a run.
pub fn render_figures(ctx: &Context, analysis: &Analysis, kind: ReportKind) -> Result<Vec<DrawnFigure>, ReportError> {
    use rayon::prelude::*;
    // An audit's report draws the loss and what shows a finding: the rest
    // of an audit's tens of thousands of plots would go unread.
    let shows_a_finding = |id: &str| id == "loss" || analysis.findings.iter().any(|f| figures::figure_for(f.rule) == Some(id));
    figures::all(ctx, analysis)
        .into_par_iter()
        .map(|mut f| {
            if matches!(kind, ReportKind::InAudit { .. }) && f.chart.is_some() && !shows_a_finding(f.id) {
                f.chart = None;
                f.missing = "drawn in an audit's report only when a finding needs it; `postmortem analyze RUN --out DIR` draws it".into();
            }
            let (svg, png) = match &f.chart {
                Some(chart) => {
                    let png = match kind {
                        ReportKind::Single | ReportKind::InAudit { png: true } => Some(chart.to_png().map_err(ReportError::Draw)?),
                        ReportKind::InAudit { png: false } => None,
                    };
                    (Some(chart.to_svg().map_err(ReportError::Draw)?), png)
                }
                None => (None, None),
            };
            let rules = crate::rules::all().iter().map(|r| r.meta().id).filter(|rule| figures::figure_for(rule) == Some(f.id)).collect();
            Ok(DrawnFigure { id: f.id, title: f.title, section: f.section, svg, png, missing: f.missing, rules })
        })
        .collect()
}

/// Writes the whole report into `out` (created if needed) and returns the
/// files written, in a stable order. `ctx` is the one the analysis used
/// ([`crate::analysis::analyze_in`]).
pub fn write(ctx: &Context, analysis: &Analysis, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    write_with(ctx, analysis, out, ReportKind::Single)
}

/// [`write`], for a report of the given kind.
pub fn write_with(ctx: &Context, analysis: &Analysis, out: &Path, kind: ReportKind) -> Result<Vec<PathBuf>, ReportError> {
    let run = ctx.run;
    let figures = render_figures(ctx, analysis, kind)?;
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).map_err(|source| ReportError::Io { path: plots.clone(), source })?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), ReportError> {
        std::fs::write(&path, bytes).map_err(|source| ReportError::Io { path: path.clone(), source })?;
        written.push(path);
        Ok(())
    };
    for figure in &figures {
        if let Some(svg) = &figure.svg {
            put(plots.join(format!("{}.svg", figure.id)), svg.as_bytes())?;
        }
        if let Some(png) = &figure.png {
            put(plots.join(format!("{}.png", figure.id)), png)?;
        }
    }
    put(out.join("report.json"), export::json::render(analysis)?.as_bytes())?;
    put(out.join("report.md"), export::markdown::render(run, analysis, &figures).as_bytes())?;
    let stylesheet = format!("../../{AUDIT_STYLESHEET}");
    let embedding = match kind {
        ReportKind::Single => export::html::Embedding::SelfContained,
        ReportKind::InAudit { .. } => export::html::Embedding::Linked { stylesheet: &stylesheet },
    };
    put(out.join("report.html"), export::html::render(run, analysis, &figures, embedding).as_bytes())?;
    Ok(written)
}
