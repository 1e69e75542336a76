//! `postmortem audit`: every run under an archive, analyzed in parallel, one
//! row each, with learning-rate sweeps recognized. A run that cannot be read
//! is listed with its error and the audit goes on.

use crate::analysis::{analyze_in, Analysis};
pub use crate::archive::{Audit, AuditRow, RowWriter, Sweep};
use crate::config::Config;
use crate::import::{self, ImportOptions, SourceFormat};
use crate::run::Run;
use crate::series;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The state file of `--changed` (and what `merge` reads of a part), kept
/// in the output folder: one JSON line per row, in no particular order.
pub const STATE_FILE: &str = ".postmortem-rows.jsonl";

/// A run found under the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    /// Relative to the archive, `/`-separated.
    pub relative: String,
    pub format: SourceFormat,
}

/// Finds every run of every supported format, each once (docs/IMPORT.md):
/// a run folder is not descended into, so one Hugging Face output folder is
/// one run and not one per checkpoint, and every bare `.safetensors` file or
/// log file outside runs is a run. Symbolic links are not followed, so links
/// out of the tree and link loops are harmless. Entries that cannot be read
/// are returned as errors.
pub fn discover(root: &Path) -> (Vec<Found>, Vec<(String, String)>) {
    let relative = |p: &Path| {
        p.strip_prefix(root).unwrap_or(p).components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
    };
    let import::Discovery { runs, errors } = import::discover(root, usize::MAX);
    let found = runs.into_iter().map(|(path, format)| Found { relative: relative(&path), path, format }).collect();
    (found, errors.into_iter().map(|(path, error)| (relative(&path), error)).collect())
}

/// A file-system-safe folder name for a run's report, unique among `taken`
/// (names kept as 64-bit hashes: 8 bytes a run of a large archive, not the names).
pub fn safe_name(relative: &str, taken: &mut std::collections::HashSet<u64>) -> String {
    let mut name: String = relative
        .chars()
        .map(|c| if c == '/' { '~' } else if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect::<String>()
        .replace('~', "__")
        .trim_start_matches('.')
        .chars()
        .take(100)
        .collect();
    if name.is_empty() {
        name = "run".into();
    }
    let mut candidate = name.clone();
    let mut n = 2;
    while !taken.insert(xxhash_rust::xxh3::xxh3_64(candidate.as_bytes())) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    candidate
}

/// A hash of the names, sizes and modification times of a run's files:
/// changes when any file does (16 hex digits, so that the summaries carry no
/// paths of the machine and a large archive's rows stay small).
pub fn fingerprint(path: &Path) -> (String, Option<SystemTime>) {
    let mut parts = Vec::new();
    let mut newest: Option<SystemTime> = None;
    for entry in walkdir::WalkDir::new(path).follow_links(false).sort_by_file_name().into_iter().flatten() {
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() {
                let modified = meta.modified().ok();
                newest = newest.max(modified);
                let nanos = modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
                parts.push(format!("{}:{}:{nanos}", entry.path().display(), meta.len()));
            }
        }
    }
    (format!("{:016x}", xxhash_rust::xxh3::xxh3_64(parts.join("|").as_bytes())), newest)
}

/// How runs are shared among the processes of a partitioned audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionBy {
    /// By a stable hash of the run's path under the archive: the same on
    /// every machine, and a run keeps its partition when others come and go.
    Hash,
    /// Contiguous shares of the runs in sorted order.
    Count,
}

/// The share `index` of `total` (1-based, as `--partition hash:K/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub by: PartitionBy,
    pub index: usize,
    pub total: usize,
}

impl PartitionBy {
    /// The name `--partition` gives it.
    fn name(self) -> &'static str {
        match self {
            PartitionBy::Hash => "hash",
            PartitionBy::Count => "count",
        }
    }
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("--partition {text:?}: expected hash:K/N or count:K/N with 1 <= K <= N");
        let (by, share) = text.split_once(':').ok_or_else(expected)?;
        let by = [PartitionBy::Hash, PartitionBy::Count].into_iter().find(|b| b.name() == by).ok_or_else(expected)?;
        let (index, total) = share.split_once('/').ok_or_else(expected)?;
        let (index, total) = (index.trim().parse::<usize>().map_err(|_| expected())?, total.trim().parse::<usize>().map_err(|_| expected())?);
        Partition { by, index, total }.checked().ok_or_else(expected)
    }
}

/// The most shares an audit is split into.
pub const MAX_PARTITIONS: usize = 100_000;

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.by.name(), self.index, self.total)
    }
}

