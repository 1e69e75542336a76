//! `postmortem audit`: every run under an archive, analyzed in parallel, one
//! row each, with learning-rate sweeps recognized. A run that cannot be read
//! is listed with its error and the audit goes on.

use crate::analysis::{analyze_in, Analysis};
pub use crate::archive::{Audit, AuditRow, Sweep};
use crate::config::Config;
use crate::import::{self, ImportOptions, SourceFormat};
use crate::run::Run;
use crate::series;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The state file of `--changed`, kept in the output folder.
pub const STATE_FILE: &str = ".postmortem-audit.json";

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

/// A file-system-safe folder name for a run's report, unique among `taken`.
pub fn safe_name(relative: &str, taken: &mut std::collections::BTreeSet<String>) -> String {
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
    while !taken.insert(candidate.clone()) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    candidate
}

/// Sizes and modification times of a run's files: changes when any file does.
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
    (parts.join("|"), newest)
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
    /// The plot files of each run's report.
    pub plot_files: crate::report::PlotFiles,
}

pub fn run(root: &Path, out: &Path, config: &Config, options: &AuditOptions) -> Result<Audit, std::io::Error> {
    std::fs::read_dir(root)?;
    let (found, walk_errors) = discover(root);
    let previous: BTreeMap<String, AuditRow> = if options.changed_only {
        std::fs::read(out.join(STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<AuditRow>>(&b).ok())
            .map(|rows| rows.into_iter().map(|r| (r.run.clone(), r)).collect())
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    let mut taken = std::collections::BTreeSet::new();
    let mut jobs = Vec::new();
    let mut left_out = 0;
    for f in found {
        let (print, newest) = fingerprint(&f.path);
        if options.since.is_some_and(|since| newest.is_none_or(|n| n < since)) {
            left_out += 1;
            continue;
        }
        let folder = safe_name(&f.relative, &mut taken);
        jobs.push((f, folder, print));
    }
    let bar = ProgressBar::with_draw_target(Some(jobs.len() as u64), if options.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed} {wide_msg}") {
        bar.set_style(style);
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.max(1)).build().map_err(std::io::Error::other)?;
    let reused = std::sync::atomic::AtomicUsize::new(0);
    let mut rows: Vec<AuditRow> = pool.install(|| {
        jobs.par_iter()
            .map(|(found, folder, print)| {
                let row = match previous.get(&found.relative) {
                    Some(old) if &old.fingerprint == print && old.report.as_ref().is_none_or(|r| out.join(r).is_file()) => {
                        reused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        old.clone()
                    }
                    _ => audit_one(found, folder, print, out, config, options.plot_files),
                };
                bar.inc(1);
                row
            })
            .collect()
    });
    bar.finish_and_clear();
    for (at, error) in walk_errors {
        rows.push(unreadable(&at, &at, error, String::new()));
    }
    rows.sort_by(|a, b| a.run.cmp(&b.run));
    link_controls(&mut rows);
    let sweeps = find_sweeps(&rows);
    Ok(Audit { archive: root.display().to_string(), rows, sweeps, left_out, reused: reused.into_inner() })
}

fn unreadable(run: &str, name: &str, error: String, fingerprint: String) -> AuditRow {
    AuditRow {
        run: run.to_string(),
        name: name.to_string(),
        verdict: "unreadable".into(),
        errors: 0,
        warnings: 0,
        infos: 0,
        rules: Vec::new(),
        final_loss: None,
        last_step: None,
        incomplete: false,
        report: None,
        error: Some(error),
        input_warnings: Vec::new(),
        hyperparameters: BTreeMap::new(),
        fingerprint,
        standard_dataset: None,
        controls: Vec::new(),
    }
}

/// Analyzes one run and writes its report; any failure becomes the row's error.
fn audit_one(found: &Found, folder: &str, print: &str, out: &Path, config: &Config, plot_files: crate::report::PlotFiles) -> AuditRow {
    let attempt = std::panic::catch_unwind(|| -> Result<AuditRow, String> {
        let run = import::load(&found.path, &ImportOptions { from: Some(found.format), rename: config.metrics.clone(), histogram_tags: config.histograms.clone(), ..Default::default() })
            .map_err(|e| e.to_string())?;
        let ctx = crate::context::Context::new(&run);
        let analysis = analyze_in(&ctx, config);
        let report_dir = out.join("runs").join(folder);
        crate::report::write_with(&ctx, &analysis, &report_dir, plot_files).map_err(|e| e.to_string())?;
        Ok(row_of(found, folder, print, &run, &analysis))
    });
    match attempt {
        Ok(Ok(row)) => row,
        Ok(Err(error)) => unreadable(&found.relative, &found.relative, error, print.to_string()),
        Err(_) => unreadable(&found.relative, &found.relative, "the analysis failed unexpectedly (a bug in postmortem)".into(), print.to_string()),
    }
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
        report: Some(format!("runs/{folder}/report.html")),
        error: None,
        input_warnings: analysis.warnings.iter().map(|w| w.to_string()).collect(),
        hyperparameters,
        fingerprint: print.to_string(),
        standard_dataset: run.meta.dataset.as_ref().and_then(|d| d.standard),
        controls: Vec::new(),
    }
}

