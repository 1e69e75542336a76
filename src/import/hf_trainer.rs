//! Hugging Face `Trainer` output: an `output_dir/` with `checkpoint-N/`
//! folders, one `checkpoint-N/` folder, or a bare `trainer_state.json`.
//!
//! `log_history` gives the metrics (training entries, evaluation entries as
//! `val_*`, the closing summary as run facts), `config.json` the model and
//! task, and each `checkpoint-N/model.safetensors` (or a PEFT adapter) a
//! checkpoint at step N. Pickled files (`optimizer.pt`, `training_args.bin`,
//! `pytorch_model.bin`, ...) are never loaded: loading a pickle runs code.

use super::{whole, ImportOptions, Points, SourceFormat};
use crate::error::{DataSource, LoadError, Warning};
use crate::jsonl;
use crate::run::checkpoint::Checkpoint;
use crate::run::{Run, MAX_CLASSES};
use postmortem_recorder::{Framework, Hyperparameters, Model, RunMeta, RunStatus, Task, TaskKind};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// The file that holds the log history.
pub const STATE_FILE: &str = "trainer_state.json";
const CONFIG_FILE: &str = "config.json";
const CHECKPOINT_PREFIX: &str = "checkpoint-";
/// Weight files, in the order they are looked for in a checkpoint folder.
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "adapter_model.safetensors"];
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
    let mut meta = RunMeta::new(run_name(&dir));
    meta.framework = Some(Framework {
        name: Some("transformers".into()),
        extra: [("imported_from".to_string(), Value::from(SourceFormat::HfTrainer.id()))].into(),
        ..Default::default()
    });
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
            Some(state.points.finish(&state_file, &mut warnings))
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
        metrics: metrics.unwrap_or_else(crate::run::metrics::MetricsTable::empty),
        tensors: Vec::new(),
        checkpoints,
        warnings,
    })
}

fn run_name(dir: &Path) -> String {
    // A checkpoint folder is named after its step; its parent names the run.
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let own = name(dir);
    match (own.starts_with(CHECKPOINT_PREFIX), dir.parent()) {
        (true, Some(parent)) if !name(parent).is_empty() => format!("{}/{own}", name(parent)),
        _ => own,
    }
}

/// What `trainer_state.json` says.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub points: Points,
    /// The closing summary entry (`train_loss`, `train_runtime`, ...).
    pub summary: Map<String, Value>,
    pub global_step: Option<u64>,
    pub max_steps: Option<u64>,
    pub num_train_epochs: Option<f64>,
    pub train_batch_size: Option<u64>,
    pub logging_steps: Option<f64>,
    /// Entries without a step, or not objects.
    pub skipped: usize,
    /// The last training entry: step and loss, to compare with older states.
    pub last_loss: Vec<(u64, f64)>,
}

/// Reads a state file, streaming `log_history` into points: a history of a
/// million entries is never held as JSON values.
pub(crate) fn read_state(path: &Path, warnings: &mut Vec<Warning>) -> Result<State, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| LoadError::Import { path: path.to_path_buf(), message: format!("not valid UTF-8 ({e})") })?;
    // Python's json writes bare NaN and Infinity; serde_json reads them as strings.
    let quoted = jsonl::quote_nonfinite_tokens(text);
    let text = quoted.as_deref().unwrap_or(text);
    let mut state = State::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    StateSeed { state: &mut state }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| LoadError::Import { path: path.to_path_buf(), message: format!("invalid JSON: {e}") })?;
    if state.skipped > 0 {
        warnings.push(Warning::new(path, None, format!("{} log_history entries without a step were skipped", state.skipped)));
    }
    Ok(state)
}

