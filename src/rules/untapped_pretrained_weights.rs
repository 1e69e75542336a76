use super::{declare_rule, Evidence, Finding, Options, Outcome, Rule, RuleMeta, Severity};
use crate::context::Context;

declare_rule! {
    /// ## What it does
    /// Recognizes a standard architecture (ResNet, VGG, Inception,
    /// EfficientNet, ViT, BERT, GPT-2, ...) from `model.architecture`,
    /// `model.name` or its parameter names, and advises pretrained weights
    /// when it is trained from scratch (`model.pretrained` null).
    ///
    /// ## Why it matters
    /// Weights pretrained on a large corpus start from features that already
    /// work; fine-tuning them converges faster and generalizes better than
    /// training from random values, especially on small data sets.
    ///
    /// ## Example
    /// `"architecture": "resnet18", "pretrained": null` gets this advice.
    ///
    /// ## Options
    /// None.
    ///
    /// ## Known problems
    /// It knows common families by name only; a renamed or custom variant is
    /// missed. On data far from what the weights were trained on (medical
    /// scans, spectrograms) training from scratch can be the right call.
    pub struct UntappedPretrainedWeights {
        id: "untapped-pretrained-weights",
        checklist: "Pre-trained models",
        section: Model,
        needs: [Metadata, TensorStats, Checkpoints],
        options: [],
    }
}

/// Families with public pretrained weights, as they appear in names.
const FAMILIES: [(&str, &str); 24] = [
    ("resnet", "ResNet"),
    ("resnext", "ResNeXt"),
    ("vgg", "VGG"),
    ("alexnet", "AlexNet"),
    ("inception", "Inception"),
    ("googlenet", "GoogLeNet"),
    ("densenet", "DenseNet"),
    ("mobilenet", "MobileNet"),
    ("efficientnet", "EfficientNet"),
    ("convnext", "ConvNeXt"),
    ("regnet", "RegNet"),
    ("squeezenet", "SqueezeNet"),
    ("shufflenet", "ShuffleNet"),
    ("vit", "ViT"),
    ("swin", "Swin"),
    ("deit", "DeiT"),
    ("bert", "BERT"),
    ("roberta", "RoBERTa"),
    ("gpt2", "GPT-2"),
    ("t5", "T5"),
    ("bart", "BART"),
    ("llama", "Llama"),
    ("whisper", "Whisper"),
    ("clip", "CLIP"),
];

/// The family a name belongs to: the name's leading word must be the family.
fn family_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let word: String = lower.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let stem = word.trim_end_matches(|c: char| c.is_ascii_digit());
    FAMILIES.iter().find(|(key, _)| stem == *key || word == *key).map(|(_, family)| *family)
}

/// A family recognized from characteristic parameter names.
fn family_from_params(ctx: &Context) -> Option<&'static str> {
    let names: Vec<&str> = ctx.run.tensors.iter().map(|r| r.name.as_str()).chain(ctx.run.checkpoints.iter().flat_map(|c| c.tensors.iter().map(|t| t.name.as_str()))).collect();
    let has = |needle: &str| names.iter().any(|n| n.contains(needle));
    if has("layer1.0.conv1") && has("bn1") {
        Some("ResNet")
    } else if has("encoder.layer.0.attention.self.query") {
        Some("BERT")
    } else if has("transformer.h.0.attn.c_attn") {
        Some("GPT-2")
    } else {
        None
    }
}

impl Rule for UntappedPretrainedWeights {
    fn meta(&self) -> RuleMeta {
        Self::META
    }

    fn check(&self, ctx: &Context, _options: &Options) -> Outcome {
        let model = ctx.run.meta.model.as_ref();
        let named = model.and_then(|m| m.architecture.as_deref().and_then(family_of).or_else(|| m.name.as_deref().and_then(family_of)));
        let Some(family) = named.or_else(|| family_from_params(ctx)) else {
            return match model.and_then(|m| m.architecture.as_ref()) {
                Some(arch) => Outcome::Passed(format!("{arch} is not a family with well-known pretrained weights")),
                None => Outcome::Skipped("needs model.architecture (or model.name) in run.json".into()),
            };
        };
        if let Some(source) = model.and_then(|m| m.pretrained.as_ref()) {
            return Outcome::Passed(format!("the {family} starts from pretrained weights ({source})"));
        }
        Outcome::Fired(vec![Finding::new(
            Self::META.id,
            Severity::Info,
            format!("a {family} is trained from scratch, though pretrained {family} weights are public"),
        )
        .evidence(Evidence::new("pretrained weights used", 0.0).threshold("= 1"))
        .recommend(format!(
            "start from pretrained {family} weights and fine-tune (a lower learning rate for the pretrained layers); \
             set model.pretrained in run.json to say where weights came from"
        ))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_leading_word() {
        assert_eq!(family_of("resnet18"), Some("ResNet"));
        assert_eq!(family_of("ResNet-50"), Some("ResNet"));
        assert_eq!(family_of("bert-base-uncased"), Some("BERT"));
        assert_eq!(family_of("mlp"), None);
        assert_eq!(family_of("my-vit-ish"), None);
        assert_eq!(family_of("cnn"), None);
    }
}
