//! The command line: argument types (clap) and what each command does.
//! `main.rs` only parses and calls [`run`].

use crate::error::LoadError;
use crate::rules;
use crate::run::Run;
use crate::summary::Summary;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: nothing at or above the failure threshold.
pub const EXIT_OK: u8 = 0;
/// Exit code: findings at or above the failure threshold.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: the input could not be analyzed (or the command line was wrong).
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "postmortem",
    version,
    about = "Tells why a neural-network training run went wrong, from what it recorded.",
    long_about = "Tells why a neural-network training run went wrong, from what it recorded.\n\n\
        A run is a directory written by the postmortem recorder, or by any tool that follows \
        docs/FORMAT.md: run.json, metrics.jsonl, and optionally tensors.jsonl and \
        checkpoints/step-NNNNNNNN.safetensors. A bare .safetensors file is analyzed as a run \
        that has only weights.",
    after_help = "Examples:\n  postmortem analyze runs/mlp-3\n  postmortem analyze runs/mlp-3 --format json > mlp-3.json\n  postmortem rules\n  postmortem explain loss-diverging\n\n\
        Exit codes: 0 nothing to report, 1 findings at or above --fail-on, 2 the input could not be analyzed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a run, check it, and print what it holds.
    Analyze(AnalyzeArgs),
    /// List the rules, one line each.
    Rules {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show the documentation of one rule: what it checks, why, and its options.
    Explain {
        /// A rule id, as `postmortem rules` lists them.
        rule: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A run directory (with run.json) or a .safetensors file.
    pub run: PathBuf,
    /// Text for a person, or one JSON object for a script.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Runs a parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Analyze(args) => analyze(&args),
        Command::Rules { format } => list_rules(format),
        Command::Explain { rule } => explain(&rule),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("unknown rule {0:?}; `postmortem rules` lists them")]
    UnknownRule(String),
    #[error("could not write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn analyze(args: &AnalyzeArgs) -> Result<u8, CliError> {
    let run = Run::load(&args.run)?;
    let summary = Summary::of(&run);
    match args.format {
        Format::Text => {
            for warning in &summary.warnings {
                eprintln!("warning: {warning}");
            }
            let mut text = summary.to_text();
            // Warnings went to stderr above; keep stdout for the summary itself.
            text = text.lines().filter(|l| !l.starts_with("warning: ")).map(|l| format!("{l}\n")).collect();
            print!("{text}");
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
    }
    Ok(EXIT_OK)
}

fn list_rules(format: Format) -> Result<u8, CliError> {
    let registry = rules::registry();
    match format {
        Format::Text => {
            for doc in &registry {
                println!("{:<28} {}", doc.rule, doc.summary);
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&registry)?),
    }
    Ok(EXIT_OK)
}

fn explain(rule: &str) -> Result<u8, CliError> {
    let doc = rules::find(rule).ok_or_else(|| CliError::UnknownRule(rule.to_string()))?;
    println!("# {}\n\nChecklist item: {}\n\n{}", doc.rule, doc.checklist_item, doc.doc.trim());
    Ok(EXIT_OK)
}