impl Partition {
    /// The partition if its share is one of at most [`MAX_PARTITIONS`].
    fn checked(self) -> Option<Self> {
        (1..=self.total).contains(&self.index).then_some(self).filter(|p| p.total <= MAX_PARTITIONS)
    }

    /// Whether the run at `position` of `count` (in sorted order), at
    /// `relative` under the archive, is in this share.
    pub fn selects(&self, position: usize, count: usize, relative: &str) -> bool {
        let share = match self.by {
            PartitionBy::Hash => (xxhash_rust::xxh3::xxh3_64(relative.as_bytes()) % self.total as u64) as usize,
            // Shares differ in size by one at most.
            PartitionBy::Count => (position as u128 * self.total as u128 / count.max(1) as u128) as usize,
        };
        share == self.index - 1
    }
}

/// What the audit was asked to do.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub jobs: usize,
    pub progress: bool,
    /// Leave out runs with no file modified since then.
    pub since: Option<SystemTime>,
    /// Reuse the rows of runs unchanged since the last audit in the output folder.
    pub changed_only: bool,
    /// PNG copies of each report's plots.
    pub png: bool,
    /// Which runs get a report.
    pub reports: Reports,
    /// Only this share of the runs (a process of a partitioned audit).
    pub partition: Option<Partition>,
}

/// Which runs of an audit get a report of their own under `runs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Reports {
    /// Every run that could be read.
    All,
    /// Runs with at least one finding: what people auditing an archive
    /// open. Clean runs are a row of the index and the summaries.
    #[default]
    Findings,
    /// None: the index and the summaries only.
    None,
}

impl Reports {
    fn wants(self, analysis: &Analysis) -> bool {
        match self {
            Reports::All => true,
            Reports::Findings => !analysis.findings.is_empty(),
            Reports::None => false,
        }
    }
}

/// Where an audit reads runs: a local folder, or an object-store prefix
/// laid out locally ([`crate::store::Mirror`]).
pub trait Archive: Sync {
    /// The local folder runs are found under.
    fn root(&self) -> &Path;
    /// How the index names the archive.
    fn name(&self) -> String;
    /// See [`fingerprint`].
    fn fingerprint(&self, run: &Path) -> (String, Option<SystemTime>);
    /// Makes a run's files readable for as long as the returned guard lives.
    fn open(&self, run: &Path) -> Result<Box<dyn std::any::Any>, String>;
    /// Text that may name local paths of the archive, as the user knows them.
    fn shown(&self, text: &str) -> String;
    /// Entries of the archive that are not analyzed, and why.
    fn skipped(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A folder on this machine.
struct Folder<'a>(&'a Path);

impl Archive for Folder<'_> {
    fn root(&self) -> &Path {
        self.0
    }
    fn name(&self) -> String {
        self.0.display().to_string()
    }
    fn fingerprint(&self, run: &Path) -> (String, Option<SystemTime>) {
        fingerprint(run)
    }
    fn open(&self, _run: &Path) -> Result<Box<dyn std::any::Any>, String> {
        Ok(Box::new(()))
    }
    fn shown(&self, text: &str) -> String {
        text.to_string()
    }
}

impl Archive for crate::store::Mirror {
    fn root(&self) -> &Path {
        crate::store::Mirror::root(self)
    }
    fn name(&self) -> String {
        self.url().to_string()
    }
    fn fingerprint(&self, run: &Path) -> (String, Option<SystemTime>) {
        crate::store::Mirror::fingerprint(self, run)
    }
    fn open(&self, run: &Path) -> Result<Box<dyn std::any::Any>, String> {
        self.fetch(run).map(|f| Box::new(f) as Box<dyn std::any::Any>).map_err(|e| format!("could not be fetched: {e}"))
    }
    fn shown(&self, text: &str) -> String {
        crate::store::Mirror::shown(self, text)
    }
    fn skipped(&self) -> Vec<(String, String)> {
        self.skipped.clone()
    }
}

/// Audits a folder on this machine.
pub fn run(root: &Path, out: &Path, config: &Config, options: &AuditOptions) -> Result<Audit, std::io::Error> {
    std::fs::read_dir(root)?;
    run_archive(&Folder(root), out, config, options)
}

