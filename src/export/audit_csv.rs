//! `summary.csv`: one row per run of an audit, for spreadsheets.

use crate::audit::Audit;

/// Quotes a field when it holds a separator, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn render(audit: &Audit) -> String {
    let mut out = String::from("run,name,verdict,errors,warnings,infos,rules,final_loss,last_step,incomplete,report,error\n");
    for r in &audit.rows {
        let cells = [
            field(&r.run),
            field(&r.name),
            r.verdict.clone(),
            r.errors.to_string(),
            r.warnings.to_string(),
            r.infos.to_string(),
            field(&r.rules.join(" ")),
            r.final_loss.map(|v| v.to_string()).unwrap_or_default(),
            r.last_step.map(|v| v.to_string()).unwrap_or_default(),
            r.incomplete.to_string(),
            field(r.report.as_deref().unwrap_or_default()),
            field(r.error.as_deref().unwrap_or_default()),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_what_needs_it() {
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::field("plain"), "plain");
    }
}
