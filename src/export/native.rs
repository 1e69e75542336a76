//! A run in postmortem's own format (docs/FORMAT.md), whatever it was read
//! from: what `postmortem convert` writes. Pure: the texts of `run.json`,
//! `metrics.jsonl` and `tensors.jsonl`, and which checkpoint files to copy
//! under which name.

use crate::run::Run;
use postmortem_recorder::format::{checkpoint_file_name, METRICS_FILE, RUN_FILE, TENSORS_FILE};
use postmortem_recorder::Metrics;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The files of a native run.
#[derive(Debug, Default)]
pub struct NativeFiles {
    /// `(file name, text)`.
    pub texts: Vec<(&'static str, String)>,
    /// `(source file, name under checkpoints/)`.
    pub checkpoints: Vec<(PathBuf, String)>,
    /// Checkpoints not written, and why.
    pub left_out: Vec<String>,
}

pub fn render(run: &Run) -> Result<NativeFiles, serde_json::Error> {
    let mut files = NativeFiles::default();
    files.texts.push((RUN_FILE, serde_json::to_string_pretty(&run.meta)? + "\n"));
    // One line per step, with every metric recorded at it.
    let mut rows: BTreeMap<u64, Metrics> = BTreeMap::new();
    for name in run.metrics.names() {
        for (step, value) in run.metrics.series(&name).unwrap_or_default() {
            let row = rows.entry(step).or_default();
            *row = std::mem::take(row).scalar(name.clone(), value);
        }
    }
    for (name, points) in &run.metrics.counts {
        for (step, counts) in points {
            let row = rows.entry(*step).or_default();
            *row = std::mem::take(row).counts(name.clone(), counts.clone());
        }
    }
    // A step of the table with no value at all still is a row.
    for step in run.metrics.steps() {
        rows.entry(*step).or_default();
    }
    let mut metrics = String::new();
    for (step, row) in &rows {
        metrics.push_str(&row.to_line(*step));
    }
    files.texts.push((METRICS_FILE, metrics));
    if !run.tensors.is_empty() {
        let mut tensors = String::new();
        for record in &run.tensors {
            tensors.push_str(&serde_json::to_string(record)?);
            tensors.push('\n');
        }
        files.texts.push((TENSORS_FILE, tensors));
    }
    for checkpoint in &run.checkpoints {
        match checkpoint.step {
            // The format's checkpoint is one file; shards would have to be merged.
            Some(_) if checkpoint.tensors.iter().any(|t| t.shard.is_some()) => {
                files.left_out.push(format!("{}: sharded weights are not merged into one file", checkpoint.path.display()))
            }
            Some(step) => files.checkpoints.push((checkpoint.path.clone(), checkpoint_file_name(step))),
            None => files.left_out.push(format!("{}: its step is unknown", checkpoint.path.display())),
        }
    }
    Ok(files)
}
