//! Hugging Face `Trainer` output: an `output_dir/` with `checkpoint-N/`
//! folders, one `checkpoint-N/` folder, or a bare `trainer_state.json`.
//!
//! `log_history` gives the metrics (training entries, evaluation entries as
//! `val_*`, the closing summary as run facts), `config.json` the model and
//! task, and each `checkpoint-N/model.safetensors` (or a PEFT adapter) a
//! checkpoint at step N. Pickled files (`optimizer.pt`, `training_args.bin`,
//! `pytorch_model.bin`, ...) are never loaded: loading a pickle runs code.

use super::{mark_imported, name_within, whole, ImportOptions, SourceFormat};
use crate::error::{DataSource, LoadError, Warning};
use crate::jsonl;
use crate::run::checkpoint::Checkpoint;
use crate::run::metrics::{self, KeyNames, MetricsTable};
use crate::run::{Run, MAX_CLASSES};
use postmortem_recorder::{Framework, Hyperparameters, Model, RunMeta, RunStatus, Task, TaskKind};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The file that holds the log history.
pub const STATE_FILE: &str = "trainer_state.json";
const CONFIG_FILE: &str = "config.json";
const CHECKPOINT_PREFIX: &str = "checkpoint-";
/// Weight files, in the order they are looked for in a checkpoint folder.
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "adapter_model.safetensors"];
/// The index of weights sharded over `model-0000k-of-0000n.safetensors` files.
const SHARD_INDEX: &str = "model.safetensors.index.json";
/// File endings of pickles, which are never opened.
const PICKLE_ENDINGS: [&str; 5] = [".bin", ".pt", ".pth", ".pkl", ".ckpt"];

/// The `checkpoint-N` folders of an output folder, in step order.
pub fn checkpoint_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix(CHECKPOINT_PREFIX)?.parse().ok()?;
            let path = e.path();
            path.join(STATE_FILE).is_file().then_some((step, path))
        })
        .collect();
    found.sort();
    found
}

pub fn load(path: &Path, _options: &ImportOptions) -> Result<Run, LoadError> {
    let is_file = path.is_file();
    let dir = if is_file { path.parent().unwrap_or(Path::new(".")).to_path_buf() } else { path.to_path_buf() };
    let checkpoint_folders = if is_file { Vec::new() } else { checkpoint_dirs(&dir) };
    // The newest state holds the whole history: the output folder's own
    // (written at the end), else the newest checkpoint's.
    let own_state = dir.join(STATE_FILE);
    let state_file = if is_file {
        path.to_path_buf()
    } else if own_state.is_file() {
        own_state
    } else {
        match checkpoint_folders.last() {
            Some((_, folder)) => folder.join(STATE_FILE),
            None => return Err(LoadError::NotARun { path: path.to_path_buf() }),
        }
    };
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();
    // A checkpoint folder is named after its step; its parent names the run.
    let mut meta = RunMeta::new(name_within(&dir, CHECKPOINT_PREFIX));
    meta.framework = Some(Framework { name: Some("transformers".into()), ..Default::default() });
    mark_imported(&mut meta, SourceFormat::HfTrainer);
    let state = match read_state(&state_file, &mut warnings) {
        Ok(state) => Some(state),
        Err(e) => {
            reasons.push(e.to_string());
            warnings.push(Warning::unreadable(&state_file, DataSource::Metrics, &e));
            None
        }
    };
    // Older checkpoints' histories should be beginnings of the newest.
    if let Some(state) = &state {
        for (_, folder) in checkpoint_folders.iter().rev().skip(1).take(1) {
            compare_older(&folder.join(STATE_FILE), state, &mut warnings);
        }
    }
    let config_file = [dir.join(CONFIG_FILE)]
        .into_iter()
        .chain(checkpoint_folders.iter().rev().map(|(_, f)| f.join(CONFIG_FILE)))
        .find(|p| p.is_file());
    if let Some(config_file) = &config_file {
        read_config(config_file, &mut meta, &mut warnings);
    }
    let checkpoints = read_weights(&dir, is_file, &checkpoint_folders, state.as_ref().and_then(|s| s.global_step), &mut warnings);
    note_pickles(&dir, &checkpoint_folders, &mut warnings);
    let metrics = match state {
        Some(state) => {
            apply_state_facts(&state, &mut meta, &state_file, &mut warnings);
            Some(state.metrics)
        }
        None => None,
    };
    if metrics.as_ref().is_none_or(|m| m.rows() == 0) && checkpoints.is_empty() {
        if metrics.is_some() {
            reasons.push(format!("{}: log_history holds no entry with a step", state_file.display()));
        }
        return Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons });
    }
    Ok(Run {
        source: path.to_path_buf(),
        meta,
        metrics: metrics.unwrap_or_else(MetricsTable::empty),
        tensors: Vec::new(),
        checkpoints,
        warnings,
    })
}

