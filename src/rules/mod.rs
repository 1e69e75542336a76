//! The checklist as rules. Each rule lives in its own file; its doc comment
//! (What it does, Why it matters, Example, Options, Known problems) is the one
//! source of `postmortem explain`, `postmortem rules` and the report.

use crate::context::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

pub(crate) mod class_imbalance;
mod common;
mod dead_relus;
mod deep_model_not_learning;
pub(crate) mod exploding_gradients;
mod hockey_stick_loss;
mod init_scale_off;
mod initial_loss_mismatch;
mod inputs_not_centered;
mod loss_diverging;
mod loss_not_decreasing;
mod loss_oscillating;
mod loss_spikes;
mod no_standard_baseline;
mod nonfinite_values;
mod overfit_tiny_dataset;
mod overfitting;
mod prediction_collapse;
mod regularization_dominates;
mod saturated_activations;
mod stalled_weights;
mod untapped_pretrained_weights;
pub(crate) mod update_ratio;
pub(crate) mod vanishing_activations;
mod vanishing_gradients;
mod weight_variance_skew;
mod zero_or_symmetric_init;

#[cfg(test)]
mod rule_cases;
#[cfg(test)]
mod testing;

/// Every rule, in checklist order.
pub fn all() -> Vec<&'static dyn Rule> {
    vec![
        &overfit_tiny_dataset::OverfitTinyDataset,
        &no_standard_baseline::NoStandardBaseline,
        &inputs_not_centered::InputsNotCentered,
        &class_imbalance::ClassImbalance,
        &prediction_collapse::PredictionCollapse,
        &deep_model_not_learning::DeepModelNotLearning,
        &zero_or_symmetric_init::ZeroOrSymmetricInit,
        &init_scale_off::InitScaleOff,
        &vanishing_activations::VanishingActivations,
        &untapped_pretrained_weights::UntappedPretrainedWeights,
        &loss_not_decreasing::LossNotDecreasing,
        &loss_diverging::LossDiverging,
        &loss_oscillating::LossOscillating,
        &initial_loss_mismatch::InitialLossMismatch,
        &regularization_dominates::RegularizationDominates,
        &hockey_stick_loss::HockeyStickLoss,
        &saturated_activations::SaturatedActivations,
        &dead_relus::DeadRelus,
        &exploding_gradients::ExplodingGradients,
        &vanishing_gradients::VanishingGradients,
        &update_ratio::UpdateRatio,
        &weight_variance_skew::WeightVarianceSkew,
        &nonfinite_values::NonfiniteValues,
        &stalled_weights::StalledWeights,
        &overfitting::Overfitting,
        &loss_spikes::LossSpikes,
    ]
}

/// The rule with this id.
pub fn find(id: &str) -> Option<&'static dyn Rule> {
    all().into_iter().find(|r| r.meta().id == id)
}

/// Parts of the checklist, in the order a report shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    Data,
    Model,
    Loss,
    Activations,
    Gradients,
    Weights,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Data => "Data and inputs",
            Section::Model => "Model and initialization",
            Section::Loss => "Loss and learning rate",
            Section::Activations => "Activations",
            Section::Gradients => "Gradients",
            Section::Weights => "Weights",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One number a finding rests on, with what it was compared to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// What was measured: "loss at step 0", "dead units in fc2".
    pub what: String,
    #[serde(serialize_with = "postmortem_recorder::format::finite_or_null::serialize")]
    pub value: f64,
    /// The comparison that made the rule fire: ">= 4.61", "< 1e-3".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensor: Option<String>,
}

impl Evidence {
    pub fn new(what: impl Into<String>, value: f64) -> Self {
        Evidence { what: what.into(), value, threshold: None, step: None, tensor: None }
    }
    pub fn threshold(mut self, comparison: impl Into<String>) -> Self {
        self.threshold = Some(comparison.into());
        self
    }
    pub fn at(mut self, step: u64) -> Self {
        self.step = Some(step);
        self
    }
    pub fn tensor(mut self, name: impl Into<String>) -> Self {
        self.tensor = Some(name.into());
        self
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.what, crate::summary::format_number(self.value))?;
        if let Some(t) = &self.threshold {
            write!(f, " (threshold {t})")?;
        }
        if let Some(s) = self.step {
            write!(f, " at step {s}")?;
        }
        Ok(())
    }
}

/// What a rule found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub evidence: Vec<Evidence>,
    pub recommendation: String,
    /// Steps the finding points at, for plots and for the reader.
    pub steps: Vec<u64>,
    /// Tensors or layers the finding points at.
    pub tensors: Vec<String>,
}

