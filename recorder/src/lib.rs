//! Records a neural-network training run in the postmortem run format
//! (docs/FORMAT.md): `run.json`, `metrics.jsonl`, `tensors.jsonl` and
//! `checkpoints/step-NNNNNNNN.safetensors`.
//!
//! ```no_run
//! use postmortem_recorder::{Metrics, Recorder, RunMeta, TensorKind, stats};
//! # fn main() -> Result<(), postmortem_recorder::Error> {
//! let mut run = Recorder::create("runs/mlp-1", RunMeta::new("mlp-1"))?;
//! for step in 0..100u64 {
//!     let loss = 1.0 / (1.0 + step as f64);
//!     run.log_metrics(step, &Metrics::new().scalar("loss", loss).scalar("lr", 0.01))?;
//!     if run.policy().wants_stats(step) {
//!         let weights = vec![0.1f32; 64];
//!         run.log_tensor(step, "fc1.weight", TensorKind::Weight, &stats::stats_f32(&weights))?;
//!     }
//! }
//! run.finish()?;
//! # Ok(()) }
//! ```
//!
//! With the `candle` feature, [`candle`] records straight from candle tensors,
//! reducing them on their own device.

#[cfg(feature = "candle")]
pub mod candle;
pub mod format;
mod policy;
mod recorder;
pub mod stats;

pub use format::{
    Activation, Dataset, Framework, Hyperparameters, Layer, Model, Purpose, RunMeta, RunStatus, Task,
    TaskKind, TensorKind, TensorRecord, TensorStats, FORMAT_VERSION,
};
pub use policy::RecordPolicy;
pub use recorder::{HostTensor, MetricValue, Metrics, Recorder};
pub use safetensors::Dtype;

use std::path::{Path, PathBuf};

/// What can go wrong while recording.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} already holds a run (run.json exists); choose a new directory", .0.display())]
    RunExists(PathBuf),
    #[error("could not encode JSON: {0}")]
    Json(serde_json::Error),
    #[error("could not write a checkpoint: {0}")]
    SafeTensors(safetensors::SafeTensorError),
    #[cfg(feature = "candle")]
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Error {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}