/// What `trainer_state.json` says.
#[derive(Debug)]
pub(crate) struct State {
    pub metrics: MetricsTable,
    /// The closing summary entry (`train_loss`, `train_runtime`, ...).
    pub summary: Map<String, Value>,
    pub global_step: Option<u64>,
    pub max_steps: Option<u64>,
    pub num_train_epochs: Option<f64>,
    pub train_batch_size: Option<u64>,
}

/// Reads a state file. `log_history` is read as the lines of a metrics
/// file, entry by entry, in parallel: a history of a million entries is
/// never held whole. The closing summary entry is set aside as run facts.
pub(crate) fn read_state(path: &Path, warnings: &mut Vec<Warning>) -> Result<State, LoadError> {
    let mut entries = jsonl::ArrayEntries::open(path, "log_history", b"\"train_runtime\"")?;
    let metrics = metrics::load_lines(path, &mut entries, KeyNames::HfTrainer, warnings)?;
    if !entries.found {
        return Err(LoadError::Import { path: path.to_path_buf(), message: "no \"log_history\" list: not a Trainer state".into() });
    }
    // The rest of the file, with the history replaced by null.
    let header = match jsonl::parse_value(&entries.outside) {
        Ok(Value::Object(header)) => header,
        _ => {
            warnings.push(Warning::new(path, None, "the fields around log_history could not be read (steps, epochs, batch size left out)"));
            Map::new()
        }
    };
    let number = |key: &str| header.get(key).and_then(jsonl::number);
    let mut summary = Map::new();
    for entry in &entries.set_aside {
        if let Ok(Value::Object(fields)) = jsonl::parse_value(entry) {
            summary.extend(fields);
        }
    }
    Ok(State {
        metrics,
        summary,
        global_step: number("global_step").and_then(whole),
        max_steps: number("max_steps").and_then(whole),
        num_train_epochs: number("num_train_epochs"),
        train_batch_size: number("train_batch_size").and_then(whole),
    })
}

/// Warns when an older checkpoint's history is not the beginning of the newest one.
fn compare_older(path: &Path, newest: &State, warnings: &mut Vec<Warning>) {
    let mut ignored = Vec::new();
    let Ok(older) = read_state(path, &mut ignored) else { return };
    let Some(&(step, loss)) = older.metrics.series("loss").unwrap_or_default().last() else { return };
    let newest_loss = newest.metrics.series("loss").unwrap_or_default();
    let agrees = newest_loss.iter().any(|&(s, l)| s == step && (l == loss || (l.is_nan() && loss.is_nan())));
    if !agrees {
        warnings.push(Warning::new(
            path,
            None,
            format!("this older history disagrees with the newest one at step {step} (loss {loss}): the run was resumed or restarted; the newest history is analyzed"),
        ));
    }
}

/// Steps, epochs and batch size from the state; the summary as run facts.
fn apply_state_facts(state: &State, meta: &mut RunMeta, path: &Path, warnings: &mut Vec<Warning>) {
    let hyper = meta.hyperparameters.get_or_insert_with(Hyperparameters::default);
    hyper.batch_size = hyper.batch_size.or(state.train_batch_size);
    hyper.epochs = hyper.epochs.or(state.num_train_epochs.and_then(whole));
    if let Some(max_steps) = state.max_steps {
        hyper.extra.insert("max_steps".into(), max_steps.into());
    }
    if !state.summary.is_empty() {
        meta.extra.insert("trainer_summary".into(), Value::Object(state.summary.clone()));
    }
    meta.status = match (state.summary.is_empty(), state.global_step, state.max_steps) {
        (false, _, _) => Some(RunStatus::Finished),
        (true, Some(done), Some(max)) if max > 0 && done >= max => Some(RunStatus::Finished),
        (true, Some(done), Some(max)) if max > 0 => {
            warnings.push(Warning::new(
                path,
                None,
                format!("saved at step {done} of {max}: the run had not finished when this state was written"),
            ));
            Some(RunStatus::Running)
        }
        _ => None,
    };
}

