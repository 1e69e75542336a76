//! The run format, version 1: file names and the types of `run.json` and
//! `tensors.jsonl`. docs/FORMAT.md is the contract; these types follow it, and
//! the analyzer reads runs through them so that writer and reader never disagree.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The value of `format` in `run.json` for this version of the format.
pub const FORMAT_VERSION: &str = "postmortem-run/1";
/// Run metadata, required.
pub const RUN_FILE: &str = "run.json";
/// Scalar metrics, one JSON object per line, required.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Per-tensor statistics, one JSON object per line, optional.
pub const TENSORS_FILE: &str = "tensors.jsonl";
/// Folder of `step-NNNNNNNN.safetensors` checkpoints, optional.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Prefix of gradient tensors in a checkpoint.
pub const GRAD_PREFIX: &str = "grad/";
/// Prefix of layer outputs in a checkpoint.
pub const ACTIVATION_PREFIX: &str = "act/";
/// Name of the input batch in a checkpoint.
pub const INPUT_TENSOR: &str = "input";
/// Name of the batch's integer labels in a checkpoint.
pub const LABELS_TENSOR: &str = "labels";
/// Name of the model's outputs for the batch in a checkpoint.
pub const LOGITS_TENSOR: &str = "logits";

/// `checkpoints/step-00001000.safetensors` for step 1000.
pub fn checkpoint_file_name(step: u64) -> String {
    format!("step-{step:08}.safetensors")
}

/// The step of a checkpoint file name, or `None` for any other name.
pub fn parse_checkpoint_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?.strip_suffix(".safetensors")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `run.json`. Every field but `format` is optional; unknown fields are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Dataset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<Hyperparameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<Framework>,
    /// Fields this version does not name, kept as written.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl RunMeta {
    /// Metadata of version 1 with every optional field empty.
    pub fn new(name: impl Into<String>) -> Self {
        RunMeta {
            format: FORMAT_VERSION.to_string(),
            name: Some(name.into()),
            status: None,
            purpose: None,
            task: None,
            dataset: None,
            model: None,
            hyperparameters: None,
            framework: None,
            extra: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still being written, or the writer died without saying so.
    Running,
    Finished,
    Crashed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Crashed => "crashed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    Train,
    /// A deliberate tiny-dataset sanity run that should reach near-zero loss.
    OverfitCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Task {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TaskKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<u64>,
    /// `cross_entropy`, `bce`, `mse`, or any other name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Classification,
    Regression,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Dataset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_examples: Option<u64>,
    /// A well-known corpus (MNIST, CIFAR-10, ImageNet, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Model {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Where the initial weights came from; `null` for training from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// Layers in forward order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    /// `linear`, `conv2d`, `batchnorm`, `layernorm`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The nonlinearity applied to this layer's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// Parameter names as they appear in checkpoints and `tensors.jsonl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
}

/// A layer's nonlinearity. Names outside the list are kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Tanh,
    Sigmoid,
    Gelu,
    None,
    #[serde(untagged)]
    Other(String),
}

impl Activation {
    /// Whether a unit's output being zero most of the time means it is dead.
    pub fn can_die(&self) -> bool {
        matches!(self, Activation::Relu)
    }

    /// The output range whose edges a saturating nonlinearity flattens out at.
    pub fn saturation_bounds(&self) -> Option<(f64, f64)> {
        match self {
            Activation::Tanh => Some((-1.0, 1.0)),
            Activation::Sigmoid => Some((0.0, 1.0)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Hyperparameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Framework {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// What a line of `tensors.jsonl` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorKind {
    Weight,
    Grad,
    /// W(step) - W(previous recorded step).
    Update,
    /// A layer's output after its nonlinearity.
    Activation,
    Input,
}

impl TensorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TensorKind::Weight => "weight",
            TensorKind::Grad => "grad",
            TensorKind::Update => "update",
            TensorKind::Activation => "activation",
            TensorKind::Input => "input",
        }
    }
}

/// Statistics of one tensor. `count`, `zero_frac` and `nonfinite` are over all
/// elements, the others over the finite ones (NaN when there are none, written
/// as `null`). `std` is the population standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    pub count: u64,
    #[serde(with = "finite_or_null")]
    pub mean: f64,
    #[serde(with = "finite_or_null")]
    pub std: f64,
    #[serde(with = "finite_or_null")]
    pub min: f64,
    #[serde(with = "finite_or_null")]
    pub max: f64,
    #[serde(with = "finite_or_null")]
    pub abs_mean: f64,
    #[serde(with = "finite_or_null")]
    pub l2: f64,
    #[serde(with = "finite_or_null")]
    pub zero_frac: f64,
    pub nonfinite: u64,
    /// Activations: fraction of units positive on fewer than 1% of examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_frac: Option<f64>,
    /// Activations of tanh/sigmoid: fraction of units within 3% of a bound on
    /// more than 99% of examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_frac: Option<f64>,
    /// Activations: mean over units of each unit's standard deviation across
    /// the batch's examples (how much the output still depends on the input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_std: Option<f64>,
}

/// One line of `tensors.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorRecord {
    pub step: u64,
    pub name: String,
    pub kind: TensorKind,
    /// The tensor's shape (`[out, in, k...]` for weights), when the writer
    /// knows it: readers take fan-in from it. Optional since it came later
    /// within version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<u64>>,
    /// `update` lines only: the optimizer steps the update spans (1 for the
    /// value after one `optimizer.step()` minus the value before it). Absent,
    /// it spans the steps since the parameter's previous record. Optional
    /// since it came later within version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<u64>,
    #[serde(flatten)]
    pub stats: TensorStats,
}

