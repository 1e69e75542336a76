//! `summary.csv`: one row per run of an audit, for spreadsheets.

use crate::archive::Audit;

pub fn render(audit: &Audit) -> Result<String, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "run",
        "name",
        "verdict",
        "errors",
        "warnings",
        "infos",
        "rules",
        "final_loss",
        "last_step",
        "incomplete",
        "report",
        "error",
        "input_warnings",
    ])?;
    for r in &audit.rows {
        out.write_record([
            r.run.clone(),
            r.name.clone(),
            r.verdict.clone(),
            r.errors.to_string(),
            r.warnings.to_string(),
            r.infos.to_string(),
            r.rules.join(" "),
            r.final_loss.map(|v| v.to_string()).unwrap_or_default(),
            r.last_step.map(|v| v.to_string()).unwrap_or_default(),
            r.incomplete.to_string(),
            r.report.clone().unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
            r.input_warnings.len().to_string(),
        ])?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
