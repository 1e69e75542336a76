//! Renderers of an [`crate::analysis::Analysis`], one file per output format.
//! Each is a pure function from the analysis to text.

pub mod audit_csv;
pub mod audit_html;
pub mod html;
pub mod json;
pub mod markdown;
pub mod text;