/// Audits an archive wherever it is.
pub fn run_archive(archive: &dyn Archive, out: &Path, config: &Config, options: &AuditOptions) -> Result<Audit, std::io::Error> {
    let root = archive.root();
    let (found, mut walk_errors) = discover(root);
    walk_errors.extend(archive.skipped());
    let previous = if options.changed_only { Previous::read(&out.join(STATE_FILE)) } else { Previous::default() };
    // Report folders are named over every run of the archive, whichever
    // share this process audits, so that the parts of a partitioned audit
    // merge into what one process would have written.
    let mut taken = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    let mut left_out = 0;
    let count = found.len();
    let selected = |position: usize, relative: &str| options.partition.is_none_or(|p| p.selects(position, count, relative));
    for (position, f) in found.into_iter().enumerate() {
        let mine = selected(position, &f.relative);
        if let Some(since) = options.since {
            if archive.fingerprint(&f.path).1.is_none_or(|newest| newest < since) {
                left_out += usize::from(mine);
                continue;
            }
        }
        let folder = safe_name(&f.relative, &mut taken);
        if mine {
            jobs.push((f, folder));
        }
    }
    drop(taken);
    let bar = ProgressBar::with_draw_target(Some(jobs.len() as u64), if options.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed} {wide_msg}") {
        bar.set_style(style);
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.max(1)).build().map_err(std::io::Error::other)?;
    let reused = std::sync::atomic::AtomicUsize::new(0);
    // Each row goes to the spool as it is made; it becomes the state file.
    let rows = RowWriter::create(&out.join(SPOOL_FILE))?;
    pool.install(|| {
        jobs.par_iter().try_for_each(|(found, folder)| {
            // Taken here, on the workers: for an archive in object storage
            // it is a listing's worth of metadata, and it is not kept.
            let print = archive.fingerprint(&found.path).0;
            let row = match previous.get(&found.relative) {
                Some(old) if old.fingerprint == print && old.report.as_ref().is_none_or(|r| out.join(r).is_file()) => {
                    reused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    old
                }
                _ => audit_one(archive, found, folder, &print, out, config, options),
            };
            bar.inc(1);
            rows.push(&row)
        })
    })?;
    bar.finish_and_clear();
    // A folder that could not be read belongs to the share its path hashes to.
    let hashed = options.partition.map(|p| Partition { by: PartitionBy::Hash, ..p });
    for (at, error) in walk_errors {
        if hashed.is_none_or(|p| p.selects(0, 1, &at)) {
            rows.push(&AuditRow::unreadable(&at, error))?;
        }
    }
    let (rows, sweeps) = rows.finish()?;
    Ok(Audit { archive: archive.name(), rows, sweeps, left_out, reused: reused.into_inner() })
}

/// Where the rows of an audit are spooled while it runs; renamed to
/// [`STATE_FILE`] when its output is written.
pub const SPOOL_FILE: &str = ".postmortem-rows.jsonl.new";

/// The rows of the previous audit into the same folder (`--changed`): where
/// each run's line is in the state file, read when it is needed.
#[derive(Default)]
struct Previous {
    file: Option<std::fs::File>,
    lines: BTreeMap<Box<str>, (u64, usize)>,
}

impl Previous {
    /// The state file's lines, by run; a file that cannot be read (or of an
    /// earlier version) is no previous audit.
    fn read(path: &Path) -> Previous {
        use std::io::BufRead;
        let Ok(file) = std::fs::File::open(path) else { return Previous::default() };
        let mut lines = BTreeMap::new();
        let mut reader = std::io::BufReader::new(&file);
        let (mut at, mut line) = (0u64, Vec::new());
        #[derive(Deserialize)]
        struct Run {
            run: String,
        }
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if let Ok(row) = serde_json::from_slice::<Run>(&line) {
                lines.insert(row.run.into_boxed_str(), (at, line.len()));
            }
            at += line.len() as u64;
            line.clear();
        }
        Previous { file: Some(file), lines }
    }

    fn get(&self, run: &str) -> Option<AuditRow> {
        let (&(at, len), file) = (self.lines.get(run)?, self.file.as_ref()?);
        let mut text = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut text, at).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// The file a partitioned audit writes beside its rows: which share it is.
pub const PART_FILE: &str = "part.json";

/// What [`PART_FILE`] holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub archive: String,
    pub partition: Partition,
    pub left_out: usize,
    pub reused: usize,
}

/// How the parts given to [`merge`] cover the partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub total: usize,
    /// Shares no part covers (1-based).
    pub missing: Vec<usize>,
    /// Shares given more than once; the first is used.
    pub duplicated: Vec<usize>,
}

/// Why parts could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not the output of `postmortem audit --partition` ({message})", path.display())]
    NotAPart { path: PathBuf, message: String },
    #[error("the parts come from different audits: {0}")]
    Mismatch(String),
}

