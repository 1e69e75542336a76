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

/// Which files each drawn figure gets under `plots/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFiles {
    /// SVG and PNG: a single report, whose PNGs go into bug tickets.
    SvgAndPng,
    /// SVG only: an audit's many reports, where a PNG per figure would cost
    /// most of the time and about 1 MB a run.
    Svg,
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
pub fn render_figures(ctx: &Context, analysis: &Analysis, files: PlotFiles) -> Result<Vec<DrawnFigure>, ReportError> {
    use rayon::prelude::*;
    figures::all(ctx, analysis)
        .into_par_iter()
        .map(|f| {
            let (svg, png) = match &f.chart {
                Some(chart) => {
                    let png = match files {
                        PlotFiles::SvgAndPng => Some(chart.to_png().map_err(ReportError::Draw)?),
                        PlotFiles::Svg => None,
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
    write_with(ctx, analysis, out, PlotFiles::SvgAndPng)
}

/// [`write`], with the choice of plot files.
pub fn write_with(ctx: &Context, analysis: &Analysis, out: &Path, files: PlotFiles) -> Result<Vec<PathBuf>, ReportError> {
    let run = ctx.run;
    let figures = render_figures(ctx, analysis, files)?;
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
    put(out.join("report.html"), export::html::render(run, analysis, &figures).as_bytes())?;
    Ok(written)
}
