use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;
use crate::summary::format_number;

declare_rule! {
    /// ## What it does
    /// Advises a smaller model when a deep one (at least `min_layers` weight
    /// layers) fails to learn.
    ///
    /// ## Why it matters
    /// Depth multiplies what can go wrong: vanishing and exploding signals,
    /// initialization, normalization. A model with one or two hidden layers
    /// trains almost always; if it learns and the deep one does not, the
    /// problem is the depth, and the deep model can be grown from the small
    /// one step by step.
    ///
    /// ## Example
    /// A 17-layer sigmoid MLP whose loss stays at ln(10) gets this advice.
    ///
    /// ## Options
    /// - `min_layers` (default 5): layers with weights that make a model deep.
    ///
    /// ## Known problems
    /// "Failed to learn" means the loss fell by less than a tenth or stayed
    /// near the loss of guessing; a slow but healthy start can look like it in
    /// a short run.
    pub struct DeepModelNotLearning {
        id: "deep-model-not-learning",
        checklist: "Simplify your model",
        section: Model,
        needs: [Metadata, Metrics, TensorStats, Checkpoints],
        options: [min_layers: 5.0 => "weight layers that make a model deep"],
    }
}

impl Rule for DeepModelNotLearning {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, options: &Options) -> Outcome {
        let layers = ctx.weight_layers().len();
        if layers == 0 {
            return Outcome::Skipped("needs the model's layers: model.layers in run.json, or weights in tensors.jsonl or a checkpoint".into());
        }
        let Some(progress) = ctx.progress() else {
            return Outcome::Skipped("needs at least 5 finite loss values in metrics.jsonl".into());
        };
        let min_layers = options.get("min_layers");
        if (layers as f64) < min_layers {
            return Outcome::Passed(format!("the model has {layers} weight layers"));
        }
        if progress.learned() {
            return Outcome::Passed(format!("the {layers}-layer model learned"));
        }
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Warning,
            format!(
                "a {layers}-layer model did not learn: the {} went from {} to {}",
                progress.metric,
                format_number(progress.initial),
                format_number(progress.last)
            ),
        )
        .evidence(Evidence::new("weight layers", layers as f64).threshold(format!(">= {}", format_number(min_layers))))
        .evidence(Evidence::new(format!("last {}", progress.metric), progress.last).at(progress.last_step))
        .recommend(
            "train a model with one or two hidden layers on the same data first; if it learns, grow depth step by \
             step (with batch norm or residual connections and a matching initialization)",
        )])
    }
}
