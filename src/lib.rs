//! postmortem: tells why a neural-network training run went wrong, from what
//! the run recorded (docs/FORMAT.md). The binary is a thin layer over this
//! library: [`run::Run::load`] reads a run, [`summary::Summary`] describes it.

pub mod cli;
pub mod error;
pub mod jsonl;
pub mod rules;
pub mod run;
pub mod summary;

pub use error::{LoadError, Warning};
pub use run::Run;
