//! The logs other tools write, read into the same in-memory [`Run`] as the
//! native loader builds, so that rules, reports and audits never care where a
//! run came from. One file per format; docs/IMPORT.md says what each reads,
//! how names map and what is lost.
//!
//! Nothing here writes, and nothing is unpickled: files that only a pickle
//! loader could read are named in a warning and left alone.

pub mod dvclive;
pub mod hf_trainer;
pub mod json_lines;
mod histogram;
pub mod keras_csv;
pub mod lightning_csv;
pub mod log_lines;
pub mod mlflow;
pub mod names;
pub mod tensorboard;
pub mod text_log;
pub mod wandb;

pub use histogram::HistogramTags;

use crate::error::{LoadError, Warning};
use crate::run::metrics::MetricsTable;
use crate::run::Run;
use postmortem_recorder::format::{METRICS_FILE, RUN_FILE};
use postmortem_recorder::{Framework, Hyperparameters, RunMeta};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The formats postmortem reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// postmortem's own run format (docs/FORMAT.md).
    Native,
    /// A Hugging Face `Trainer` output folder, `checkpoint-N/` folder or `trainer_state.json`.
    HfTrainer,
    /// Lightning's `CSVLogger` (`metrics.csv`, with `hparams.yaml` beside it).
    LightningCsv,
    /// Keras' `CSVLogger`, or a `History` exported as CSV.
    KerasCsv,
    /// An MLflow file-store run folder (`meta.yaml`, `metrics/`, `params/`, `tags/`).
    Mlflow,
    /// A training script's printed log (nanoGPT, llm.c, Keras progress lines, `key=value` lines).
    TextLog,
    /// TensorBoard event files (`events.out.tfevents.*`), a folder of them or one.
    Tensorboard,
    /// A W&B run folder (`wandb/run-*/`, `wandb/offline-run-*/`) or its `run-<id>.wandb` log.
    Wandb,
    /// DVCLive's output folder (`dvclive/plots/metrics/**.tsv`).
    Dvclive,
    /// A JSON-lines file of metrics (detectron2's `metrics.json`, MMEngine's
    /// `scalars.json`, a loop's own `*.jsonl`).
    JsonLines,
}

impl SourceFormat {
    /// The name `--from` takes.
    pub fn id(self) -> &'static str {
        match self {
            SourceFormat::Native => "native",
            SourceFormat::HfTrainer => "hf-trainer",
            SourceFormat::LightningCsv => "lightning-csv",
            SourceFormat::KerasCsv => "keras-csv",
            SourceFormat::Mlflow => "mlflow",
            SourceFormat::TextLog => "text-log",
            SourceFormat::Tensorboard => "tensorboard",
            SourceFormat::Wandb => "wandb",
            SourceFormat::JsonLines => "json-lines",
            SourceFormat::Dvclive => "dvclive",
        }
    }

    /// The tool, in a user's words.
    pub fn tool(self) -> &'static str {
        match self {
            SourceFormat::Native => "postmortem",
            SourceFormat::HfTrainer => "Hugging Face Trainer",
            SourceFormat::LightningCsv => "Lightning CSVLogger",
            SourceFormat::KerasCsv => "Keras CSVLogger",
            SourceFormat::Mlflow => "MLflow",
            SourceFormat::TextLog => "text log",
            SourceFormat::Tensorboard => "TensorBoard",
            SourceFormat::Wandb => "W&B",
            SourceFormat::JsonLines => "JSON lines",
            SourceFormat::Dvclive => "DVCLive",
        }
    }
}

/// How to read a path.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The format, instead of detecting it.
    pub from: Option<SourceFormat>,
    /// Metric names nobody can guess, to the format's keys (`my_total_loss = "loss"`).
    pub rename: BTreeMap<String, String>,
    /// A regular expression for text logs whose lines no preset reads: a
    /// named group `step` and one group per metric (`(?P<loss>...)`).
    pub pattern: Option<String>,
    /// Which fit of a file holding several (1 = the first); the last by default.
    pub fit: Option<usize>,
    /// Tag prefixes of weight and gradient histograms beyond the conventions.
    pub histogram_tags: HistogramTags,
}