struct StateSeed<'s> {
    state: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for StateSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StateSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trainer state object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let state = &mut *self.state;
            match key.0.as_ref() {
                "log_history" => map.next_value_seed(HistorySeed { state })?,
                "global_step" => state.global_step = map.next_value::<Scalar>()?.0.and_then(whole),
                "max_steps" => state.max_steps = map.next_value::<Scalar>()?.0.and_then(whole),
                "num_train_epochs" => state.num_train_epochs = map.next_value::<Scalar>()?.0,
                "train_batch_size" => state.train_batch_size = map.next_value::<Scalar>()?.0.and_then(whole),
                "logging_steps" => state.logging_steps = map.next_value::<Scalar>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, borrowed from the file where it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A value read as a number where it is one (numbers, and the non-finite
/// tokens the pre-pass quoted); anything else is `None`.
struct Scalar(Option<f64>);

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(jsonl::text_number(v).filter(|_| !v.trim().is_empty())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct HistorySeed<'s> {
    state: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for HistorySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for HistorySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of log entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Entry<'de>>()? {
            add_entry(self.state, entry);
        }
        Ok(())
    }
}

/// One `log_history` entry: its numeric fields (others are dropped), or
/// `None` when it is not an object.
struct Entry<'de>(Option<Vec<(Key<'de>, f64)>>);

impl<'de> de::Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a log entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<'de>, A::Error> {
                let mut fields = Vec::with_capacity(8);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if let Scalar(Some(value)) = map.next_value()? {
                        fields.push((key, value));
                    }
                }
                Ok(Entry(Some(fields)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry<'de>, E> {
                Ok(Entry(None))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// Keys of the closing summary entry, which is a run fact, not a step.
const SUMMARY_KEYS: [&str; 3] = ["train_runtime", "train_samples_per_second", "total_flos"];

fn add_entry(state: &mut State, entry: Entry<'_>) {
    let Some(fields) = entry.0 else {
        state.skipped += 1;
        return;
    };
    let Some(step) = fields.iter().find(|(k, _)| k.0 == "step").and_then(|(_, v)| whole(*v)) else {
        state.skipped += 1;
        return;
    };
    if fields.iter().any(|(k, _)| SUMMARY_KEYS.contains(&k.0.as_ref())) {
        for (key, value) in &fields {
            state.summary.insert(key.0.to_string(), serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number));
        }
        return;
    }
    let evaluation = fields.iter().any(|(k, _)| k.0.starts_with("eval_"));
    state.points.entry(step);
    for (key, value) in &fields {
        let key = key.0.as_ref();
        let name: Cow<str> = match key {
            "step" => continue,
            "loss" if !evaluation => Cow::Borrowed("loss"),
            "learning_rate" => Cow::Borrowed("lr"),
            _ => match key.strip_prefix("eval_") {
                Some(rest) => Cow::Owned(format!("val_{rest}")),
                None => Cow::Borrowed(key),
            },
        };
        if name == "loss" {
            state.last_loss.push((step, *value));
        }
        state.points.push(&name, step, *value);
    }
}

/// Warns when an older checkpoint's history is not the beginning of the newest one.
fn compare_older(path: &Path, newest: &State, warnings: &mut Vec<Warning>) {
    let mut ignored = Vec::new();
    let Ok(older) = read_state(path, &mut ignored) else { return };
    let Some(&(step, loss)) = older.last_loss.last() else { return };
    let agrees = newest.last_loss.iter().any(|&(s, l)| s == step && (l == loss || (l.is_nan() && loss.is_nan())));
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
    if !is_file || dir.join(WEIGHT_FILES[0]).is_file() || dir.join(WEIGHT_FILES[1]).is_file() {
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
        let Some(file) = WEIGHT_FILES.iter().map(|w| folder.join(w)).find(|p| p.is_file()) else {
            if folder.join("model.safetensors.index.json").is_file() {
                warnings.push(Warning::unreadable(
                    folder.join("model.safetensors.index.json"),
                    DataSource::Checkpoints,
                    "sharded weights are not read yet; save with a larger max_shard_size, or analyze a single-file checkpoint",
                ));
            }
            continue;
        };
        match Checkpoint::open(&file) {
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
