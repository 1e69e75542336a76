//! What an audit concluded about an archive: one row per run and the sweeps
//! among them. Plain data, written by [`crate::audit`] and rendered by the
//! exporters (`index.html`, `summary.csv`, `summary.json`, `summary.parquet`).
//!
//! Rows are kept as JSON lines in a spool file, not in memory, so that an
//! audit's memory does not grow with its rows: only each row's run path,
//! place in the spool and verdict stay, about 100 bytes a run.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One run of the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Path under the archive, `/`-separated.
    pub run: String,
    pub name: String,
    /// `clean`, `info`, `warning`, `error`, or `unreadable`.
    pub verdict: String,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    /// Rules that fired, in checklist order.
    pub rules: Vec<String>,
    pub final_loss: Option<f64>,
    pub last_step: Option<u64>,
    pub incomplete: bool,
    /// The run's report, relative to the output folder.
    pub report: Option<String>,
    /// Why the run could not be analyzed.
    pub error: Option<String>,
    /// What was wrong with the run's files but did not stop its analysis
    /// (files left out, lines and fields skipped).
    #[serde(default)]
    pub input_warnings: Vec<String>,
    /// `run.json` hyperparameters, for sweeps.
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    /// Sizes and modification times of the run's files (`--changed`).
    #[serde(default)]
    pub fingerprint: String,
    /// `dataset.standard` of the run.
    #[serde(default)]
    pub standard_dataset: Option<bool>,
    /// For a run told to train a control on a standard corpus: sibling runs
    /// (same folder) that are such a control.
    #[serde(default)]
    pub controls: Vec<String>,
}

/// Everything the audit found, for the exporters.
#[derive(Debug)]
pub struct Audit {
    pub archive: String,
    pub rows: Rows,
    pub sweeps: Vec<Sweep>,
    /// Runs left out by `--since`.
    pub left_out: usize,
    /// Runs whose previous row was reused (`--changed`).
    pub reused: usize,
}

impl Audit {
    /// Runs per verdict, in a fixed order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        VERDICTS.into_iter().map(|v| (v, self.rows.keys.iter().filter(|k| VERDICTS.get(usize::from(k.verdict)) == Some(&v)).count())).collect()
    }
}

/// Verdicts, least severe first.
pub const VERDICTS: [&str; 5] = ["clean", "info", "warning", "error", "unreadable"];

/// What stays in memory of a row.
#[derive(Debug, Clone)]
struct RowKey {
    run: Box<str>,
    /// Its JSON line in the spool.
    at: u64,
    len: u32,
    /// Index into [`VERDICTS`].
    verdict: u8,
    /// Trained on a standard corpus and readable: a control for its siblings.
    control: bool,
    /// no-standard-baseline fired: its row lists the controls beside it.
    wants_control: bool,
}

/// Where the rows' JSON lines are.
#[derive(Debug)]
enum Spool {
    Memory(Vec<u8>),
    File { file: std::fs::File, path: PathBuf },
}

/// Rows in run order, read from the spool one at a time.
#[derive(Debug)]
pub struct Rows {
    spool: Spool,
    keys: Vec<RowKey>,
    /// Runs that are controls, by folder.
    controls: BTreeMap<String, Vec<usize>>,
    /// Every rule that fired on some run, sorted.
    rules: Vec<String>,
}

/// The folder a run sits in, under the archive.
pub fn parent(run: &str) -> &str {
    run.rsplit_once('/').map_or("", |(folder, _)| folder)
}