/// Loads a run of any supported format: the native loader for native runs,
/// the matching importer for the rest.
pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let (format, at) = match options.from {
        Some(format) => (format, path.to_path_buf()),
        // A pattern is for text logs that no preset recognizes.
        None if options.pattern.is_some() && path.is_file() => (SourceFormat::TextLog, path.to_path_buf()),
        None => detect(path)?,
    };
    let single_fit = !matches!(format, SourceFormat::KerasCsv | SourceFormat::TextLog | SourceFormat::JsonLines);
    if let Some(n) = options.fit.filter(|&n| single_fit && n != 1) {
        return Err(LoadError::Import { path: at, message: format!("--fit {n}: a {} run holds 1 fit", format.tool()) });
    }
    let mut run = match load_as(format, &at, options) {
        // A recorded run with nothing to analyze in it (unreadable, or its
        // files lost) costs its extras, not the run: the tool's own log
        // beside it is read instead.
        loaded if options.from.is_none() && format == SourceFormat::Native && is_recorded_dir(&at) => match empty_or_broken(loaded) {
            Ok(run) => run,
            Err(broken) => {
                let beside = at.parent().map(|p| (p, run_folder_format(p)));
                let Some((folder, Some(tool))) = beside.filter(|(_, f)| f.is_some_and(|f| f != SourceFormat::Native)) else {
                    return Err(broken);
                };
                let mut run = load_as(tool, folder, options)?;
                let why = format!("the recorded run could not be read ({broken}); the {} log beside it was read instead", tool.tool());
                run.warnings.insert(0, Warning::new(&at, None, why));
                run
            }
        },
        loaded => loaded?,
    };
    if format == SourceFormat::Native {
        read_roles(&mut run);
    }
    sum_components(&mut run);
    if !options.rename.is_empty() {
        run.metrics = rename_metrics(&run.metrics, &options.rename);
    }
    Ok(run)
}

/// A native run's metrics outside docs/FORMAT.md's keys, read by their
/// words as the importers read theirs: a `metrics.jsonl` whose loss is
/// `train_loss_nats_per_byte` and has no `loss` gets it read as `loss`.
/// Keys the run already has are left alone.
fn read_roles(run: &mut Run) {
    let names = run.metrics.names();
    let choice = names::choose(names.iter().map(String::as_str));
    for (key, source) in choice.origins() {
        if !names.contains(&key) && run.metrics.rename_series(&source, &key) {
            run.metrics.origins.insert(key, source);
        }
    }
}

/// A log of loss components and no total (YOLO's `train/box_loss`,
/// `train/cls_loss`, ...): their sum, as the tool itself prints it, is the
/// training (or validation) loss the rules read; the components stay.
fn sum_components(run: &mut Run) {
    let names = run.metrics.names();
    for (key, role) in [("loss", "loss component"), ("val_loss", "validation loss component")] {
        if names.iter().any(|n| n == key) {
            continue;
        }
        let parts: Vec<&String> = names.iter().filter(|n| names::role_of(n) == Some(role)).collect();
        let series: Vec<Vec<(u64, f64)>> = parts.iter().filter_map(|n| run.metrics.series(n)).collect();
        // Only where every component has a value at the same steps.
        let same_steps = series.windows(2).all(|w| w[0].len() == w[1].len() && w[0].iter().zip(&w[1]).all(|(a, b)| a.0 == b.0));
        if parts.len() < 2 || !same_steps || series.first().is_none_or(|s| s.is_empty()) {
            continue;
        }
        let sum: Vec<(u64, f64)> = (0..series[0].len()).map(|i| (series[0][i].0, series.iter().map(|s| s[i].1).sum())).collect();
        let origin = format!("the sum of {}", parts.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" + "));
        if run.metrics.insert_series(key, sum) {
            run.warnings.push(read_as(&run.source, &format!("{key} is {origin} (no total was logged)")));
            run.metrics.origins.insert(key.to_string(), origin);
        }
    }
}

/// The warning that says how a name was read ([`names::NameChoice::notes`]).
pub(crate) fn read_as(file: &Path, note: &str) -> Warning {
    Warning::new(file, None, format!("read as: {note}"))
}

/// A loaded run that holds no metrics, tensor statistics or checkpoints
/// (its files unreadable) as the error of loading it.
fn empty_or_broken(loaded: Result<Run, LoadError>) -> Result<Run, LoadError> {
    let run = loaded?;
    if run.metrics.rows() > 0 || !run.tensors.is_empty() || !run.checkpoints.is_empty() {
        return Ok(run);
    }
    let reasons = run.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    Err(LoadError::NothingReadable { path: run.source, reasons: if reasons.is_empty() { vec!["no metrics, tensor statistics or checkpoints".into()] } else { reasons } })
}

