//! The command line: argument types (clap) and what each command does.
//! `main.rs` only parses and calls [`run`].

use crate::analysis;
use crate::config::{Config, ConfigError, CONFIG_FILE};
use crate::error::LoadError;
use crate::export;
use crate::rules::{self, doc_section, Severity};
use crate::import::{self, ImportOptions, SourceFormat};
use crate::store::{self, Mirror, Remote};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::{Path, PathBuf};
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
        that has only weights.\n\n\
        The logs other tools write are read as they are (docs/IMPORT.md): a Hugging Face Trainer \
        output folder or trainer_state.json, a Lightning or Keras CSV log, an MLflow run folder or \
        database, TensorBoard event files, a W&B run folder, or a printed training log. The format is detected; \
        --from names it.\n\n\
        Each rule applies one item of the neural-network debugging checklist (inputs, \
        initialization, loss, activations, gradients, weights). A rule that lacks the data it \
        needs says so and what to record.",
    after_help = "Examples:\n  postmortem analyze runs/mlp-3\n  postmortem analyze runs/mlp-3 --format json > mlp-3.json\n  \
        postmortem analyze outputs/checkpoint-500          (a Hugging Face Trainer checkpoint)\n  \
        postmortem analyze lightning_logs/version_3/metrics.csv\n  \
        postmortem analyze wandb/latest-run                (the newest W&B run)\n  \
        postmortem analyze s3://bucket/runs/mlp-3          (credentials from AWS_* variables)\n  \
        postmortem audit s3://bucket/runs --out audits/today\n  \
        postmortem convert training.log --out runs/converted\n  \
        postmortem inspect train.log                       (how a log is read: formats, series, roles)\n  \
        postmortem analyze runs/mlp-3 --ignore untapped-pretrained-weights --set loss-diverging.factor=3\n  \
        postmortem rules\n  postmortem explain dead-relus\n\n\
        Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 the input could not be analyzed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a run against the debugging checklist and report what went wrong.
    Analyze(AnalyzeArgs),
    /// Analyze every run under an archive folder, in parallel, and rank them.
    Audit(AuditArgs),
    /// Show how a path is read, before any verdict: the format, each series
    /// with its role (training loss, validation loss, ...), its points and
    /// values, the hyperparameters, and what the rules would still need.
    Inspect(InspectArgs),
    /// List the rules, one line each.
    Rules {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write any supported log as a run in postmortem's own format (docs/FORMAT.md).
    Convert(ConvertArgs),
    /// Show the documentation of one rule: what it checks, why, and its options.
    Explain {
        /// A rule id, as `postmortem rules` lists them.
        rule: String,
    },
}

/// How to read the input: the format and what some formats need.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// The format of the input, instead of detecting it.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub from: Option<SourceFormat>,
    /// For a text log no preset reads: a regular expression with a named
    /// group `step` and one named group per metric, e.g.
    /// 'epoch (?P<step>\d+) .* loss (?P<loss>[0-9.]+)'.
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    /// Of a file holding several fits (appended Keras CSVs, a log of several
    /// trainings), the one to read: 1 is the first; default the last.
    #[arg(long, value_name = "N")]
    pub fit: Option<usize>,
}