impl Rows {
    /// Rows held in memory (small audits made by hand, tests).
    pub fn from_rows(rows: impl IntoIterator<Item = AuditRow>) -> Rows {
        let writer = RowWriter::new(SpoolWriter::Memory(Vec::new()));
        for row in rows {
            // Writing to memory does not fail.
            let _ = writer.push(&row);
        }
        writer.finish().map(|(rows, _)| rows).unwrap_or_else(|_| Rows { spool: Spool::Memory(Vec::new()), keys: Vec::new(), controls: BTreeMap::new(), rules: Vec::new() })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every rule that fired on some run, sorted.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    /// The run path of row `i`.
    pub fn run(&self, i: usize) -> &str {
        &self.keys[i].run
    }

    /// The spool file, where there is one (it becomes the state file).
    pub fn spool_path(&self) -> Option<&Path> {
        match &self.spool {
            Spool::File { path, .. } => Some(path),
            Spool::Memory(_) => None,
        }
    }

    /// Row `i`, with the controls beside it. A spool that cannot be read
    /// back (the disk failed under the audit) gives an unreadable row that
    /// says so.
    pub fn get(&self, i: usize) -> AuditRow {
        let key = &self.keys[i];
        let mut text = vec![0u8; key.len as usize];
        let read = match &self.spool {
            Spool::Memory(bytes) => bytes.get(key.at as usize..key.at as usize + text.len()).map(|b| text.copy_from_slice(b)).ok_or_else(|| std::io::Error::other("out of range")),
            Spool::File { file, .. } => std::os::unix::fs::FileExt::read_exact_at(file, &mut text, key.at),
        };
        let row = read.map_err(|e| e.to_string()).and_then(|()| serde_json::from_slice::<AuditRow>(&text).map_err(|e| e.to_string()));
        let mut row = row.unwrap_or_else(|e| AuditRow::unreadable(&key.run, format!("the audit's row could not be read back from its spool: {e}")));
        if key.wants_control {
            let siblings = self.controls.get(parent(&key.run)).map(Vec::as_slice).unwrap_or_default();
            row.controls = siblings.iter().filter(|&&j| j != i).map(|&j| self.keys[j].run.to_string()).collect();
        }
        row
    }

    /// Rows `range` in run order.
    pub fn range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = AuditRow> + '_ {
        range.map(|i| self.get(i))
    }

    /// Every row in run order.
    pub fn iter(&self) -> impl Iterator<Item = AuditRow> + '_ {
        self.range(0..self.len())
    }
}

impl AuditRow {
    /// The row of a run that could not be analyzed.
    pub fn unreadable(run: &str, error: String) -> AuditRow {
        AuditRow {
            run: run.to_string(),
            name: run.to_string(),
            verdict: "unreadable".into(),
            errors: 0,
            warnings: 0,
            infos: 0,
            rules: Vec::new(),
            final_loss: None,
            last_step: None,
            incomplete: false,
            report: None,
            error: Some(error),
            input_warnings: Vec::new(),
            hyperparameters: BTreeMap::new(),
            fingerprint: String::new(),
            standard_dataset: None,
            controls: Vec::new(),
        }
    }
}

enum SpoolWriter {
    Memory(Vec<u8>),
    File { out: std::io::BufWriter<std::fs::File>, path: PathBuf },
}

/// Rows as they are made, from any thread: each is appended to the spool
/// at once, and [`RowWriter::finish`] sorts what stays in memory and finds
/// the sweeps.
pub struct RowWriter {
    spool: Mutex<(SpoolWriter, u64)>,
    keys: Mutex<Vec<RowKey>>,
    sweep_facts: Mutex<SweepFacts>,
    rules: Mutex<std::collections::BTreeSet<String>>,
}

impl RowWriter {
    fn new(spool: SpoolWriter) -> RowWriter {
        RowWriter { spool: Mutex::new((spool, 0)), keys: Mutex::default(), sweep_facts: Mutex::default(), rules: Mutex::default() }
    }

    /// A writer whose spool is a new file at `path` (replaced if there).
    pub fn create(path: &Path) -> std::io::Result<RowWriter> {
        let file = std::fs::File::create(path)?;
        Ok(RowWriter::new(SpoolWriter::File { out: std::io::BufWriter::new(file), path: path.to_path_buf() }))
    }