/// Reads `at` as a run of `format`.
fn load_as(format: SourceFormat, at: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    match format {
        SourceFormat::Native => Run::load(at),
        SourceFormat::HfTrainer => hf_trainer::load(at, options),
        SourceFormat::LightningCsv => lightning_csv::load(at, options),
        SourceFormat::KerasCsv => keras_csv::load(at, options),
        SourceFormat::Mlflow => mlflow::load(at, options),
        SourceFormat::TextLog => text_log::load(at, options),
        SourceFormat::Tensorboard => tensorboard::load(at, options),
        SourceFormat::Wandb => wandb::load(at, options),
        SourceFormat::JsonLines => json_lines::load(at, options),
        SourceFormat::Dvclive => dvclive::load(at, options),
    }
}

/// Reads until `buffer` is full or the file ends: the bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The bytes of a file read to tell formats apart.
const SNIFF_BYTES: u64 = 256 * 1024;

/// Reads the first bytes of a file, for detection.
fn sniff(path: &Path) -> Option<String> {
    let mut buffer = Vec::new();
    std::fs::File::open(path).ok()?.take(SNIFF_BYTES).read_to_end(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer).into_owned())
}

/// Which format a path holds, and the path to read it at (a folder holding
/// one run elsewhere than at its top gives that run's path).
pub fn detect(path: &Path) -> Result<(SourceFormat, PathBuf), LoadError> {
    // `mlflow.db/RUN_ID`: one run of an MLflow database.
    if let (false, Some(parent)) = (path.exists(), path.parent()) {
        if parent.is_file() && mlflow::is_database(parent) {
            return Ok((SourceFormat::Mlflow, path.to_path_buf()));
        }
    }
    let info = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    if info.is_file() {
        return detect_file(path).map(|f| (f, path.to_path_buf())).ok_or_else(|| LoadError::UnknownFormat {
            path: path.to_path_buf(),
            found: "a file no importer recognizes".into(),
        });
    }
    if let Some(format) = run_folder_format(path) {
        if let Some(recorded) = recorded_run(path).filter(|_| format != SourceFormat::Native) {
            return Ok((SourceFormat::Native, recorded));
        }
        return Ok((format, path.to_path_buf()));
    }
    // A folder that holds runs further down: one is read, several are an
    // archive. Failing that, any file of the folder that reads as a log,
    // whatever its name.
    let mut found = discover(path, MAX_DETECT_DEPTH).runs;
    if found.is_empty() {
        found = top_files(path).filter_map(|p| Some((p.clone(), detect_file(&p)?))).collect();
    }
    match found.as_slice() {
        [(at, format)] => Ok((*format, at.clone())),
        [] => Err(LoadError::NotARun { path: path.to_path_buf() }),
        several => Err(LoadError::Ambiguous {
            path: path.to_path_buf(),
            found: several.iter().take(10).map(|(p, f)| format!("{} ({})", p.display(), f.id())).collect(),
            more: several.len().saturating_sub(10),
        }),
    }
}

/// The regular files directly in a folder (at most 64), in name order.
fn top_files(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .take(64)
        .collect();
    files.sort();
    files.into_iter()
}

/// How deep `analyze` looks for one run inside a folder that is not one.
const MAX_DETECT_DEPTH: usize = 4;

/// The folder the Python package's Trainer and Lightning callbacks record a
/// run into, inside the tool's own output folder (`postmortem-2`, ... for
/// later trainings into the same folder).
pub const RECORDED_DIR: &str = "postmortem";

/// The run recorded beside another tool's log in `dir` (the newest of
/// `postmortem/`, `postmortem-2/`, ...): it holds everything the log does and
/// more (tensor statistics, activations, checkpoints), so it is the run read.
pub fn recorded_run(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| Some((recorded_number(&e.file_name().to_string_lossy())?, e.path())))
        .filter(|(_, path)| holds_native_files(path))
        .max_by_key(|(n, _)| *n)
        .map(|(_, path)| path)
}

/// `postmortem` is 1, `postmortem-N` is N; other names are no recorded run.
fn recorded_number(name: &str) -> Option<usize> {
    match name.strip_prefix(RECORDED_DIR)? {
        "" => Some(1),
        rest => rest.strip_prefix('-')?.parse().ok(),
    }
}