impl SourceArgs {
    fn options(&self, config: &Config) -> ImportOptions {
        ImportOptions {
            from: self.from,
            rename: config.metrics.clone(),
            pattern: self.pattern.clone(),
            fit: self.fit,
            histogram_tags: config.histograms.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// A run or log of any supported format (see `analyze --help`).
    pub source: PathBuf,
    /// The run directory to write; it must not exist or be empty.
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub input: SourceArgs,
    /// A configuration file: its [metrics] table renames metrics, its
    /// [histograms] table names histogram tags no convention covers.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A run or log of any supported format (see `analyze --help`).
    pub path: PathBuf,
    #[command(flatten)]
    pub input: SourceArgs,
    /// Text for a person, or one JSON object for a script.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// A configuration file: its [metrics] table renames metrics.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A run: a postmortem run directory or .safetensors file, a Hugging Face
    /// Trainer output folder, checkpoint folder or trainer_state.json, a
    /// Lightning or Keras CSV, an MLflow run folder or database, TensorBoard
    /// event files, a W&B run folder (wandb/latest-run), or a training log.
    /// Also an object-store URL (s3://, gs://, az://, https://; credentials
    /// from the cloud's environment, docs/SCALE.md).
    pub run: PathBuf,
    #[command(flatten)]
    pub input: SourceArgs,
    /// Text for a person, or one JSON object for a script (docs/OUTPUT.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with 1 when a finding is at least this severe ("never": always 0).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Run only these rules (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Skip these rules (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Override a rule option, e.g. `--set loss-diverging.factor=3` (repeatable).
    #[arg(long, value_name = "RULE.OPTION=VALUE")]
    pub set: Vec<String>,
    /// A configuration file; default: postmortem.toml in the run directory, if any.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write the report here: report.html (self-contained), report.md,
    /// report.json and plots/*.svg|png. Must be outside the run directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    /// A folder of runs, of any supported format and mixed: postmortem run
    /// folders, Hugging Face output folders (one run each, however many
    /// checkpoints), Lightning version folders, MLflow runs, CSV and text
    /// logs, and .safetensors files outside runs. Symbolic links are not
    /// followed. Also an object-store URL (s3://bucket/prefix, gs://, az://,
    /// https://): runs are fetched one at a time, checkpoints by ranged
    /// requests (docs/SCALE.md).
    #[arg(required = true)]
    pub archive: Option<PathBuf>,
    /// Where to write index.html, summary.csv, summary.json, summary.parquet
    /// and runs/<run>/: a folder, or an object-store URL to upload to.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Audit one share of the runs, for a job array (Slurm, Kubernetes
    /// Indexed Jobs): hash:K/N by a stable hash of each run's path, the same
    /// on every machine, or count:K/N for the K-th of N contiguous shares in
    /// sorted order (K from 1). Each share writes its own --out folder;
    /// `postmortem audit merge` joins them (docs/SCALE.md).
    #[arg(long, value_name = "hash:K/N")]
    pub partition: Option<crate::audit::Partition>,
    /// Runs analyzed at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Which runs get a report under runs/ (report.html, report.md,
    /// report.json, plots/*.svg): those with a finding (default), all, or
    /// none. Every run is a row of the index and the summaries either way.
    #[arg(long, value_enum, default_value_t = crate::audit::Reports::Findings)]
    pub reports: crate::audit::Reports,
    /// Also write PNG copies of each report's plots (SVG is always written);
    /// PNGs take most of an audit's time and about 1 MB a run.
    #[arg(long)]
    pub png: bool,
    /// Exit with 1 when a run has a finding this severe, or could not be read.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Only runs with a file modified on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Reuse the results of runs whose files have not changed since the last
    /// audit into the same --out folder.
    #[arg(long)]
    pub changed: bool,
    /// A configuration file for every run (see `analyze --config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Skip these rules (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// Join the output folders of a partitioned audit (`audit --partition`)
    /// into one: the index, summaries and sweeps over every run, as one
    /// process would have written them. Missing or repeated shares are named.
    Merge {
        /// The --out folders (or URLs) of the partitions.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// Where to write the merged index.html, summary.csv, summary.json and runs/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Exit with 1 when a run has a finding this severe, or could not be
        /// read, or a share is missing.
        #[arg(long, value_enum, default_value_t = FailOn::Error)]
        fail_on: FailOn,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

/// Runs a parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Analyze(args) => analyze(&args),
        Command::Audit(args) => audit(&args),
        Command::Convert(args) => convert(&args),
        Command::Inspect(args) => inspect(&args),
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
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("unknown rule {0:?}; `postmortem rules` lists them")]
    UnknownRule(String),
    #[error("could not write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("could not write CSV: {0}")]
    Csv(String),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("--since {0:?}: expected a day as YYYY-MM-DD")]
    BadDate(String),
    #[error("--out {}: inside the run directory {}; postmortem never writes into a run", out.display(), run.display())]
    OutInsideRun { out: PathBuf, run: PathBuf },
    #[error("--out {}: not empty; convert writes a new run directory", .0.display())]
    OutNotEmpty(PathBuf),
    #[error(transparent)]
    Merge(#[from] crate::audit::MergeError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Usage(String),
}

/// A scratch folder for work on object storage, removed when dropped:
/// inside `--out` when that is a local folder, so that nothing is written
/// elsewhere, else in the system's temporary folder.
struct Scratch(PathBuf);

impl Scratch {
    /// A scratch folder when any of `inputs` or `out` is a URL.
    fn for_urls<'a>(inputs: impl IntoIterator<Item = &'a Path>, out: Option<&'a Path>) -> Result<Option<Scratch>, CliError> {
        let mut paths = inputs.into_iter().chain(out);
        if paths.any(store::is_url) { Scratch::new(out).map(Some) } else { Ok(None) }
    }

    fn new(out: Option<&Path>) -> Result<Scratch, CliError> {
        let base = match out {
            Some(out) if !store::is_url(out) => out.to_path_buf(),
            _ => std::env::temp_dir(),
        };
        let dir = base.join(format!(".postmortem-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Scratch(dir))
    }

    /// The listing of a URL laid out in the scratch folder (the `n`-th of
    /// the command), with the objects `keep` names fetched.
    fn mirror(&self, url: &Path, n: usize, keep: impl Fn(&str) -> bool) -> Result<Mirror, CliError> {
        let url = url.to_string_lossy();
        // The folder keeps the URL's last name: a run is named after it.
        let name = url.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty() && !n.starts_with('.')).unwrap_or("archive");
        Ok(Mirror::create(Remote::open(&url)?, self.0.join(n.to_string()).join(name), keep)?)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a command writes: `--out` itself, or a scratch folder uploaded to
/// the `--out` URL by [`Output::finish`].
struct Output {
    local: PathBuf,
    remote: Option<Mirror>,
}

impl Output {
    /// `keep`: what of an earlier output under the URL is read back.
    /// `scratch` is there when `out` is a URL.
    fn new(out: &Path, scratch: Option<&Scratch>, keep: impl Fn(&str) -> bool) -> Result<Output, CliError> {
        let Some(scratch) = scratch.filter(|_| store::is_url(out)) else {
            std::fs::create_dir_all(out).map_err(io(out))?;
            return Ok(Output { local: out.to_path_buf(), remote: None });
        };
        let mirror = scratch.mirror(out, usize::MAX, keep)?;
        Ok(Output { local: mirror.root().to_path_buf(), remote: Some(mirror) })
    }

    /// Uploads what was written, when `--out` is a URL.
    fn finish(&self) -> Result<(), CliError> {
        if let Some(mirror) = &self.remote {
            mirror.upload_written()?;
        }
        Ok(())
    }

    /// A file of the output as the user names it.
    fn shown(&self, name: &str) -> String {
        match &self.remote {
            Some(mirror) => format!("{}/{name}", mirror.url()),
            None => self.local.join(name).display().to_string(),
        }
    }
}

/// The configuration of `--config FILE`, or the defaults.
fn config_file(path: Option<&std::path::Path>) -> Result<Config, CliError> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

fn load_config(args: &AnalyzeArgs, run: &Path) -> Result<Config, CliError> {
    let in_run = run.join(CONFIG_FILE);
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        // A broken file in the run costs its settings, not the analysis.
        None if run.is_dir() && in_run.is_file() => Config::load(&in_run).unwrap_or_else(|e| {
            eprintln!("warning: {e}; ignored, the defaults are used");
            Config::default()
        }),
        None => Config::default(),
    };
    config.merge_cli(&args.select, &args.ignore, &args.set)?;
    Ok(config)
}

fn analyze(args: &AnalyzeArgs) -> Result<u8, CliError> {
    let scratch = Scratch::for_urls([args.run.as_path()], args.out.as_deref())?;
    // A run in object storage: its listing laid out locally, then the one
    // run found there fetched (not every run under a folder of several).
    let (mirror, _fetched) = match &scratch {
        Some(scratch) if store::is_url(&args.run) => {
            let mirror = scratch.mirror(&args.run, 0, store::discovery_reads)?;
            let target = mirror.target();
            let at = import::detect(&target).map(|(_, at)| at).unwrap_or(target);
            let fetched = mirror.fetch(&at)?;
            (Some(mirror), Some(fetched))
        }
        _ => (None, None),
    };
    let run_path = mirror.as_ref().map_or_else(|| args.run.clone(), Mirror::target);
    let shown = |text: &str| mirror.as_ref().map_or_else(|| text.to_string(), |m| m.shown(text));
    let config = load_config(args, &run_path)?;
    if let Some(out) = args.out.as_deref().filter(|out| mirror.is_none() && !store::is_url(out)) {
        refuse_out_inside_run(out, &args.run)?;
    }
    let run = import::load(&run_path, &args.input.options(&config)).map_err(|e| match &mirror {
        Some(mirror) => CliError::Usage(mirror.shown(&e.to_string())),
        None => CliError::Load(e),
    })?;
    let ctx = crate::context::Context::new(&run);
    let mut analysis = analysis::analyze_in(&ctx, &config);
    analysis.show_paths(shown);
    if let Some(out) = &args.out {
        let output = Output::new(out, scratch.as_ref(), |_| false)?;
        crate::report::write(&ctx, &analysis, &output.local)?;
        output.finish()?;
    }
    match args.format {
        // The text lists the warnings itself; a script reading JSON gets them
        // in the object and a person watching it on stderr.
        Format::Text => print!("{}", export::text::render(&analysis)),
        Format::Json => {
            for warning in &analysis.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", export::json::render(&analysis)?)
        }
    }
    let threshold = config.fail_on.or(args.fail_on.threshold());
    let failed = match (args.fail_on, threshold) {
        (FailOn::Never, _) | (_, None) => false,
        (_, Some(t)) => analysis.highest().is_some_and(|s| s >= t),
    };
    Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
}

fn audit(args: &AuditArgs) -> Result<u8, CliError> {
    use std::io::IsTerminal;
    if let Some(AuditAction::Merge { parts, out, fail_on }) = &args.action {
        return merge(parts, out, *fail_on);
    }
    let (Some(archive), Some(out)) = (&args.archive, &args.out) else {
        return Err(CliError::Usage("audit needs ARCHIVE and --out DIR".into()));
    };
    let mut config = config_file(args.config.as_deref())?;
    config.merge_cli(&[], &args.ignore, &[])?;
    let since = match &args.since {
        Some(text) => Some(crate::audit::parse_date(text).ok_or_else(|| CliError::BadDate(text.clone()))?),
        None => None,
    };
    let options = crate::audit::AuditOptions {
        jobs: args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: !args.quiet && std::io::stderr().is_terminal(),
        since,
        changed_only: args.changed,
        png: args.png,
        reports: args.reports,
        partition: args.partition,
    };
    let scratch = Scratch::for_urls([archive.as_path()], Some(out))?;
    // An earlier audit under an --out URL: its state is read back for
    // --changed, and its reports stay where they are.
    let output = Output::new(out, scratch.as_ref(), |name| args.changed && name == crate::audit::STATE_FILE)?;
    let result = match &scratch {
        Some(scratch) if store::is_url(archive) => {
            let mirror = scratch.mirror(archive, 0, store::discovery_reads)?;
            crate::audit::run_archive(&mirror, &output.local, &config, &options).map_err(io(archive))?
        }
        _ => crate::audit::run(archive, &output.local, &config, &options).map_err(io(archive))?,
    };
    write_audit(&output.local, &result)?;
    if let Some(partition) = args.partition {
        let part = crate::audit::Part { archive: result.archive.clone(), partition, left_out: result.left_out, reused: result.reused };
        let path = output.local.join(crate::audit::PART_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&part)? + "\n").map_err(io(&path))?;
    }
    output.finish()?;
    let what = args.partition.map_or_else(String::new, |p| format!(" (partition {p})"));
    report_audit(&result, &what, &output.shown("index.html"));
    Ok(audit_exit(&result, args.fail_on))
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_path_buf();
    move |source| CliError::Io { path, source }
}

/// An audit's output files: index.html, summary.csv, summary.json and the
/// state `--changed` reads.
fn write_audit(out: &std::path::Path, result: &crate::audit::Audit) -> Result<(), CliError> {
    let write = |name: &str, text: String| std::fs::write(out.join(name), text).map_err(io(&out.join(name)));
    // Pages of an earlier, larger audit into the same folder go first.
    for entry in std::fs::read_dir(out).map_err(io(out))?.flatten() {
        if export::audit_html::is_page_name(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    for (name, page) in export::audit_html::render_pages(result) {
        write(&name, page)?;
    }
    // The style sheet the run reports under runs/ share.
    write(crate::report::AUDIT_STYLESHEET, export::html::STYLE.trim_start().to_string())?;
    // Streamed, a row at a time: a large archive's rows are hundreds of
    // megabytes as text.
    let create = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, CliError> {
        let path = out.join(name);
        Ok(std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?))
    };
    let flushed = |name: &str, mut file: std::io::BufWriter<std::fs::File>| std::io::Write::flush(&mut file).map_err(io(&out.join(name)));
    let mut csv = create("summary.csv")?;
    export::audit_csv::write(result, &mut csv).map_err(|e| CliError::Csv(e.to_string()))?;
    flushed("summary.csv", csv)?;
    #[cfg(feature = "parquet")]
    {
        let mut parquet = create("summary.parquet")?;
        export::audit_parquet::write(result, &mut parquet).map_err(|e| CliError::Usage(format!("could not write summary.parquet: {e}")))?;
        flushed("summary.parquet", parquet)?;
    }
    let mut json = create("summary.json")?;
    let mut serializer = serde_json::Serializer::pretty(&mut json);
    serde::Serializer::collect_seq(&mut serializer, result.rows.iter())?;
    std::io::Write::write_all(&mut json, b"\n").map_err(io(&out.join("summary.json")))?;
    flushed("summary.json", json)?;
    // The spool the rows were written to is the state --changed reads.
    let state = out.join(crate::audit::STATE_FILE);
    match result.rows.spool_path() {
        Some(spool) => std::fs::rename(spool, &state).map_err(io(&state)),
        None => Ok(()),
    }
}

/// The audit's one-line summary, and a warning per unreadable run.
fn report_audit(result: &crate::audit::Audit, what: &str, index: &str) {
    let counts: Vec<String> = result.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    let mut extra = String::new();
    if result.left_out > 0 {
        extra.push_str(&format!(", {} left out by --since", result.left_out));
    }
    if result.reused > 0 {
        extra.push_str(&format!(", {} unchanged since the last audit", result.reused));
    }
    println!("audited {} runs{what}: {}{extra}; see {index}", result.rows.len(), counts.join(", "));
    for row in result.rows.iter().filter(|r| r.error.is_some()) {
        eprintln!("warning: {}: {}", row.run, row.error.as_deref().unwrap_or_default());
    }
}

fn merge(parts: &[PathBuf], out: &Path, fail_on: FailOn) -> Result<u8, CliError> {
    let scratch = Scratch::for_urls(parts.iter().map(PathBuf::as_path), Some(out))?;
    let output = Output::new(out, scratch.as_ref(), |_| false)?;
    // Parts under URLs are fetched whole: they are reports, not runs.
    let mut mirrors = Vec::new();
    let mut local_parts = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        match &scratch {
            Some(scratch) if store::is_url(part) => {
                let mirror = scratch.mirror(part, n + 1, |_| true)?;
                local_parts.push(mirror.root().to_path_buf());
                mirrors.push(mirror);
            }
            _ => local_parts.push(part.clone()),
        }
    }
    let (result, coverage) = crate::audit::merge(&local_parts, &output.local)?;
    write_audit(&output.local, &result)?;
    output.finish()?;
    report_audit(&result, &format!(" (merged from {} of {} partitions)", coverage.total - coverage.missing.len(), coverage.total), &output.shown("index.html"));
    let list = |shares: &[usize]| shares.iter().map(|i| format!("{i}/{}", coverage.total)).collect::<Vec<_>>().join(", ");
    if !coverage.missing.is_empty() {
        eprintln!("warning: partitions missing: {}; their runs are not in the index", list(&coverage.missing));
    }
    if !coverage.duplicated.is_empty() {
        eprintln!("warning: partitions given more than once: {}; the first of each was used", list(&coverage.duplicated));
    }
    let code = audit_exit(&result, fail_on);
    Ok(if !coverage.missing.is_empty() && fail_on != FailOn::Never { EXIT_FINDINGS } else { code })
}

/// Exit code of an audit: 1 when a run is at or above `fail_on`.
fn audit_exit(result: &crate::audit::Audit, fail_on: FailOn) -> u8 {
    let threshold = match fail_on {
        FailOn::Never => None,
        other => other.threshold(),
    };
    let severity = |verdict: &str| match verdict {
        "error" | "unreadable" => Some(Severity::Error),
        "warning" => Some(Severity::Warning),
        "info" => Some(Severity::Info),
        _ => None,
    };
    let failed = threshold.is_some_and(|t| result.counts().iter().any(|&(verdict, n)| n > 0 && severity(verdict).is_some_and(|s| s >= t)));
    if failed {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn inspect(args: &InspectArgs) -> Result<u8, CliError> {
    let config = config_file(args.config.as_deref())?;
    let options = args.input.options(&config);
    let (format, detected) = match options.from {
        Some(format) => (format, "named by --from".to_string()),
        None => {
            let (format, at) = import::detect(&args.path)?;
            let why = if at == args.path { "detected".to_string() } else { format!("detected at {}", at.display()) };
            (format, why)
        }
    };
    let run = import::load(&args.path, &options)?;
    let analysis = analysis::analyze(&run, &config);
    let inspection = crate::inspect::Inspection::of(&run, format, detected, &analysis);
    match args.format {
        Format::Text => print!("{}", inspection.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&inspection)?),
    }
    Ok(EXIT_OK)
}

fn convert(args: &ConvertArgs) -> Result<u8, CliError> {
    let config = config_file(args.config.as_deref())?;
    refuse_out_inside_run(&args.out, &args.source)?;
    if std::fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CliError::OutNotEmpty(args.out.clone()));
    }
    let run = import::load(&args.source, &args.input.options(&config))?;
    for warning in &run.warnings {
        eprintln!("warning: {warning}");
    }
    let files = export::native::render(&run)?;
    for left_out in &files.left_out {
        eprintln!("warning: checkpoint left out: {left_out}");
    }
    std::fs::create_dir_all(args.out.join(postmortem_recorder::format::CHECKPOINT_DIR)).map_err(io(&args.out))?;
    for (name, text) in &files.texts {
        std::fs::write(args.out.join(name), text).map_err(io(&args.out.join(name)))?;
    }
    for (from, name) in &files.checkpoints {
        let to = args.out.join(postmortem_recorder::format::CHECKPOINT_DIR).join(name);
        std::fs::copy(from, &to).map_err(io(&to))?;
    }
    println!(
        "wrote {}: {} metric rows, {} tensor records, {} checkpoints",
        args.out.display(),
        run.metrics.rows(),
        run.tensors.len(),
        files.checkpoints.len()
    );
    Ok(EXIT_OK)
}

/// The report goes anywhere but into the run being analyzed.
fn refuse_out_inside_run(out: &std::path::Path, run: &std::path::Path) -> Result<(), CliError> {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let run_dir = if run.is_file() { run.parent().map(absolute).unwrap_or_default() } else { absolute(run) };
    let run_dir = run_dir.canonicalize().unwrap_or(run_dir);
    // The output may not exist yet: resolve its nearest existing ancestor.
    let mut probe = absolute(out);
    let mut tail = Vec::new();
    while !probe.exists() {
        match (probe.file_name().map(|n| n.to_os_string()), probe.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                probe = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = probe.canonicalize().unwrap_or(probe);
    resolved.extend(tail.iter().rev());
    if !run.is_file() && resolved.starts_with(&run_dir) {
        return Err(CliError::OutInsideRun { out: out.to_path_buf(), run: run.to_path_buf() });
    }
    Ok(())
}

#[derive(Serialize)]
struct RuleListing {
    rule: &'static str,
    checklist_item: &'static str,
    section: rules::Section,
    summary: String,
    /// The data it reads (`metadata`, `metrics`, `tensor_stats`, `checkpoints`).
    needs: &'static [crate::error::DataSource],
    options: &'static [rules::OptionSpec],
}

fn list_rules(format: Format) -> Result<u8, CliError> {
    let listing: Vec<RuleListing> = rules::all()
        .into_iter()
        .map(|r| {
            let m = r.meta();
            RuleListing { rule: m.id, checklist_item: m.checklist_item, section: m.section, summary: m.summary(), needs: m.needs, options: m.options }
        })
        .collect();
    match format {
        Format::Text => {
            for r in &listing {
                println!("{:<28} {:<36} {}", r.rule, r.checklist_item, r.summary);
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
    }
    Ok(EXIT_OK)
}

fn explain(rule: &str) -> Result<u8, CliError> {
    let found = rules::find(rule).ok_or_else(|| CliError::UnknownRule(rule.to_string()))?;
    let meta = found.meta();
    println!("# {}\n\nChecklist item: {}\n", meta.id, meta.checklist_item);
    for heading in ["What it does", "Why it matters", "Example", "Options", "Known problems"] {
        if let Some(body) = doc_section(meta.doc, heading) {
            println!("## {heading}\n{body}\n");
        }
    }
    Ok(EXIT_OK)
}