/// Non-finite floats are written as `null` and read back as NaN: a statistic
/// over no finite element has no value. Readers of the format can serialize
/// their own floats with it too.
pub mod finite_or_null {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    /// Numbers, `null`, and the non-finite tokens as other writers put them
    /// (Python's bare `NaN` arrives here as the string "NaN"). Anything else
    /// is an error that says what was expected, in the words of the format.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(NumberOrNull)
    }

    struct NumberOrNull;

    impl<'de> serde::de::Visitor<'de> for NumberOrNull {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, null or \"NaN\"")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
            d.deserialize_any(NumberOrNull)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<f64, E> {
            match text.trim().to_ascii_lowercase().as_str() {
                "nan" => Ok(f64::NAN),
                "infinity" | "inf" => Ok(f64::INFINITY),
                "-infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(E::custom(format!("expected a number, found the string {text:?}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip() {
        assert_eq!(checkpoint_file_name(1000), "step-00001000.safetensors");
        assert_eq!(parse_checkpoint_file_name("step-00001000.safetensors"), Some(1000));
        assert_eq!(parse_checkpoint_file_name("step-123456789.safetensors"), Some(123456789));
        assert_eq!(parse_checkpoint_file_name("step-1.safetensors"), None);
        assert_eq!(parse_checkpoint_file_name("step-0000x000.safetensors"), None);
        assert_eq!(parse_checkpoint_file_name(".step-00000001.safetensors.tmp"), None);
    }

    #[test]
    fn unknown_activation_is_kept() {
        let a: Activation = serde_json::from_str("\"swish\"").unwrap();
        assert_eq!(a, Activation::Other("swish".into()));
        let r: Activation = serde_json::from_str("\"leaky_relu\"").unwrap();
        assert_eq!(r, Activation::LeakyRelu);
    }

    #[test]
    fn empty_statistics_are_null() {
        let stats = TensorStats {
            count: 2,
            mean: f64::NAN,
            std: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            abs_mean: f64::NAN,
            l2: f64::NAN,
            zero_frac: 0.0,
            nonfinite: 2,
            dead_frac: None,
            saturated_frac: None,
            batch_std: None,
        };
        let text = serde_json::to_string(&stats).unwrap();
        assert!(text.contains("\"mean\":null"), "{text}");
        let back: TensorStats = serde_json::from_str(&text).unwrap();
        assert!(back.mean.is_nan() && back.nonfinite == 2);
    }
}