    pub fn push(&self, row: &AuditRow) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(row).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let at = {
            let mut spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
            let at = spool.1;
            match &mut spool.0 {
                SpoolWriter::Memory(bytes) => bytes.extend_from_slice(&line),
                SpoolWriter::File { out, .. } => out.write_all(&line)?,
            }
            spool.1 += line.len() as u64;
            at
        };
        let key = RowKey {
            run: row.run.as_str().into(),
            at,
            len: (line.len() - 1) as u32,
            verdict: VERDICTS.iter().position(|v| *v == row.verdict).unwrap_or(VERDICTS.len() - 1) as u8,
            control: row.standard_dataset == Some(true) && row.error.is_none(),
            wants_control: row.rules.iter().any(|r| r == "no-standard-baseline"),
        };
        let index = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.push(key);
            keys.len() - 1
        };
        self.sweep_facts.lock().unwrap_or_else(|e| e.into_inner()).add(index as u32, row);
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for rule in &row.rules {
            if !rules.contains(rule) {
                rules.insert(rule.clone());
            }
        }
        Ok(())
    }

    /// The rows in run order, and the sweeps among them.
    pub fn finish(self) -> std::io::Result<(Rows, Vec<Sweep>)> {
        let (spool, _) = self.spool.into_inner().unwrap_or_else(|e| e.into_inner());
        let spool = match spool {
            SpoolWriter::Memory(bytes) => Spool::Memory(bytes),
            SpoolWriter::File { out, path } => {
                out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
                Spool::File { file: std::fs::File::open(&path)?, path }
            }
        };
        // Sorted by run; `place[i]` is where the i-th pushed row went.
        let mut pushed: Vec<(u32, RowKey)> = self.keys.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().zip(0..).map(|(k, i)| (i, k)).collect();
        pushed.sort_by(|a, b| a.1.run.cmp(&b.1.run));
        let mut place = vec![0u32; pushed.len()];
        for (to, (from, _)) in pushed.iter().enumerate() {
            place[*from as usize] = to as u32;
        }
        let keys: Vec<RowKey> = pushed.into_iter().map(|(_, k)| k).collect();
        let mut controls: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate().filter(|(_, k)| k.control) {
            controls.entry(parent(&key.run).to_string()).or_default().push(i);
        }
        let rules = self.rules.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().collect();
        let rows = Rows { spool, keys, controls, rules };
        let sweeps = self.sweep_facts.into_inner().unwrap_or_else(|e| e.into_inner()).sweeps(&rows, &place);
        Ok((rows, sweeps))
    }
}

/// One numeric hyperparameter of one row.
struct Member {
    /// Number of the name in [`SweepFacts::parameters`].
    parameter: u32,
    /// A hash of all the row's other hyperparameters.
    rest: u64,
    value: f64,
    /// The row, in push order.
    row: u32,
}

/// For each numeric hyperparameter of each row: which parameter, a hash of
/// all the row's other hyperparameters, the value, and the row. Sorting
/// these groups rows that share all hyperparameters but one: 24 bytes per
/// row and parameter, whatever the hyperparameters hold.
#[derive(Default)]
struct SweepFacts {
    /// Parameter names, numbered as they are first seen.
    parameters: std::collections::HashMap<String, u32>,
    members: Vec<Member>,
    /// Per pushed row: final loss, and whether it diverged.
    outcomes: Vec<(Option<f64>, bool)>,
}

impl SweepFacts {
    fn add(&mut self, row_index: u32, row: &AuditRow) {
        let index = row_index as usize;
        if self.outcomes.len() <= index {
            self.outcomes.resize(index + 1, (None, false));
        }
        self.outcomes[index] = (row.final_loss, row.rules.iter().any(|x| x == "loss-diverging" || x == "nonfinite-values"));
        // The hash of "all hyperparameters but one" for every one at once:
        // a sum of each pair's hash, less that pair's (order does not matter,
        // and a row of k hyperparameters costs k hashes, not k maps).
        let pairs: Vec<u64> = row
            .hyperparameters
            .iter()
            .map(|(key, value)| xxhash_rust::xxh3::xxh3_64(format!("{key}\0{value}").as_bytes()))
            .collect();
        let all = pairs.iter().fold(0u64, |sum, h| sum.wrapping_add(*h));
        for ((key, value), pair) in row.hyperparameters.iter().zip(&pairs) {
            let Some(value) = value.as_f64() else { continue };
            let next = self.parameters.len() as u32;
            let parameter = *self.parameters.entry(key.clone()).or_insert(next);
            self.members.push(Member { parameter, rest: all.wrapping_sub(*pair), value, row: row_index });
        }
    }