/// Whether `path` is a recorded run inside another tool's output folder.
fn is_recorded_dir(path: &Path) -> bool {
    path.file_name().is_some_and(|n| recorded_number(&n.to_string_lossy()).is_some())
}

/// Whether a folder holds the run format's own files. `tensors.jsonl` or a
/// `checkpoints/` folder alone do not make one: Lightning and many training
/// scripts keep their checkpoints in a folder of that name.
fn holds_native_files(dir: &Path) -> bool {
    let has = |name: &str| dir.join(name).symlink_metadata().is_ok();
    has(RUN_FILE) || has(METRICS_FILE)
}

/// The format of a folder that is one run, from the names in it.
pub fn run_folder_format(dir: &Path) -> Option<SourceFormat> {
    let has = |name: &str| dir.join(name).symlink_metadata().is_ok();
    if holds_native_files(dir) {
        return Some(SourceFormat::Native);
    }
    if has(hf_trainer::STATE_FILE) || !hf_trainer::checkpoint_dirs(dir).is_empty() {
        return Some(SourceFormat::HfTrainer);
    }
    if mlflow::is_run_dir(dir) {
        return Some(SourceFormat::Mlflow);
    }
    if tensorboard::is_run_dir(dir) {
        return Some(SourceFormat::Tensorboard);
    }
    if wandb::is_run_dir(dir) {
        return Some(SourceFormat::Wandb);
    }
    if dvclive::is_run_dir(dir) {
        return Some(SourceFormat::Dvclive);
    }
    let metrics_csv = dir.join(lightning_csv::METRICS_CSV);
    if metrics_csv.is_file() {
        return detect_file(&metrics_csv);
    }
    None
}

/// The format of a file, from its name and first bytes.
pub fn detect_file(path: &Path) -> Option<SourceFormat> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".safetensors") || name == RUN_FILE || name == METRICS_FILE {
        return Some(SourceFormat::Native);
    }
    if name == hf_trainer::STATE_FILE {
        return Some(SourceFormat::HfTrainer);
    }
    if tensorboard::is_event_file(path) {
        return Some(SourceFormat::Tensorboard);
    }
    if wandb::is_log_file(path) {
        return Some(SourceFormat::Wandb);
    }
    if name == "meta.yaml" {
        return None;
    }
    if mlflow::is_database(path) {
        return Some(SourceFormat::Mlflow);
    }
    let head = sniff(path)?;
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        if trimmed.contains("\"log_history\"") {
            return Some(SourceFormat::HfTrainer);
        }
        return json_lines::looks_like(trimmed).then_some(SourceFormat::JsonLines);
    }
    if let Some(header) = csv_header(trimmed) {
        return Some(if header.iter().any(|c| c == "step") { SourceFormat::LightningCsv } else { SourceFormat::KerasCsv });
    }
    text_log::looks_like_a_log(&head).then_some(SourceFormat::TextLog)
}

/// The columns of a CSV header line naming a loss or an epoch, if the text starts with one.
fn csv_header(text: &str) -> Option<Vec<String>> {
    let line = text.lines().next()?.trim_end_matches('\r');
    if !line.contains(',') {
        return None;
    }
    let columns: Vec<String> = line.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect();
    // A name, not a printed pair: `Epoch 1`, `loss 0.69` or `lr=0.1` is a
    // log line.
    let named = columns
        .iter()
        .all(|c| c.parse::<f64>().is_err() && !c.contains('=') && !c.split_whitespace().any(|w| w.trim_end_matches('%').parse::<f64>().is_ok()));
    let training = columns.iter().any(|c| c.contains("loss") || c == "epoch" || c.contains("acc"));
    (named && training).then_some(columns)
}

