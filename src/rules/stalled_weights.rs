use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;

declare_rule! {
    /// ## What it does
    /// Finds parameters that never change: every recorded update is exactly
    /// zero, or the weight statistics are identical at every recorded step
    /// (from `tensors.jsonl` or the checkpoints).
    ///
    /// ## Why it matters
    /// A parameter that never changes was not given to the optimizer (built
    /// after the optimizer, filtered out by name, `requires_grad` off), or its
    /// gradient is always zero (dead units, a detached branch). Unless it was
    /// frozen on purpose, part of the model is not training.
    ///
    /// ## Example
    /// fc2's weight and bias left out of the optimizer's parameter list are
    /// identical at all 31 recorded steps and fire.
    ///
    /// ## Options
    /// - `min_records` (default 3): how many recorded steps a parameter needs
    ///   before it can be judged.
    ///
    /// ## Known problems
    /// Parameters frozen on purpose (a pretrained backbone) fire too: ignore
    /// the rule for such runs. Batch normalization's running statistics,
    /// saved with the weights, are reported apart: they never change when the
    /// model trains in evaluation mode (`model.eval()` left on).
    pub struct StalledWeights {
        id: "stalled-weights",
        checklist: "Stalled parameters (beyond the checklist)",
        section: Weights,
        needs: [TensorStats, Checkpoints],
        options: [min_records: 3.0 => "recorded steps needed to judge a parameter"],
    }
}

impl Rule for StalledWeights {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let min_records = options.get("min_records").max(2.0) as usize;
        let (judged, stalled) = ctx.unchanged_parameters(min_records);
        if judged == 0 {
            return Outcome::Skipped(format!(
                "needs each parameter at {min_records} or more steps: weight lines in tensors.jsonl, or several checkpoints"
            ));
        }
        if stalled.is_empty() {
            return Outcome::Passed(format!("all {judged} parameters change"));
        }
        // Normalization's running statistics are buffers, not parameters: no
        // optimizer moves them, the forward pass in training mode does.
        let (running, params): (Vec<_>, Vec<_>) = stalled.into_iter().partition(|s| is_running_statistic(&s.0));
        let mut findings = Vec::new();
        if !params.is_empty() {
            findings.push(stalled_finding(&params, "parameter(s) never change").recommend(
                "check that these parameters are passed to the optimizer (built before it, not filtered out, \
                 requires_grad on) and that they receive a gradient; ignore this rule if they are frozen on purpose",
            ));
        }
        if !running.is_empty() {
            findings.push(stalled_finding(&running, "normalization running statistic(s) never change (the model trains in evaluation mode)").recommend(
                "call model.train() before the training loop, and again after each validation pass that calls model.eval(): \
                 batch normalization updates its running statistics (and dropout drops units) only in training mode",
            ));
        }
        Outcome::Fired(findings)
    }
}

/// Batch normalization's running mean and variance (PyTorch's
/// `running_mean`/`running_var`, Keras' `moving_mean`/`moving_variance`).
fn is_running_statistic(name: &str) -> bool {
    let last = name.rsplit(['.', '/']).next().unwrap_or(name);
    matches!(last, "running_mean" | "running_var" | "moving_mean" | "moving_variance")
}

/// A finding naming the tensors that never change, each with its evidence.
fn stalled_finding(stalled: &[(String, u64, u64, usize)], what: &str) -> Finding {
    let names: Vec<&str> = stalled.iter().map(|s| s.0.as_str()).collect();
    let mut finding = Finding::new(
        StalledWeights::META.id,
        Severity::Warning,
        format!("{} {what}: {}", stalled.len(), names.iter().take(6).copied().collect::<Vec<_>>().join(", ")),
    );
    for (name, first, last, records) in stalled.iter().take(10) {
        finding = finding.evidence(
            Evidence::new(format!("recorded steps with {name} unchanged from step {first}"), *records as f64)
                .threshold("the parameter changes")
                .at(*last)
                .tensor(name),
        );
    }
    finding
}
