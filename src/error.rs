//! Errors of loading a run. Each names the file, and the line or tensor where
//! there is one, so that the message alone tells the user where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: no run found: not a postmortem run (run.json, metrics.jsonl), a Hugging Face Trainer output (trainer_state.json), a Lightning or Keras CSV log, an MLflow run or a training log (docs/IMPORT.md)", path.display())]
    NotARun { path: PathBuf },
    #[error("{}: {found}; --from names the format (docs/IMPORT.md lists them)", path.display())]
    UnknownFormat { path: PathBuf, found: String },
    #[error("{}: holds several runs, so it is an archive: `postmortem audit` reads them all, or name one: {}{}", path.display(), found.join(", "), if *more > 0 { format!(" and {more} more") } else { String::new() })]
    Ambiguous { path: PathBuf, found: Vec<String>, more: usize },
    #[error("{}: {message}", path.display())]
    Import { path: PathBuf, message: String },
    #[error("{}: format is {found}; this version of postmortem reads \"{expected}\"", path.display())]
    UnsupportedFormat { path: PathBuf, found: String, expected: &'static str },
    #[error("{}:{line}: {message}", path.display())]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{}{}: {message}", path.display(), tensor.as_ref().map(|t| format!(" (tensor {t:?})")).unwrap_or_default())]
    Checkpoint { path: PathBuf, tensor: Option<String>, message: String },
    #[error("{}: nothing could be analyzed: {}", path.display(), reasons.join("; "))]
    NothingReadable { path: PathBuf, reasons: Vec<String> },
}

impl LoadError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LoadError::Io { path: path.into(), source }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LoadError::Checkpoint { path: path.into(), tensor: None, message: message.into() }
    }
}

/// The kinds of data a run holds, each from its own files: what a rule
/// reads, and what an unreadable file takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// `run.json`: the task, model, dataset and hyperparameters.
    Metadata,
    /// `metrics.jsonl`.
    Metrics,
    /// `tensors.jsonl`.
    TensorStats,
    /// `checkpoints/*.safetensors`.
    Checkpoints,
}

impl DataSource {
    pub fn describe(self) -> &'static str {
        match self {
            DataSource::Metadata => "run metadata",
            DataSource::Metrics => "metrics",
            DataSource::TensorStats => "tensor statistics",
            DataSource::Checkpoints => "checkpoint",
        }
    }
}

/// Something wrong with the input that did not stop the analysis.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    /// Set when the file could not be used at all: the data it would have
    /// given. Rules that needed it say so when they are skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<DataSource>,
}

impl Warning {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Warning { file: file.into(), line, message: message.into(), lost: None }
    }

    /// A file whose data was left out of the analysis, and why.
    pub fn unreadable(file: impl Into<PathBuf>, lost: DataSource, why: impl std::fmt::Display) -> Self {
        Warning {
            file: file.into(),
            line: None,
            message: format!("could not be read, so the analysis goes on without its {}: {why}", lost.describe()),
            lost: Some(lost),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}