/// Every run under `root`, each once: a run folder of any format is not
/// descended into (one HF output folder is one run, not one per
/// `checkpoint-N`), and log files outside run folders are runs of their own.
/// Symbolic links are not followed. Entries that cannot be read are returned
/// as `(path, error)`.
pub fn discover(root: &Path, max_depth: usize) -> Discovery {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut walk = walkdir::WalkDir::new(root).follow_links(false).max_depth(max_depth).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push((e.path().map(Path::to_path_buf).unwrap_or_default(), e.to_string()));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() {
            if let Some(format) = run_folder_format(path) {
                match recorded_run(path).filter(|_| format != SourceFormat::Native) {
                    Some(recorded) => found.push((recorded, SourceFormat::Native)),
                    None => found.push((path.to_path_buf(), format)),
                }
                walk.skip_current_dir();
            }
        } else if entry.file_type().is_file() && is_log_file_name(path) {
            match detect_file(path) {
                // A database is an archive: each of its runs is one.
                Some(SourceFormat::Mlflow) => match mlflow::database_runs(path) {
                    Ok(runs) => found.extend(runs.into_iter().map(|(id, _)| (path.join(id), SourceFormat::Mlflow))),
                    Err(e) => errors.push((path.to_path_buf(), e.to_string())),
                },
                Some(format) => found.push((path.to_path_buf(), format)),
                None => {}
            }
        }
    }
    Discovery { runs: found, errors }
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub runs: Vec<(PathBuf, SourceFormat)>,
    /// Entries that could not be read, and why.
    pub errors: Vec<(PathBuf, String)>,
}

/// Whether [`discover`] reads a file's bytes, and not only its name, to tell
/// its format: logs named like text, CSV or a database. Runs in object
/// storage fetch these before discovery and everything else after.
pub fn discovery_reads(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    is_log_file_name(path)
        && !name.ends_with(".safetensors")
        && name != hf_trainer::STATE_FILE
        && !tensorboard::is_event_file(path)
        && !wandb::is_log_file(path)
}

/// Names a log of some format may have; other files are not opened while
/// looking for runs.
fn is_log_file_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(extension, "safetensors" | "csv" | "tsv" | "log" | "txt" | "out" | "db" | "sqlite" | "jsonl" | "json")
        || name == hf_trainer::STATE_FILE
        || tensorboard::is_event_file(path)
        || wandb::is_log_file(path)
}

/// The metrics with some names replaced (`[metrics]` of postmortem.toml).
fn rename_metrics(table: &MetricsTable, rename: &BTreeMap<String, String>) -> MetricsTable {
    let names = table.names();
    let series: Vec<(String, Vec<(u64, f64)>)> = names
        .iter()
        .filter_map(|name| {
            let points = table.series(name)?;
            let target = rename.get(name).cloned().unwrap_or_else(|| name.clone());
            Some((target, points))
        })
        .collect();
    // A renamed metric replaces one of the same name.
    let mut chosen: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for (name, points) in series {
        let renamed = rename.values().any(|t| *t == name);
        if renamed && names.contains(&name) && !rename.contains_key(&name) {
            continue;
        }
        chosen.insert(name, points);
    }
    let mut renamed = MetricsTable::from_owned_series(chosen.into_iter().collect(), table.counts.clone());
    renamed.origins = table.origins.iter().filter(|(key, _)| !rename.contains_key(*key)).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (from, to) in rename {
        renamed.origins.insert(to.clone(), table.origins.get(from).unwrap_or(from).clone());
    }
    renamed
}

pub(crate) use crate::run::metrics::whole_number as whole;

/// The most distinct metric names an import keeps, as the native loader does.
const MAX_METRICS: usize = 4096;

/// Metric points as an importer reads them, turned into the run's table at the
/// end. Steps that go back follow the format's resume rule: the points logged
/// from that step on before are superseded.
#[derive(Debug, Default)]
pub(crate) struct Points {
    names: HashMap<String, usize>,
    series: Vec<(String, Vec<(u64, f64)>)>,
    dropped_names: usize,
    /// The highest step of an entry so far.
    last_step: Option<u64>,
    /// Steps where the log went back, in order.
    pub restarts: Vec<u64>,
    pub entries: usize,
    /// What [`Points::standardize_names`] read as what.
    origins: BTreeMap<String, String>,
    notes: Vec<String>,
}

impl Points {
    /// Starts an entry at `step`; a step below an earlier one is a resume.
    pub fn entry(&mut self, step: u64) {
        self.entries += 1;
        if self.last_step.is_some_and(|last| step < last) {
            for (_, points) in &mut self.series {
                let keep = points.iter().position(|(s, _)| *s >= step).unwrap_or(points.len());
                points.truncate(keep);
            }
            self.restarts.push(step);
        }
        self.last_step = Some(self.last_step.map_or(step, |last| if step < last { step } else { last.max(step) }));
    }

