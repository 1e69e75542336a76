//! The checklist as rules. Each rule lives in its own file; its doc comment is
//! the one source of `postmortem explain`, `postmortem rules` and the report.

use serde::Serialize;

/// What `postmortem rules` and `postmortem explain` show of a rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDoc {
    /// Stable public id, kebab-case.
    pub rule: &'static str,
    /// The checklist item the rule implements.
    pub checklist_item: &'static str,
    /// First line of the doc.
    pub summary: &'static str,
    /// The whole doc, Markdown.
    #[serde(skip)]
    pub doc: &'static str,
}

/// Every rule, in checklist order.
pub fn registry() -> Vec<RuleDoc> {
    Vec::new()
}

/// The rule with this id.
pub fn find(rule: &str) -> Option<RuleDoc> {
    registry().into_iter().find(|d| d.rule == rule)
}
