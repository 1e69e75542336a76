//! `summary.parquet`: the rows of an audit as a typed table, for the tools a
//! team queries archives with (polars, pandas, DuckDB, Spark). The columns
//! are those of `summary.csv`, with rules and input warnings as lists and
//! the hyperparameters as one JSON object per run.

use crate::archive::{Audit, AuditRow};
use polars::prelude::*;
use polars_io::parquet::write::ParquetWriter;

/// Rows written at a time: one row group each.
const BATCH_ROWS: usize = 1_000;

/// Writes the table to `to`, [`BATCH_ROWS`] rows at a time.
pub fn write(audit: &Audit, mut to: impl std::io::Write) -> PolarsResult<()> {
    let batch = |start: usize| frame(&audit.rows.range(start..(start + BATCH_ROWS).min(audit.rows.len())).collect::<Vec<_>>());
    let first = batch(0)?;
    let mut writer = ParquetWriter::new(&mut to).batched(first.schema())?;
    writer.write_batch(&first)?;
    for start in (BATCH_ROWS..audit.rows.len()).step_by(BATCH_ROWS) {
        writer.write_batch(&batch(start)?)?;
    }
    writer.finish().map(|_| ())
}

fn frame(rows: &[AuditRow]) -> PolarsResult<DataFrame> {
    let text = |name: &str, value: &dyn Fn(usize) -> Option<String>| Column::new(name.into(), (0..rows.len()).map(value).collect::<Vec<_>>());
    let list = |name: &str, values: Vec<&Vec<String>>| -> Column {
        let lists: ListChunked = values.into_iter().map(|v| Some(Series::new(PlSmallStr::EMPTY, v.as_slice()))).collect();
        lists.with_name(name.into()).into_column()
    };
    let count = |name: &str, value: &dyn Fn(usize) -> usize| Column::new(name.into(), (0..rows.len()).map(|i| value(i) as u64).collect::<Vec<_>>());
    DataFrame::new(
        rows.len(),
        vec![
            text("run", &|i| Some(rows[i].run.clone())),
            text("name", &|i| Some(rows[i].name.clone())),
            text("verdict", &|i| Some(rows[i].verdict.clone())),
            count("errors", &|i| rows[i].errors),
            count("warnings", &|i| rows[i].warnings),
            count("infos", &|i| rows[i].infos),
            list("rules", rows.iter().map(|r| &r.rules).collect()),
            Column::new("final_loss".into(), rows.iter().map(|r| r.final_loss).collect::<Vec<_>>()),
            Column::new("last_step".into(), rows.iter().map(|r| r.last_step).collect::<Vec<_>>()),
            Column::new("incomplete".into(), rows.iter().map(|r| r.incomplete).collect::<Vec<_>>()),
            text("report", &|i| rows[i].report.clone()),
            text("error", &|i| rows[i].error.clone()),
            list("input_warnings", rows.iter().map(|r| &r.input_warnings).collect()),
            text("hyperparameters", &|i| serde_json::to_string(&rows[i].hyperparameters).ok()),
            text("fingerprint", &|i| Some(rows[i].fingerprint.clone())),
        ],
    )
}