/// The folder a run sits in, under the archive.
fn parent(run: &str) -> &str {
    run.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// Recognizes, for each run that no-standard-baseline fired on, the sibling
/// runs on a standard corpus: the control the rule asks for may exist already.
fn link_controls(rows: &mut [AuditRow]) {
    let standard: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.standard_dataset == Some(true) && r.error.is_none())
        .map(|r| (parent(&r.run).to_string(), r.run.clone()))
        .collect();
    for row in rows.iter_mut().filter(|r| r.rules.iter().any(|x| x == "no-standard-baseline")) {
        row.controls = standard.iter().filter(|(folder, run)| folder == parent(&row.run) && run != &row.run).map(|(_, run)| run.clone()).collect();
    }
}

/// Groups runs that share all hyperparameters but one numeric one (three or
/// more distinct values): the checklist's "tune the learning rate in
/// logarithmic steps", made visible.
pub fn find_sweeps(rows: &[AuditRow]) -> Vec<Sweep> {
    let keys: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.hyperparameters.keys()).collect();
    let mut sweeps = Vec::new();
    for key in keys {
        let mut groups: BTreeMap<String, Vec<&AuditRow>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.hyperparameters.get(key).and_then(|v| v.as_f64()).is_some()) {
            let mut rest = row.hyperparameters.clone();
            rest.remove(key);
            groups.entry(serde_json::to_string(&rest).unwrap_or_default()).or_default().push(row);
        }
        for members in groups.into_values() {
            let mut points: Vec<(f64, Option<f64>, String)> = members
                .iter()
                .filter_map(|r| Some((r.hyperparameters.get(key)?.as_f64()?, r.final_loss, r.run.clone())))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut values: Vec<f64> = points.iter().map(|p| p.0).collect();
            values.dedup();
            if values.len() < 3 {
                continue;
            }
            let diverged: Vec<String> = members
                .iter()
                .filter(|r| r.rules.iter().any(|x| x == "loss-diverging" || x == "nonfinite-values"))
                .map(|r| r.run.clone())
                .collect();
            let best = points
                .iter()
                .filter(|p| !diverged.contains(&p.2))
                .filter_map(|p| Some((p.1.filter(|l| l.is_finite())?, &p.2)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, run)| run.clone());
            sweeps.push(Sweep { parameter: key.clone(), points, best, diverged });
        }
    }
    sweeps
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
    fn dates() {
        let day = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() / 86_400;
        assert_eq!(day(parse_date("1970-01-01").unwrap()), 0);
        assert_eq!(day(parse_date("2000-03-01").unwrap()), 11_017);
        assert_eq!(day(parse_date("2026-11-27").unwrap()), 20_784);
        assert!(parse_date("2026-13-01").is_none() && parse_date("yesterday").is_none());
    }
}