/// Merges the outputs of a partitioned audit into `out`: every part's rows
/// and run reports, controls and sweeps found over all of them. Missing and
/// duplicated shares are reported, not fatal.
pub fn merge(parts: &[PathBuf], out: &Path) -> Result<(Audit, Coverage), MergeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut first: Option<Part> = None;
    let mut coverage = Coverage::default();
    let (mut left_out, mut reused) = (0, 0);
    let rows = RowWriter::create(&out.join(SPOOL_FILE)).map_err(io(&out.join(SPOOL_FILE)))?;
    for dir in parts {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| MergeError::NotAPart { path: dir.clone(), message: format!("{name}: {e}") });
        let part: Part = serde_json::from_slice(&read(PART_FILE)?).map_err(|e| MergeError::NotAPart { path: dir.clone(), message: format!("{PART_FILE}: {e}") })?;
        if part.partition.checked().is_none() {
            return Err(MergeError::NotAPart { path: dir.clone(), message: format!("{PART_FILE}: no share {} of {}", part.partition.index, part.partition.total) });
        }
        let base = first.get_or_insert_with(|| part.clone());
        if (base.archive.as_str(), base.partition.by, base.partition.total) != (part.archive.as_str(), part.partition.by, part.partition.total) {
            return Err(MergeError::Mismatch(format!("{} is {} of {}, {} is {} of {}", parts[0].display(), base.partition, base.archive, dir.display(), part.partition, part.archive)));
        }
        if !seen.insert(part.partition.index) {
            coverage.duplicated.push(part.partition.index);
            continue;
        }
        // Row by row: a part of a large archive is not held in memory.
        let state = std::fs::File::open(dir.join(STATE_FILE)).map_err(|e| MergeError::NotAPart { path: dir.clone(), message: format!("{STATE_FILE}: {e}") })?;
        for (n, line) in std::io::BufRead::lines(std::io::BufReader::new(state)).enumerate() {
            let not_a_part = |e: &dyn std::fmt::Display| MergeError::NotAPart { path: dir.clone(), message: format!("{STATE_FILE}, line {}: {e}", n + 1) };
            let row: AuditRow = serde_json::from_str(&line.map_err(|e| not_a_part(&e))?).map_err(|e| not_a_part(&e))?;
            if let Some(folder) = row.report.as_deref().and_then(|r| Path::new(r).parent()).filter(|f| is_report_folder(f)) {
                copy_dir(&dir.join(folder), &out.join(folder)).map_err(io(&dir.join(folder)))?;
            }
            rows.push(&row).map_err(io(&out.join(SPOOL_FILE)))?;
        }
        left_out += part.left_out;
        reused += part.reused;
    }
    let Some(base) = first else { return Err(MergeError::Mismatch("no part given".into())) };
    coverage.total = base.partition.total;
    coverage.missing = (1..=base.partition.total).filter(|i| !seen.contains(i)).collect();
    coverage.duplicated.dedup();
    let (rows, sweeps) = rows.finish().map_err(io(&out.join(SPOOL_FILE)))?;
    Ok((Audit { archive: base.archive, rows, sweeps, left_out, reused }, coverage))
}

/// The folder of the run reports in an audit's output.
pub const RUNS_DIR: &str = "runs";

/// Whether a path is a run's own report folder, `runs/<name>`, as one
/// process names it: a part's row cannot point the copy anywhere else.
fn is_report_folder(folder: &Path) -> bool {
    use std::path::Component::Normal;
    let parts: Vec<std::path::Component> = folder.components().collect();
    matches!(parts.as_slice(), [Normal(runs), Normal(_)] if *runs == RUNS_DIR)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let target = to.join(entry.path().strip_prefix(from).map_err(std::io::Error::other)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if entry.file_type().is_file() {
            // A hard link where the parts share a file system: a merge of a
            // large archive then costs no second copy of its reports.
            if std::fs::hard_link(entry.path(), &target).is_err() {
                std::fs::copy(entry.path(), &target)?;
            }
        }
    }
    Ok(())
}

/// Analyzes one run and writes its report; any failure becomes the row's error.
fn audit_one(archive: &dyn Archive, found: &Found, folder: &str, print: &str, out: &Path, config: &Config, options: &AuditOptions) -> AuditRow {
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<AuditRow, String> {
        let _files = archive.open(&found.path)?;
        let run = import::load(&found.path, &ImportOptions { from: Some(found.format), rename: config.metrics.clone(), histogram_tags: config.histograms.clone(), ..Default::default() })
            .map_err(|e| archive.shown(&e.to_string()))?;
        let ctx = crate::context::Context::new(&run);
        let mut analysis = analyze_in(&ctx, config);
        analysis.show_paths(|text| archive.shown(text));
        let mut row = row_of(found, folder, print, &run, &analysis);
        if options.reports.wants(&analysis) {
            let report_dir = out.join(RUNS_DIR).join(folder);
            crate::report::write_with(&ctx, &analysis, &report_dir, crate::report::ReportKind::InAudit { png: options.png }).map_err(|e| e.to_string())?;
        } else {
            row.report = None;
        }
        Ok(row)
    }));
    let error = match attempt {
        Ok(Ok(row)) => return row,
        Ok(Err(error)) => error,
        Err(_) => "the analysis failed unexpectedly (a bug in postmortem)".into(),
    };
    AuditRow { fingerprint: print.to_string(), ..AuditRow::unreadable(&found.relative, error) }
}

