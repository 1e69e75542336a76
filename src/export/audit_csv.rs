//! `summary.csv`: one row per run of an audit, for spreadsheets.

use crate::archive::Audit;

/// Writes the rows to `to`, one at a time.
pub fn write(audit: &Audit, to: impl std::io::Write) -> Result<(), csv::Error> {
    let mut out = csv::Writer::from_writer(to);
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
    for r in audit.rows.iter() {
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
    out.flush()?;
    Ok(())
}