    /// Groups of three or more distinct values, by parameter name, then by
    /// the runs' order.
    fn sweeps(mut self, rows: &Rows, place: &[u32]) -> Vec<Sweep> {
        let mut names = vec![String::new(); self.parameters.len()];
        for (name, n) in std::mem::take(&mut self.parameters) {
            names[n as usize] = name;
        }
        let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
        by_name.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0u32; names.len()];
        for (r, &p) in by_name.iter().enumerate() {
            rank[p as usize] = r as u32;
        }
        self.members.sort_by_key(|m| (rank[m.parameter as usize], m.rest, place[m.row as usize]));
        // Groups of three or more distinct values; those of one parameter
        // in the order of their first run.
        let mut groups: Vec<(&[Member], (u32, u32))> = Vec::new();
        for group in self.members.chunk_by(|a, b| a.parameter == b.parameter && a.rest == b.rest) {
            let mut values: Vec<f64> = group.iter().map(|m| m.value).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            if values.len() >= 3 {
                let first = group.iter().map(|m| place[m.row as usize]).min().unwrap_or(0);
                groups.push((group, (rank[group[0].parameter as usize], first)));
            }
        }
        groups.sort_by_key(|g| g.1);
        groups
            .into_iter()
            .map(|(group, _)| {
                let run = |m: &Member| rows.run(place[m.row as usize] as usize).to_string();
                let mut points: Vec<(f64, Option<f64>, String)> = group.iter().map(|m| (m.value, self.outcomes[m.row as usize].0, run(m))).collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
                let diverged: Vec<String> = group.iter().filter(|m| self.outcomes[m.row as usize].1).map(run).collect();
                let best = points
                    .iter()
                    .filter(|p| !diverged.contains(&p.2))
                    .filter_map(|p| Some((p.1.filter(|l| l.is_finite())?, &p.2)))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, run)| run.clone());
                Sweep { parameter: names[group[0].parameter as usize].clone(), points, best, diverged }
            })
            .collect()
    }
}

/// Runs that share every hyperparameter but one numeric one.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub parameter: String,
    /// `(value, final loss, run)` in increasing value.
    pub points: Vec<(f64, Option<f64>, String)>,
    pub best: Option<String>,
    /// Runs of the sweep whose loss diverged or became non-finite.
    pub diverged: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, lr: f64, loss: f64) -> AuditRow {
        AuditRow {
            verdict: "clean".into(),
            error: None,
            final_loss: Some(loss),
            hyperparameters: [("lr".to_string(), lr.into()), ("batch".to_string(), 32.into())].into(),
            ..AuditRow::unreadable(run, String::new())
        }
    }

    /// Rows come back from the spool in run order, whatever order they were
    /// made in, with controls linked and sweeps found among them.
    #[test]
    fn rows_round_trip_through_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let writer = RowWriter::create(&dir.path().join("rows.jsonl")).unwrap();
        let other_batch = |mut r: AuditRow| {
            r.hyperparameters.insert("batch".into(), 64.into());
            r
        };
        let mut control = other_batch(row("b/mnist", 0.5, 0.2));
        control.standard_dataset = Some(true);
        let mut asks = other_batch(row("b/mine", 0.5, 0.9));
        asks.rules = vec!["no-standard-baseline".into()];
        asks.verdict = "info".into();
        let mut diverged = row("a/lr-3", 3.0, f64::NAN);
        diverged.rules = vec!["loss-diverging".into()];
        diverged.verdict = "error".into();
        for r in [row("a/lr-2", 0.3, 0.4), diverged, asks, row("a/lr-1", 0.03, 0.6), control, row("a/lr-0", 0.003, 0.9)] {
            writer.push(&r).unwrap();
        }
        let (rows, sweeps) = writer.finish().unwrap();
        let runs: Vec<String> = rows.iter().map(|r| r.run).collect();
        assert_eq!(runs, ["a/lr-0", "a/lr-1", "a/lr-2", "a/lr-3", "b/mine", "b/mnist"]);
        assert_eq!(rows.get(4).controls, ["b/mnist"]);
        assert!(rows.get(5).controls.is_empty());
        assert_eq!(rows.rules(), ["loss-diverging", "no-standard-baseline"]);
        // b/ trains with another batch size: one sweep, of a/'s four runs.
        assert_eq!(sweeps.len(), 1, "{sweeps:?}");
        let sweep = &sweeps[0];
        assert_eq!(sweep.parameter, "lr");
        assert_eq!(sweep.points.iter().map(|p| p.2.as_str()).collect::<Vec<_>>(), ["a/lr-0", "a/lr-1", "a/lr-2", "a/lr-3"]);
        assert_eq!(sweep.diverged, ["a/lr-3"]);
        assert_eq!(sweep.best.as_deref(), Some("a/lr-2"));
        let audit = Audit { archive: String::new(), rows, sweeps, left_out: 0, reused: 0 };
        assert_eq!(audit.counts(), [("clean", 4), ("info", 1), ("warning", 0), ("error", 1), ("unreadable", 0)]);
    }
}