fn row_of(found: &Found, folder: &str, print: &str, run: &Run, analysis: &Analysis) -> AuditRow {
    let mut rules: Vec<String> = analysis.findings.iter().map(|f| f.rule.to_string()).collect();
    rules.dedup();
    let loss = series::finite(&run.metrics.series("loss").unwrap_or_default());
    let hyperparameters = run
        .meta
        .hyperparameters
        .as_ref()
        .and_then(|h| serde_json::to_value(h).ok())
        .and_then(|v| v.as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    AuditRow {
        run: found.relative.clone(),
        name: run.name(),
        verdict: analysis.verdict.status.to_string(),
        errors: analysis.verdict.errors,
        warnings: analysis.verdict.warnings,
        infos: analysis.verdict.infos,
        rules,
        final_loss: loss.last().map(|p| p.1),
        last_step: run.metrics.steps().last().copied(),
        incomplete: analysis.verdict.incomplete,
        report: Some(format!("{RUNS_DIR}/{folder}/report.html")),
        error: None,
        input_warnings: analysis.warnings.iter().map(|w| w.to_string()).collect(),
        hyperparameters,
        fingerprint: print.to_string(),
        standard_dataset: run.meta.dataset.as_ref().and_then(|d| d.standard),
        controls: Vec::new(),
    }
}

/// `YYYY-MM-DD` (UTC midnight) as a time.
pub fn parse_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.trim().splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days since 1970-01-01 for a proleptic Gregorian date.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_unique_and_plain() {
        let mut taken = Default::default();
        assert_eq!(safe_name("a/b c/run-1", &mut taken), "a__b_c__run-1");
        assert_eq!(safe_name("a/b c/run-1", &mut taken), "a__b_c__run-1-2");
        assert_eq!(safe_name("../../etc", &mut taken), "__..__etc");
        assert_eq!(safe_name("", &mut taken), "run");
        assert!(!safe_name(&"x".repeat(500), &mut taken).contains('/'));
    }

    #[test]
    fn partitions_share_every_run_once() {
        assert_eq!("hash:2/4".parse::<Partition>(), Ok(Partition { by: PartitionBy::Hash, index: 2, total: 4 }));
        assert_eq!("count:1/1".parse::<Partition>().unwrap().to_string(), "count:1/1");
        for bad in ["hash:0/4", "hash:5/4", "hash:1", "shard:1/2", "count:a/2", "count:1/0", "count:1/18446744073709551615"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        let runs: Vec<String> = (0..103).map(|i| format!("team/run-{i}")).collect();
        for by in [PartitionBy::Hash, PartitionBy::Count] {
            let shares: Vec<Vec<usize>> = (1..=4)
                .map(|index| {
                    let p = Partition { by, index, total: 4 };
                    (0..runs.len()).filter(|&i| p.selects(i, runs.len(), &runs[i])).collect()
                })
                .collect();
            let mut all: Vec<usize> = shares.concat();
            all.sort();
            assert_eq!(all, (0..runs.len()).collect::<Vec<_>>(), "{by:?}");
            assert!(shares.iter().all(|s| s.len() >= 15), "{by:?}: {:?}", shares.iter().map(Vec::len).collect::<Vec<_>>());
        }
        // Contiguous, and within one of each other in size.
        let first = Partition { by: PartitionBy::Count, index: 1, total: 4 };
        assert_eq!((0..103).filter(|&i| first.selects(i, 103, "")).collect::<Vec<_>>(), (0..26).collect::<Vec<_>>());
    }

    #[test]
    fn dates() {
        let day = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() / 86_400;
        assert_eq!(day(parse_date("1970-01-01").unwrap()), 0);
        assert_eq!(day(parse_date("2000-03-01").unwrap()), 11_017);
        assert_eq!(day(parse_date("2026-11-27").unwrap()), 20_784);
        assert!(parse_date("2026-13-01").is_none() && parse_date("yesterday").is_none());
    }
}
