//! Renderers, one file per output format. Each is a pure function from what
//! the analysis concluded (and the figures drawn for it) to text or bytes;
//! none writes files or reads the run.

pub mod audit_csv;
pub mod audit_html;
#[cfg(feature = "parquet")]
pub mod audit_parquet;
pub mod chart;
pub mod html;
pub mod json;
pub mod markdown;
pub mod native;
pub mod text;

use crate::rules::Section;

/// A figure of the report, drawn: what the exporters lay out.
#[derive(Debug, Clone)]
pub struct DrawnFigure {
    pub id: &'static str,
    pub title: &'static str,
    pub section: Section,
    pub svg: Option<String>,
    pub png: Option<Vec<u8>>,
    /// When not drawn: what to record so that it can be.
    pub missing: String,
    /// The rules whose evidence it shows.
    pub rules: Vec<&'static str>,
}

impl DrawnFigure {
    /// The file of the drawing a reader of the Markdown report should open:
    /// the PNG where one was written, else the SVG.
    pub fn file(&self) -> Option<String> {
        let extension = match (&self.png, &self.svg) {
            (Some(_), _) => "png",
            (None, Some(_)) => "svg",
            (None, None) => return None,
        };
        Some(format!("plots/{}.{extension}", self.id))
    }

    /// The drawn figure that shows a rule's evidence.
    pub fn for_rule<'a>(figures: &'a [DrawnFigure], rule: &str) -> Option<&'a DrawnFigure> {
        figures.iter().find(|f| f.svg.is_some() && f.rules.contains(&rule))
    }
}
