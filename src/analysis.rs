//! Runs the rules on a run and gathers what they say: the serializable
//! analysis that every exporter (text, JSON, Markdown, HTML) renders.

use crate::config::Config;
use crate::context::Context;
use crate::rules::{self, Finding, Options, Outcome, RuleResult, Section, Severity, Status};
use crate::run::Run;
use crate::summary::Summary;
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

pub fn analyze(run: &Run, config: &Config) -> Analysis {
    analyze_in(&Context::new(run), config)
}

/// Analyzes with a context the caller keeps, so that a report drawn from the
/// same context reuses the statistics the rules read (checkpoints are
/// streamed once).
pub fn analyze_in(ctx: &Context, config: &Config) -> Analysis {
    let run = ctx.run;
    let mut findings = Vec::new();
    let mut results = Vec::new();
    for rule in rules::all() {
        let meta = rule.meta();
        if !config.enabled(meta.id) {
            results.push(RuleResult { rule: meta.id, status: Status::Disabled, reason: None });
            continue;
        }
        let options = Options::new(meta.options, config.rules.get(meta.id));
        let (status, reason) = match rule.check(ctx, &options) {
            Outcome::Fired(mut found) => {
                findings.append(&mut found);
                (Status::Fired, None)
            }
            Outcome::Passed(why) => (Status::Passed, Some(why)),
            Outcome::Skipped(why) => (Status::Skipped, Some(why)),
        };
        results.push(RuleResult { rule: meta.id, status, reason });
    }
    let mut summary = Summary::of(run);
    summary.warnings.extend(ctx.warnings());
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
        // A bare weights file has no status to be incomplete about.
        incomplete: !run.is_complete() && !run.source.is_file(),
    };
    Analysis { run: summary, verdict, findings, rules: results }
}