    pub fn push(&mut self, name: &str, step: u64, value: f64) {
        let index = match self.names.get(name) {
            Some(&i) => i,
            None if self.names.len() >= MAX_METRICS => {
                self.dropped_names += 1;
                return;
            }
            None => {
                self.names.insert(name.to_string(), self.series.len());
                self.series.push((name.to_string(), Vec::new()));
                self.series.len() - 1
            }
        };
        self.series[index].1.push((step, value));
    }

    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|(_, p)| p.is_empty())
    }

    /// Adds a point to a series whose steps go back only where the writer
    /// restarted: the series' points from that step on are superseded.
    pub fn push_resuming(&mut self, name: &str, step: u64, value: f64) {
        if let Some(&index) = self.names.get(name) {
            let points = &mut self.series[index].1;
            if points.last().is_some_and(|&(last, _)| step < last) {
                let keep = points.partition_point(|&(s, _)| s < step);
                points.truncate(keep);
                self.restarts.push(step);
            }
        }
        self.push(name, step, value);
    }

    /// The highest step of an entry so far.
    pub fn last_step(&self) -> Option<u64> {
        self.last_step
    }

    /// Renames the series to the format's keys by the words of their names
    /// ([`names::choose`]), keeping what was read as what.
    pub fn standardize_names(&mut self) {
        let choice = names::choose(self.series.iter().map(|(n, _)| n.as_str()));
        self.origins = choice.origins();
        self.rename(&choice.mapping);
        self.notes = choice.notes;
    }

    /// Renames series; names not in `mapping` stay.
    pub fn rename(&mut self, mapping: &BTreeMap<String, String>) {
        for (name, _) in &mut self.series {
            if let Some(target) = mapping.get(name.as_str()) {
                name.clone_from(target);
            }
        }
        self.names = self.series.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
    }

    /// The table, and warnings for what was left out or superseded.
    pub fn finish(self, file: &Path, warnings: &mut Vec<Warning>) -> MetricsTable {
        if self.dropped_names > 0 {
            warnings.push(Warning::new(file, None, format!("{} metric names beyond the first {MAX_METRICS} were left out", self.dropped_names)));
        }
        if let Some(first) = self.restarts.first() {
            warnings.push(Warning::new(
                file,
                None,
                format!(
                    "the log goes back to an earlier step {} time(s) (first to step {first}): a resumed run; what was logged from there on before the resume is superseded",
                    self.restarts.len()
                ),
            ));
        }
        warnings.extend(self.notes.iter().map(|note| read_as(file, note)));
        let mut table = MetricsTable::from_owned_series(self.series.into_iter().filter(|(_, p)| !p.is_empty()).collect(), BTreeMap::new());
        table.origins = self.origins;
        table
    }
}

/// One training of a file that may hold several (Keras' `CSVLogger` with
/// `append=True`, a printed log of a loop over configurations).
#[derive(Debug, Default)]
pub(crate) struct Fit {
    pub points: Points,
    /// The file's lines (1-based) the fit spans.
    pub lines: (usize, usize),
}

/// The fit to analyze (the last, or `--fit N`), with a warning saying how
/// many the file holds.
pub(crate) fn choose_fit(mut fits: Vec<Fit>, options: &ImportOptions, file: &Path, warnings: &mut Vec<Warning>) -> Result<Fit, LoadError> {
    fits.retain(|f| !f.points.is_empty());
    let count = fits.len();
    let chosen = match options.fit {
        Some(n) if n == 0 || n > count => {
            return Err(LoadError::Import { path: file.to_path_buf(), message: format!("--fit {n}: the file holds {count} fit(s)") });
        }
        Some(n) => n,
        None => count,
    };
    if count > 1 {
        let spans: Vec<String> = fits.iter().enumerate().map(|(i, f)| format!("{}: lines {}-{}", i + 1, f.lines.0, f.lines.1)).collect();
        warnings.push(Warning::new(
            file,
            None,
            format!("holds {count} fits, told apart where the epoch or step starts again ({}); analyzing fit {chosen} (--fit N picks another)", spans.join(", ")),
        ));
    }
    fits.into_iter().nth(chosen.saturating_sub(1)).ok_or_else(|| LoadError::NothingReadable {
        path: file.to_path_buf(),
        reasons: vec![format!("{}: no line with a metric value was found", file.display())],
    })
}

/// A run of metrics only, as the flat logs give.
pub(crate) fn metrics_run(source: &Path, format: SourceFormat, mut meta: RunMeta, points: Points, mut warnings: Vec<Warning>) -> Result<Run, LoadError> {
    if points.is_empty() {
        return Err(LoadError::NothingReadable { path: source.to_path_buf(), reasons: vec!["no metric value was found".into()] });
    }
    mark_imported(&mut meta, format);
    let metrics = points.finish(source, &mut warnings);
    Ok(Run { source: source.to_path_buf(), meta, metrics, tensors: Vec::new(), checkpoints: Vec::new(), warnings })
}

