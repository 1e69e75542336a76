//! Runs the rules on a run and gathers what they say: the serializable
//! analysis that every exporter (text, JSON, Markdown, HTML) renders.

use crate::config::Config;
use crate::context::Context;
use crate::error::Warning;
use crate::rules::{self, Finding, Options, Outcome, RuleResult, Section, Severity, Status};
use crate::run::Run;
use crate::summary::Summary;
use rayon::prelude::*;
use serde::Serialize;

/// Everything postmortem concluded about one run.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub run: Summary,
    pub verdict: Verdict,
    /// In checklist order, then as each rule reported them.
    pub findings: Vec<Finding>,
    /// One entry per rule, in checklist order.
    pub rules: Vec<RuleResult>,
    /// What was wrong with the input but did not stop the analysis: files
    /// that could not be read (with `lost` saying which data went with
    /// them), lines and fields skipped. The same list as `run.warnings`.
    pub warnings: Vec<Warning>,
}

impl Analysis {
    /// Names the run's files as `show` gives them: a run fetched from object
    /// storage is named by its URL, not by the scratch folder it was read from.
    pub fn show_paths(&mut self, show: impl Fn(&str) -> String) {
        self.run.run.source = show(&self.run.run.source);
        for warning in self.warnings.iter_mut().chain(self.run.warnings.iter_mut()) {
            warning.file = show(&warning.file.to_string_lossy()).into();
            warning.message = show(&warning.message);
        }
        for reason in self.rules.iter_mut().filter_map(|r| r.reason.as_mut()) {
            *reason = show(reason);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The highest severity found, or "clean".
    pub status: &'static str,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub skipped: usize,
    /// The run did not say it finished.
    pub incomplete: bool,
}

impl Analysis {
    pub fn highest(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The section of a finding's rule.
    pub fn section_of(finding: &Finding) -> Section {
        rules::find(finding.rule).map_or(Section::Data, |r| r.meta().section)
    }
}

/// A skipped rule's reason, naming the files it would have read that could
/// not be read: then the data may exist, and the run is not to blame.
fn lost_data_note(why: String, rule: &str, warnings: &[Warning]) -> String {
    let needs = rules::find(rule).map_or(&[][..], |r| r.meta().needs);
    let lost: Vec<String> = warnings
        .iter()
        .filter(|w| w.lost.is_some_and(|source| needs.contains(&source)))
        .map(|w| w.file.file_name().map_or_else(|| w.file.display().to_string(), |n| n.to_string_lossy().into_owned()))
        .collect();
    match lost.as_slice() {
        [] => why,
        [one] => format!("{why} ({one} could not be read; see the warnings)"),
        many => format!("{why} ({} files could not be read: {}; see the warnings)", many.len(), many.join(", ")),
    }
}

pub fn analyze(run: &Run, config: &Config) -> Analysis {
    analyze_in(&Context::new(run), config)
}

/// Analyzes with a context the caller keeps, so that a report drawn from the
/// same context reuses the statistics the rules read (checkpoints are
/// streamed once).
pub fn analyze_in(ctx: &Context, config: &Config) -> Analysis {
    let run = ctx.run;
    // The context's derived data (statistics streamed from checkpoints) is
    // computed first, on all cores: computed lazily inside a parallel rule,
    // the other rules would block the pool's threads waiting for it.
    ctx.prepare();
    // Rules are independent and read the shared context, so they run in
    // parallel; their results are gathered in checklist order.
    // The run's summary is independent of them too.
    let (outcomes, mut summary): (Vec<(&'static str, Option<Outcome>)>, Summary) = rayon::join(
        || {
            rules::all()
                .into_par_iter()
                .map(|rule| {
                    let meta = rule.meta();
                    if !config.enabled(meta.id) {
                        return (meta.id, None);
                    }
                    let options = Options::new(meta.options, config.rules.get(meta.id));
                    (meta.id, Some(rule.check(ctx, &options)))
                })
                .collect()
        },
        || Summary::of(run),
    );
    summary.warnings.extend(ctx.warnings());
    let warnings = summary.warnings.clone();
    let mut findings = Vec::new();
    let mut results = Vec::new();
    for (rule, outcome) in outcomes {
        let (status, reason) = match outcome {
            None => (Status::Disabled, None),
            Some(Outcome::Fired(mut found)) => {
                findings.append(&mut found);
                (Status::Fired, None)
            }
            Some(Outcome::Passed(why)) => (Status::Passed, Some(why)),
            Some(Outcome::Skipped(why)) => (Status::Skipped, Some(lost_data_note(why, rule, &warnings))),
        };
        results.push(RuleResult { rule, status, reason });
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let highest = findings.iter().map(|f| f.severity).max();
    let verdict = Verdict {
        status: match highest {
            Some(Severity::Error) => "error",
            Some(Severity::Warning) => "warning",
            Some(Severity::Info) => "info",
            None => "clean",
        },
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        skipped: results.iter().filter(|r| r.status == Status::Skipped).count(),
        // A bare weights file has no status to be incomplete about, and
        // neither has a log whose format keeps none (TensorBoard, CSVs).
        incomplete: {
            let no_status_to_keep = run.source.is_file() || (run.meta.status.is_none() && summary.run.imported_from.is_some());
            !run.is_complete() && !no_status_to_keep
        },
    };
    Analysis { run: summary, verdict, findings, rules: results, warnings }
}
