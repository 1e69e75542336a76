//! The analysis as one JSON object (docs/OUTPUT.md describes it).

use crate::analysis::Analysis;

pub fn render(analysis: &Analysis) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(analysis)?;
    text.push('\n');
    Ok(text)
}