/// Model and task from `config.json`. A fine-tune names its pretrained
/// origin (`_name_or_path`), so it is not judged as if trained from scratch.
fn read_config(path: &Path, meta: &mut RunMeta, warnings: &mut Vec<Warning>) {
    let config = match std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| jsonl::parse_value(&b)) {
        Ok(Value::Object(config)) => config,
        Ok(_) => {
            warnings.push(Warning::unreadable(path, DataSource::Metadata, "not a JSON object"));
            return;
        }
        Err(why) => {
            warnings.push(Warning::unreadable(path, DataSource::Metadata, why));
            return;
        }
    };
    let text = |key: &str| config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let architecture = config.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str).map(str::to_string);
    let pretrained = text("_name_or_path");
    meta.model = Some(Model { name: text("model_type"), architecture: architecture.clone(), pretrained, ..Default::default() });
    let head = architecture.as_deref().unwrap_or_default();
    let classifier = ["ForSequenceClassification", "ForTokenClassification", "ForImageClassification", "ForAudioClassification"]
        .iter()
        .any(|h| head.ends_with(h));
    let language_model = ["ForCausalLM", "LMHeadModel", "ForMaskedLM", "ForConditionalGeneration", "ForSeq2SeqLM"].iter().any(|h| head.ends_with(h));
    let count = |key: &str| config.get(key).and_then(Value::as_u64).filter(|&n| n > 0 && n <= MAX_CLASSES as u64);
    let task = if classifier {
        let classes = config.get("id2label").and_then(Value::as_object).map(|m| m.len() as u64).filter(|&n| n > 0).or_else(|| count("num_labels"));
        let loss = match config.get("problem_type").and_then(Value::as_str) {
            Some("regression") => "mse",
            Some("multi_label_classification") => "bce",
            _ => "cross_entropy",
        };
        let kind = if loss == "mse" { TaskKind::Regression } else { TaskKind::Classification };
        Some(Task { kind: Some(kind), num_classes: classes.filter(|_| loss != "mse"), loss: Some(loss.into()), ..Default::default() })
    } else if language_model {
        Some(Task { kind: Some(TaskKind::Classification), num_classes: count("vocab_size"), loss: Some("cross_entropy".into()), ..Default::default() })
    } else {
        None
    };
    meta.task = task;
}

/// Each `checkpoint-N`'s weights as a checkpoint at step N, and the output
/// folder's own final weights.
fn read_weights(dir: &Path, is_file: bool, folders: &[(u64, PathBuf)], global_step: Option<u64>, warnings: &mut Vec<Warning>) -> Vec<Checkpoint> {
    let mut places: Vec<(Option<u64>, PathBuf)> = folders.iter().map(|(s, f)| (Some(*s), f.clone())).collect();
    if !is_file || [WEIGHT_FILES[0], WEIGHT_FILES[1], SHARD_INDEX].iter().any(|f| dir.join(f).is_file()) {
        let own_step = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(|n| n.parse().ok())
            .or(global_step);
        if !folders.iter().any(|(s, _)| Some(*s) == own_step) {
            places.push((own_step, dir.to_path_buf()));
        }
    }
    let mut checkpoints = Vec::new();
    for (step, folder) in places {
        let index = folder.join(SHARD_INDEX);
        let (file, opened) = match WEIGHT_FILES.iter().map(|w| folder.join(w)).find(|p| p.is_file()) {
            Some(file) => {
                let opened = Checkpoint::open(&file);
                (file, opened)
            }
            None if index.is_file() => {
                let opened = Checkpoint::open_sharded(&index);
                (index, opened)
            }
            None => continue,
        };
        match opened {
            Ok(mut checkpoint) => {
                checkpoint.step = step.or(checkpoint.step);
                if checkpoint.step.is_some() {
                    checkpoints.push(checkpoint);
                } else {
                    warnings.push(Warning::unreadable(&file, DataSource::Checkpoints, "its step is unknown (no checkpoint-N folder, no global_step)"));
                }
            }
            Err(e) => warnings.push(Warning::unreadable(&file, DataSource::Checkpoints, e)),
        }
    }
    checkpoints.sort_by_key(|c| c.step);
    checkpoints
}

/// One warning naming the pickled files left unread.
fn note_pickles(dir: &Path, folders: &[(u64, PathBuf)], warnings: &mut Vec<Warning>) {
    let mut names = std::collections::BTreeSet::new();
    for folder in std::iter::once(dir).chain(folders.iter().map(|(_, f)| f.as_path())) {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if PICKLE_ENDINGS.iter().any(|e| name.ends_with(e)) {
                names.insert(name);
            }
        }
    }
    if !names.is_empty() {
        let names: Vec<String> = names.into_iter().collect();
        warnings.push(Warning::new(
            dir,
            None,
            format!("not read: {} (pickle files: loading one runs code; weights are read from .safetensors only)", names.join(", ")),
        ));
    }
}