impl Finding {
    pub fn new(rule: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity,
            message: message.into(),
            evidence: Vec::new(),
            recommendation: String::new(),
            steps: Vec::new(),
            tensors: Vec::new(),
        }
    }
    pub fn evidence(mut self, e: Evidence) -> Self {
        if let Some(s) = e.step {
            if !self.steps.contains(&s) {
                self.steps.push(s);
            }
        }
        if let Some(t) = &e.tensor {
            if !self.tensors.contains(t) {
                self.tensors.push(t.clone());
            }
        }
        self.evidence.push(e);
        self
    }
    pub fn recommend(mut self, text: impl Into<String>) -> Self {
        self.recommendation = text.into();
        self
    }
}

/// How a rule ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Fired(Vec<Finding>),
    /// Checked and fine; the text says what was checked.
    Passed(String),
    /// Not enough data; the text says what is missing and what to record.
    Skipped(String),
}

/// A rule's option: a threshold with its default.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OptionSpec {
    pub name: &'static str,
    pub default: f64,
    pub help: &'static str,
}

/// Option values for one rule: the defaults, overridden by configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: BTreeMap<String, f64>,
}

impl Options {
    pub fn new(specs: &[OptionSpec], overrides: Option<&BTreeMap<String, f64>>) -> Self {
        let mut values: BTreeMap<String, f64> = specs.iter().map(|s| (s.name.to_string(), s.default)).collect();
        if let Some(overrides) = overrides {
            for (k, v) in overrides {
                values.insert(k.clone(), *v);
            }
        }
        Options { values }
    }

    /// The option's value. Rules only ask for options they declare, and every
    /// declared option has a default, so a missing one is a bug: NaN makes it
    /// visible in evidence rather than crashing an analysis.
    pub fn get(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(f64::NAN)
    }
}

/// What `postmortem rules` shows of a rule, and the report's reference.
#[derive(Debug, Clone, Copy)]
pub struct RuleMeta {
    pub id: &'static str,
    pub checklist_item: &'static str,
    pub section: Section,
    /// The kinds of data the rule reads: when a file of one of them could not
    /// be read, a skipped rule names that file.
    pub needs: &'static [crate::error::DataSource],
    /// The doc comment of the rule's type, Markdown.
    pub doc: &'static str,
    pub options: &'static [OptionSpec],
}

impl RuleMeta {
    /// The first sentence under "What it does".
    pub fn summary(&self) -> String {
        let body = doc_section(self.doc, "What it does").unwrap_or_default();
        let first = body.split("\n\n").next().unwrap_or_default();
        first.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The text under a `## heading` of a rule doc, trimmed, without the one
/// leading space that doc comments give every line.
pub fn doc_section(doc: &str, heading: &str) -> Option<String> {
    let marker = format!("## {heading}");
    let start = doc.find(&marker)? + marker.len();
    let rest = &doc[start..];
    let end = rest.find("\n ## ").or_else(|| rest.find("\n## ")).unwrap_or(rest.len());
    let body: Vec<&str> = rest[..end].lines().map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
    Some(body.join("\n").trim().to_string())
}

/// A check of the checklist.
pub trait Rule: Sync {
    fn meta(&self) -> RuleMeta;
    fn check(&self, ctx: &Context, options: &Options) -> Outcome;
}

/// Declares a rule type whose doc comment is its documentation:
/// `declare_rule! { /// docs... pub struct Name { id: "...", checklist: "...", section: ..., needs: [...], options: [...] } }`
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            id: $id:literal,
            checklist: $item:literal,
            section: $section:ident,
            needs: [$($need:ident),* $(,)?],
            options: [$($opt:ident: $default:expr => $help:literal),* $(,)?] $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl $name {
            pub const META: $crate::rules::RuleMeta = $crate::rules::RuleMeta {
                id: $id,
                checklist_item: $item,
                section: $crate::rules::Section::$section,
                needs: &[$($crate::error::DataSource::$need),*],
                doc: concat!($($doc, "\n"),*),
                options: &[$($crate::rules::OptionSpec { name: stringify!($opt), default: $default, help: $help }),*],
            };
        }
    };
}
pub(crate) use declare_rule;

/// The result of one rule on one run.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Fired,
    Passed,
    Skipped,
    /// Turned off by --select/--ignore or configuration.
    Disabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_documents_itself() {
        let rules = all();
        assert!(rules.len() >= 26);
        let mut ids: Vec<&str> = rules.iter().map(|r| r.meta().id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rules.len(), "duplicate rule ids");
        for rule in rules {
            let meta = rule.meta();
            assert!(meta.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", meta.id);
            for heading in ["What it does", "Why it matters", "Example", "Options", "Known problems"] {
                let body = doc_section(meta.doc, heading);
                assert!(body.is_some_and(|b| !b.is_empty()), "{}: no section {heading:?}", meta.id);
            }
            assert!(!meta.summary().is_empty());
            let options_doc = doc_section(meta.doc, "Options").unwrap_or_default();
            for option in meta.options {
                assert!(options_doc.contains(option.name), "{}: option {} not documented", meta.id, option.name);
            }
        }
    }
}
