//! postmortem: tells why a neural-network training run went wrong, from what
//! the run recorded (docs/FORMAT.md). The binary is a thin layer over this
//! library: [`run::Run::load`] reads a run, [`analysis::analyze`] applies the
//! checklist's rules, and [`export`] renders the result.

pub mod analysis;
pub mod archive;
pub mod audit;
pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod export;
pub mod import;
pub mod inspect;
pub mod jsonl;
pub mod report;
pub mod rules;
pub mod run;
pub mod series;
pub mod store;
pub mod summary;

pub use error::{LoadError, Warning};
pub use run::Run;