/// The name a run gets from its file or folder.
pub(crate) fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A folder's name, with its parent's before it when the folder's own says
/// little (`checkpoint-500`, `version_3`: the folder above names the run).
pub(crate) fn name_within(dir: &Path, generic_prefix: &str) -> String {
    let own = name_of(dir);
    match dir.parent().map(name_of) {
        Some(parent) if own.starts_with(generic_prefix) && !parent.is_empty() => format!("{parent}/{own}"),
        _ => own,
    }
}

/// Hyperparameters from a tool's `(name, value)` pairs, as MLflow params and
/// Lightning's `hparams.yaml` hold them: the names the format knows under
/// their usual spellings, the rest kept under their own names (numbers as
/// numbers).
pub(crate) fn hyperparameters(params: impl IntoIterator<Item = (String, String)>) -> Hyperparameters {
    let mut hyper = Hyperparameters::default();
    for (name, value) in params {
        let number = value.parse::<f64>().ok();
        match (name.as_str(), number) {
            ("lr" | "learning_rate" | "opt_learning_rate", Some(n)) => hyper.learning_rate = Some(n),
            ("batch_size", Some(n)) => hyper.batch_size = whole(n),
            ("epochs" | "max_epochs", Some(n)) => hyper.epochs = whole(n),
            ("weight_decay", Some(n)) => hyper.weight_decay = Some(n),
            ("dropout", Some(n)) => hyper.dropout = Some(n),
            ("optimizer_name" | "opt_name" | "optimizer", _) => hyper.optimizer = Some(value),
            (_, Some(n)) => {
                hyper.extra.insert(name, n.into());
            }
            (_, None) => {
                hyper.extra.insert(name, value.into());
            }
        }
    }
    hyper
}

/// The key of `framework` in the metadata of an imported run that names the
/// format it was read from.
const IMPORTED_FROM: &str = "imported_from";

/// Records in the metadata which format a run was read from.
pub(crate) fn mark_imported(meta: &mut RunMeta, format: SourceFormat) {
    meta.framework.get_or_insert_with(Framework::default).extra.insert(IMPORTED_FROM.into(), format.id().into());
}

/// The format an imported run was read from; `None` for a native run.
pub fn imported_from(meta: &RunMeta) -> Option<&str> {
    meta.framework.as_ref()?.extra.get(IMPORTED_FROM)?.as_str()
}

/// A CSV file as named columns of numbers (`None`: an empty cell). Blank
/// lines, `\r\r\n` endings and a byte-order mark are fine; cells that are
/// not numbers are counted and left out.
pub(crate) struct CsvColumns {
    pub header: Vec<String>,
    /// Rows, each a value per column, with the file line each came from.
    pub rows: Vec<(usize, Vec<Option<f64>>)>,
    pub bad_cells: usize,
    pub first_bad_line: Option<usize>,
}

pub(crate) fn read_csv(path: &Path) -> Result<CsvColumns, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(std::io::BufReader::new(file));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| LoadError::Import { path: path.to_path_buf(), message: format!("no CSV header: {e}") })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let mut columns = CsvColumns { header, rows: Vec::new(), bad_cells: 0, first_bad_line: None };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                columns.bad_cells += 1;
                columns.first_bad_line.get_or_insert(line);
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut values = Vec::with_capacity(columns.header.len());
        for i in 0..columns.header.len() {
            let cell = record.get(i).unwrap_or("").trim();
            let value = if cell.is_empty() { None } else { crate::jsonl::text_number(cell) };
            if value.is_none() && !cell.is_empty() {
                columns.bad_cells += 1;
                columns.first_bad_line.get_or_insert(line);
            }
            values.push(value);
        }
        columns.rows.push((line, values));
    }
    Ok(columns)
}

impl CsvColumns {
    /// One warning for the cells that were not numbers.
    pub fn warn(&self, path: &Path, warnings: &mut Vec<Warning>) {
        if self.bad_cells > 0 {
            warnings.push(Warning::new(
                path,
                self.first_bad_line,
                format!("{} cell(s) that are not numbers were left out (the first on this line)", self.bad_cells),
            ));
        }
    }
}
